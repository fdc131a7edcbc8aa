"""`DueTimer`: wake an asyncio loop at a monotonic instant to within tens of microseconds.

asyncio's own timers cannot: the selector's timeout is rounded up to whole milliseconds (epoll takes
milliseconds, and uvloop's libuv timers are millisecond-grained too), so `asyncio.sleep(100e-6)`
returns after about a millisecond, and a venue paced at 10,000 frames/s falls up to a millisecond
behind its schedule on every wake-up. A Linux timerfd armed at an absolute `CLOCK_MONOTONIC` time
(the clock `time.monotonic_ns` reads) becomes readable at that instant, to within the kernel's timer
slack (50 us by default), and the loop, watching it like any socket, wakes then: no thread, no spin,
one syscall to arm it. Python 3.13 has `os.timerfd_create`; before it the two libc calls go through
ctypes. Where neither exists (not Linux), `DueTimer.create` answers None and the caller sleeps on
asyncio's timers as before.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import sys
from collections.abc import Callable

_CLOCK_MONOTONIC = 1
_TFD_TIMER_ABSTIME = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = 0o2000000


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc_timerfd() -> tuple[Callable[[], int], Callable[[int, int], None]] | None:
    """(create, arm at an absolute ns; 0 disarms) over libc, or None where the calls are missing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        create_fd, settime = libc.timerfd_create, libc.timerfd_settime
    except (OSError, AttributeError):
        return None

    def create() -> int:
        fd = create_fd(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        return fd

    def arm(fd: int, at_ns: int) -> None:
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(*divmod(at_ns, 1_000_000_000)))
        if settime(fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    return create, arm


def _os_timerfd() -> tuple[Callable[[], int], Callable[[int, int], None]] | None:
    create_fd = getattr(os, "timerfd_create", None)
    if create_fd is None:
        return None

    def create() -> int:
        return create_fd(_CLOCK_MONOTONIC, flags=_TFD_NONBLOCK | _TFD_CLOEXEC)

    def arm(fd: int, at_ns: int) -> None:
        os.timerfd_settime_ns(fd, flags=_TFD_TIMER_ABSTIME, initial=at_ns)  # type: ignore[attr-defined]

    return create, arm


_TIMERFD = _os_timerfd() or _libc_timerfd()


class DueTimer:
    """One timerfd watched by `loop`; `await until(ns)` returns once `time.monotonic_ns() >= ns`.

    One waiter at a time (the venue's walker). `close()` when done: it holds a file descriptor.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, arm: Callable[[int, int], None]) -> None:
        self._loop = loop
        self._fd = fd
        self._arm = arm
        self._waiter: asyncio.Future[None] | None = None
        loop.add_reader(fd, self._fired)

    @classmethod
    def create(cls) -> DueTimer | None:
        """A timer on the running loop, or None where the platform has no timerfd."""
        if _TIMERFD is None:
            return None
        create, arm = _TIMERFD
        try:
            fd = create()
        except OSError:
            return None
        try:
            return cls(asyncio.get_running_loop(), fd, arm)
        except (NotImplementedError, OSError):  # a loop that cannot watch file descriptors
            os.close(fd)
            return None

    async def until(self, due_ns: int) -> None:
        if due_ns <= 0:
            raise ValueError(f"due_ns must be a positive monotonic time, got {due_ns}")
        if self._waiter is not None:
            raise RuntimeError("DueTimer has a waiter already")
        self._waiter = waiter = self._loop.create_future()
        self._arm(self._fd, due_ns)
        try:
            await waiter
        finally:
            self._waiter = None
            if not waiter.done():  # cancelled: disarm, so a stale expiry does not wake the next wait
                self._arm(self._fd, 0)

    def _fired(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:  # disarmed or re-armed after it became readable
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
