"""HiGHS (``highspy``), the solver of the dispatch LP and the network-design MILP."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import highspy


def new_highs() -> highspy.Highs:
    """Create a HiGHS instance, silent and on one thread, with its one-time banner (C++ output to stdout) muted.

    One thread always: HiGHS fixes its thread count at its first run in a process, and a later run asking for another
    number fails (model status 'Not Set'), so no caller may choose it.
    """
    import os
    import sys

    import highspy

    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (some embedded interpreters): let the banner through
        h = highspy.Highs()
    else:
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 1)
                h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    return h
