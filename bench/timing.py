"""How every bench times a run: in this thread's CPU time, with the cyclic collector paused.

Thread CPU time leaves out the time a busy machine keeps the process descheduled, and a collection
that happens to start inside one contender's run would otherwise be charged to it alone.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cpu_timed() -> Iterator[list[int]]:
    """Yields a list that holds the block's thread CPU nanoseconds once the block has ended."""
    spent: list[int] = []
    gc.collect()
    gc.disable()
    try:
        started = time.thread_time_ns()
        yield spent
        spent.append(time.thread_time_ns() - started)
    finally:
        gc.enable()
