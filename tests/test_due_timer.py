"""`DueTimer`: the fake venue's sub-millisecond wake-ups (replayer/due_timer.py)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from replayer.due_timer import DueTimer


def _timer() -> DueTimer:
    timer = DueTimer.create()
    if timer is None:
        pytest.skip("no timerfd on this platform: the venue sleeps on asyncio's timers")
    return timer


def test_it_never_returns_before_the_due_time_and_returns_at_once_for_a_past_one() -> None:
    async def run() -> None:
        timer = _timer()
        try:
            for step_ns in (300_000, 50_000, 1_000_000):
                due = time.monotonic_ns() + step_ns
                await timer.until(due)
                assert time.monotonic_ns() >= due
            await asyncio.wait_for(timer.until(time.monotonic_ns() - 10**9), 5)
        finally:
            timer.close()

    asyncio.run(run())


def test_a_cancelled_wait_disarms_so_the_next_wait_is_not_woken_by_it() -> None:
    async def run() -> None:
        timer = _timer()
        try:
            early = asyncio.create_task(timer.until(time.monotonic_ns() + 2_000_000))
            await asyncio.sleep(0)
            early.cancel()
            with pytest.raises(asyncio.CancelledError):
                await early
            due = time.monotonic_ns() + 20_000_000
            await timer.until(due)
            assert time.monotonic_ns() >= due
        finally:
            timer.close()

    asyncio.run(run())


def test_misuse_is_refused_and_close_releases_the_descriptor() -> None:
    async def run() -> None:
        timer = _timer()
        fd = timer._fd
        waiting = asyncio.create_task(timer.until(time.monotonic_ns() + 10**9))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="waiter already"):
            await timer.until(time.monotonic_ns() + 10**9)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        with pytest.raises(ValueError, match="positive"):
            await timer.until(0)
        timer.close()
        timer.close()
        with pytest.raises(OSError):
            os.fstat(fd)

    asyncio.run(run())
