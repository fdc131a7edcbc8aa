"""Subjects that fail as a user's own code does, for tests/test_subject_failures.py.

Importable as `tests.failing_subjects:<name>` from the repository root. None of them uses our
components: each is the smallest thing that fails one way.
"""

from __future__ import annotations

import asyncio
import sys

from harness.subject import SubjectConfig


class RaisesAfterConnecting:
    """Connects, subscribes through its path, then raises from deep in its own code."""

    def __init__(self, config: SubjectConfig) -> None:
        self.config = config

    async def run(self, report, stop: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        streams = "/".join(f"{s.lower()}@depth@100ms" for s in self.config.symbols)
        async with connect(f"{self.config.ws_url}/stream?streams={streams}") as ws:
            await ws.recv()
            print("about to parse", file=sys.stderr)
            self._parse_level(["41999.97"])

    def _parse_level(self, level: list[str]) -> tuple[float, float]:
        price, size = level  # the user's bug: a level with one field
        return float(price), float(size)


class NeverSubscribesNorStops:
    """Waits forever without connecting, and ignores the request to stop."""

    def __init__(self, config: SubjectConfig) -> None:
        self.config = config

    async def run(self, report, stop: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(3600)


def raises(config: SubjectConfig) -> RaisesAfterConnecting:
    return RaisesAfterConnecting(config)


def hangs(config: SubjectConfig) -> NeverSubscribesNorStops:
    return NeverSubscribesNorStops(config)
