"""Work run in processes forked from this one, where that is safe: separate networks, GeoJSON beside the rest.

A forked process starts at once with everything this one holds (no imports, nothing pickled on the way in), so on
Linux it pays for work of a second or more. It is not used where the operating system cannot fork, in a daemonic
process (a Dask worker may not start processes) or while another thread of heatmap's runs (a fork copies a running
thread's locks mid-use): :func:`why_not_fork` says why, and the work then runs in this process.
"""

from __future__ import annotations

import gc
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import multiprocessing.context
    from concurrent.futures import ProcessPoolExecutor

K = TypeVar("K", bound=Hashable)

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


def leave_inherited_objects() -> None:
    """In a forked process: exempt every object it inherited from the cyclic garbage collector's passes.

    The inherited objects outlive the process's short work, yet each full pass would walk them all (and, by writing
    to them, copy every memory page they lie on from the parent); with them frozen (:func:`gc.freeze`) a pass walks
    only what the process made itself.
    """
    gc.freeze()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Return a pool of ``workers`` processes forked from this one (check :func:`why_not_fork` first).

    Each process starts with :func:`leave_inherited_objects`.
    """
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=fork_context(), initializer=leave_inherited_objects)


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
