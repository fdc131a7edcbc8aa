"""Our default subject with every SyncEvent withheld: it shows loss and recovery only through its books.

Importable as `tests.quiet_subject:create` from the repository root. A correct client that names its
events in other words, or not at all, must pass the library all the same (docs/scenarios.md).
"""

from __future__ import annotations

import asyncio

from harness.default_subject import create as default_subject
from harness.observations import SyncEvent
from harness.subject import Report, SubjectConfig


class QuietSubject:
    def __init__(self, config: SubjectConfig) -> None:
        self._inner = default_subject(config)

    async def run(self, report: Report, stop: asyncio.Event) -> None:
        await self._inner.run(lambda message: None if isinstance(message, SyncEvent) else report(message), stop)

    def stats(self) -> dict:
        return self._inner.stats()


def create(config: SubjectConfig) -> QuietSubject:
    return QuietSubject(config)
