"""The event loop a long-running shell runs on: uvloop when it is installed, else asyncio's own.

uvloop is an optional dependency (`pip install 'harness[fast]'`), used only where `make bench` measured it
winning (bench/recorder_bench.py runs the recorder on both loops in the same run; docs/performance.md).
`HARNESS_EVENT_LOOP=asyncio` forces asyncio's loop, to compare or to rule uvloop out.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "HARNESS_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None (asyncio's default) when it is missing or `HARNESS_EVENT_LOOP=asyncio`."""
    if os.environ.get(ENV, "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop `loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
