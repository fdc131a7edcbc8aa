"""What the client tests share: an async test runner and a probe that logs callbacks in order and
lets a test wait on them (every wait is on a future the callbacks resolve; the timeout is only a
safety net so a broken client fails the test instead of hanging it)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable

SAFETY_S = 10


def aio(test: Callable) -> Callable:
    """Run an async test in a fresh event loop (the project has no asyncio pytest plugin)."""

    @functools.wraps(test)
    def run(*args, **kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


class CallbackProbe:
    """Collects the client's callbacks in one ordered log and resolves waiters as they arrive."""

    def __init__(self) -> None:
        self.log: list[object] = []
        self.frames: list[tuple[bytes, int, int, int]] = []
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def on_event(self, event: object) -> None:
        self.log.append(event)
        self._wake()

    def on_message(self, payload: bytes, recv_mono_ns: int, recv_wall_ns: int, conn_id: int) -> None:
        frame = (payload, recv_mono_ns, recv_wall_ns, conn_id)
        self.frames.append(frame)
        self.log.append(frame)
        self._wake()

    def _wake(self) -> None:
        for predicate, future in self._waiters:
            if not future.done() and predicate():
                future.set_result(None)

    async def until(self, predicate: Callable[[], bool]) -> None:
        if predicate():
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        async with asyncio.timeout(SAFETY_S):
            await future

    def of(self, kind: type) -> list:
        return [item for item in self.log if isinstance(item, kind)]
