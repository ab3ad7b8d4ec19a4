"""Work run in processes forked from this one, where that is safe: separate networks, GeoJSON beside the rest.

A forked process starts at once with everything this one holds (no imports, nothing pickled on the way in), so on
Linux it pays for work of a second or more. It is not used where the operating system cannot fork, in a daemonic
process (a Dask worker may not start processes) or while another thread of heatmap's runs (a fork copies a running
thread's locks mid-use): :func:`why_not_fork` says why, and the work then runs in this process.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

if TYPE_CHECKING:
    import multiprocessing.context
    from concurrent.futures import ProcessPoolExecutor

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

MIN_PIPES = 5_000
"""Work on fewer pipes than this stays in this process: a process costs more than such a network's solve or files."""

THREAD_PREFIX = "heatmap-"
"""Names of heatmap's own threads; while one runs nothing is forked."""


def why_not_fork() -> str:
    """Return why work cannot run in a forked process now ('' where it can)."""
    import multiprocessing
    import threading

    if "fork" not in multiprocessing.get_all_start_methods():
        return "this system cannot fork"
    if multiprocessing.current_process().daemon:
        return "a daemonic process cannot start processes"
    busy = [t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()]
    if busy:
        return f"threads running: {', '.join(busy)}"
    return ""


def fork_context() -> multiprocessing.context.ForkContext:
    """Return multiprocessing's ``fork`` context (check :func:`why_not_fork` first)."""
    import multiprocessing

    return multiprocessing.get_context("fork")


def child_started() -> None:
    """Set up a process forked from this one, at its start.

    - SIGTERM ends it at once: not the handler inherited from the command, whose clean-up is the parent's.
    - Every object it inherited is exempted from the cyclic garbage collector's passes (:func:`gc.freeze`). They
      outlive the process's short work, yet each full pass would walk them all (and, by writing to them, copy
      every memory page they lie on from the parent); frozen, a pass walks only what the process made itself.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.freeze()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Return a pool of ``workers`` processes forked from this one (check :func:`why_not_fork` first).

    Each process starts with :func:`child_started`.
    """
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=fork_context(), initializer=child_started)


class Call(Generic[T]):
    """``fn(*args)`` in a process forked from this one: its arguments inherited (never pickled), its result sent back.

    Check :func:`why_not_fork` first. :meth:`result` waits for the result and returns it, or raises what ``fn``
    raised; :meth:`stop` ends the process early.
    """

    def __init__(self, fn: Callable[..., T], *args: Any, name: str = "heatmap-call") -> None:
        ctx = fork_context()
        self._conn, child = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_call_in_child, args=(fn, args, child), name=name, daemon=True)
        self._process.start()
        child.close()
        self._answer: tuple[bool, Any] | None = None

    def result(self) -> T:
        """Wait for the call to end; return its result or raise its exception."""
        if self._answer is None:
            try:
                self._answer = self._conn.recv()
            except EOFError:  # the process ended without an answer (killed)
                self._answer = (False, RuntimeError(f"the process {self._process.name} ended without a result"))
            self._process.join()
            self._conn.close()
        ok, payload = self._answer
        if not ok:
            raise payload
        return cast(T, payload)

    def stop(self) -> None:
        """End the process if it still runs."""
        if self._process.is_alive():
            self._process.terminate()


def _call_in_child(fn: Callable[..., Any], args: tuple, conn: Any) -> None:
    """Run ``fn(*args)`` in a forked process and send ``(True, result)`` or ``(False, exception)``."""
    child_started()
    try:
        conn.send((True, fn(*args)))
    except BaseException as exc:  # sent to the parent, which raises it
        conn.send((False, exc))
    finally:
        conn.close()


def deal_out(sizes: Mapping[K, float], workers: int) -> list[list[K]]:
    """Deal items out to at most ``workers`` batches by size: the largest first, each to the least loaded batch.

    Ties keep the order of ``sizes``; a batch is never empty.
    """
    batches: list[list[K]] = [[] for _ in range(max(1, min(workers, len(sizes))))]
    load = [0.0] * len(batches)
    for item, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        i = load.index(min(load))
        batches[i].append(item)
        load[i] += size
    return [b for b in batches if b]
