#!/usr/bin/env bash
# Set up heatmap on a fresh Debian/Ubuntu machine: Python venv with every dependency, the web-map assets
# from npm, with --with-browser Debian's chromium for the browser tests, and with --with-qgis Debian's QGIS
# (python3-qgis, for the system Python) for the tests that open the outputs in real QGIS, and with --with-postgis
# Debian's PostgreSQL and PostGIS (the tests start their own server on a temporary data folder). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

with_browser=0
with_qgis=0
with_postgis=0
for arg in "$@"; do
  case "$arg" in
    --with-browser) with_browser=1 ;;
    --with-qgis) with_qgis=1 ;;
    --with-postgis) with_postgis=1 ;;
    *) echo "usage: scripts/setup.sh [--with-browser] [--with-qgis] [--with-postgis]" >&2; exit 2 ;;
  esac
done

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
need_apt=()
command -v npm >/dev/null || need_apt+=(nodejs npm)
if [ "$with_browser" = 1 ] && [ ! -x /usr/bin/chromium ]; then need_apt+=(chromium); fi
if [ "$with_qgis" = 1 ] && ! QT_QPA_PLATFORM=offscreen /usr/bin/python3 -c "import qgis.core" 2>/dev/null; then
  need_apt+=(python3-qgis fonts-dejavu-core)  # QGIS for the system Python; a font for the rendered labels
fi
if [ "$with_postgis" = 1 ] && ! { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    && compgen -G "/usr/share/postgresql/*/extension/postgis.control" >/dev/null; }; then
  need_apt+=(postgresql postgresql-postgis)  # the server (initdb, pg_ctl) and Debian's default PostGIS for it
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${need_apt[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade "uv>=0.4"
.venv/bin/uv pip install -q --python .venv/bin/python -e ".[test]"

(cd heatmap/_assets && npm ci --no-audit --no-fund --silent)
echo "heatmap is set up in .venv (run: .venv/bin/heatmap --help)"
