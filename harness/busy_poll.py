"""An asyncio loop that busy-polls: when it runs out of work it keeps asking the kernel for ready sockets,
for up to `spin_us`, before it blocks.

Why: a process blocked in epoll runs again 60 to 70 us after its frame arrives on this machine (the core
idles, the scheduler wakes it, its caches are cold), which was most of the end-to-end latency at 1,000
frames/s (`python -m bench e2e`: a bare websockets push one way 77 to 96 us asleep, 30 us polling). A
trading process that wants its lowest latency polls and pays a core for it; so may the subject under
test here, by choice (`harness replay --busy-poll-us`). A spin never outlasts the loop's next timer, so
timers fire as they would have. uvloop takes no selector of ours: a busy-polling loop is asyncio's.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable


class BusyPollSelector(selectors.DefaultSelector):
    """The platform's selector, polled without blocking for up to `spin_s` before each blocking wait."""

    def __init__(self, spin_s: float) -> None:
        if not spin_s > 0:
            raise ValueError(f"spin_s must be positive seconds, got {spin_s!r}")
        super().__init__()
        self.spin_s = spin_s

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return super().select(0)
        spin_s = self.spin_s if timeout is None else min(self.spin_s, timeout)
        clock = time.perf_counter
        deadline = clock() + spin_s
        poll = super().select
        while True:
            ready = poll(0)
            if ready or clock() >= deadline:
                break
        if ready:
            return ready
        return poll(None if timeout is None else max(timeout - spin_s, 0.0))


def busy_poll_loop_factory(spin_us: int) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """None (asyncio's default loop) for 0, else a factory of loops that busy-poll for `spin_us`."""
    if spin_us < 0:
        raise ValueError(f"spin_us must be >= 0, got {spin_us}")
    if spin_us == 0:
        return None
    spin_s = spin_us / 1e6
    return lambda: asyncio.SelectorEventLoop(BusyPollSelector(spin_s))
