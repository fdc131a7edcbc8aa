"""A correct subject that reports its book as synced the moment a snapshot arrives, before any update
bridges it, as clients that mark themselves ready on the snapshot do.

Importable as `tests.eager_subject:create` from the repository root. Its first observation after each
fetch sits at the snapshot's `lastUpdateId`, which the fake venue puts inside a depth event, where the
clean recording has no book: the checker must judge it against the snapshot the venue served there.
"""

from __future__ import annotations

from time import monotonic_ns

from harness.default_subject import TOP_LEVELS, USER_AGENT, DefaultSubject
from harness.http import http_get
from harness.observations import BookObservation
from harness.subject import SubjectConfig


class ReportsSnapshotAtOnce(DefaultSubject):
    async def _fetch_snapshot(self, symbol: str) -> None:
        url = self.snapshot_url(symbol, self.snapshot_limit)
        response = await http_get(url, user_agent=USER_AGENT, timeout_s=self._snapshot_timeout_s)
        snapshot = self.decode_snapshot(response.body, symbol)
        now = monotonic_ns()
        bids = [(price, size) for price, size in snapshot.bids[:TOP_LEVELS]]
        asks = [(price, size) for price, size in snapshot.asks[:TOP_LEVELS]]
        self._report(BookObservation(symbol, snapshot.last_update_id, True, bids, asks, now, now, now, now))
        self._fetches.pop(symbol, None)
        self._handle(symbol, self._syncs[symbol].on_snapshot(snapshot), monotonic_ns())


def create(config: SubjectConfig) -> DefaultSubject:
    return ReportsSnapshotAtOnce(config)
