"""A small OKX subject, as a user would write one: a plain `websockets` connection, OKX's subscribe,
and our decoder and sync rule for its `books` (snapshot on the stream, prevSeqId chain, checksum).

Importable as `tests.okx_subject:create`. No reconnects and no resubscribe on a gap: it proves the
fake venue, the oracle and the checker on OKX's dialect while the default subject learns stream
snapshots; a lost sync stays lost (and is reported).
"""

from __future__ import annotations

import asyncio
from time import monotonic_ns

import websockets

from harness.book_events import DecodeError, DepthSnapshot
from harness.observations import BookObservation, FinalBook, SyncEvent
from harness.subject import Report, SubjectConfig
from harness.sync import Applied, BookSync, Resync, Synced
from harness.venues.okx.decoder import OkxDepthDelta, decode_frame
from harness.venues.okx.dialect import DIALECT
from harness.venues.okx.sequencing import OkxSequencing

TOP = 20


class OkxSubject:
    def __init__(self, config: SubjectConfig) -> None:
        self._config = config
        self._parts = DIALECT.subject_parts()
        self._syncs = {symbol: BookSync(OkxSequencing()) for symbol in config.symbols}

    async def run(self, report: Report, stop: asyncio.Event) -> None:
        url = self._parts.ws_url(self._config.ws_url, self._config.symbols)
        assert self._parts.subscribe is not None
        step = self._parts.subscribe(self._config.symbols)
        async with websockets.connect(url, max_size=None) as ws:
            for message in step.messages():
                await ws.send(message)
            stopped = asyncio.ensure_future(stop.wait())
            while not stop.is_set():
                received = asyncio.ensure_future(ws.recv())
                await asyncio.wait({received, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not received.done():
                    received.cancel()
                    break
                payload = received.result()
                self._on_message(payload if isinstance(payload, bytes) else payload.encode(), report)
            for symbol, sync in self._syncs.items():
                bids, asks = sync.book.depth()
                report(FinalBook(symbol, sync.last_update_id, sync.synced, bids, asks))

    def _on_message(self, payload: bytes, report: Report) -> None:
        now = monotonic_ns()
        try:
            event = decode_frame(payload)
        except DecodeError as exc:
            report(SyncEvent("decode_error", now, str(exc)[:200]))
            return
        if isinstance(event, DepthSnapshot):
            sync = self._syncs.get(event.symbol)
            decisions = sync.on_stream_snapshot(event) if sync is not None else ()
        elif isinstance(event, OkxDepthDelta):
            sync = self._syncs.get(event.symbol)
            decisions = sync.on_delta(event) if sync is not None else ()
        else:
            return
        if sync is None:
            return
        for decision in decisions:
            if isinstance(decision, Applied | Synced):
                bids, asks = sync.book.top_n(TOP)
                report(BookObservation(sync.book.symbol or event.symbol, sync.last_update_id, True, bids, asks,
                                       now, now, now, monotonic_ns()))  # fmt: skip
            elif isinstance(decision, Resync):
                report(SyncEvent("resync", now, decision.reason, event.symbol))


def create(config: SubjectConfig) -> OkxSubject:
    return OkxSubject(config)
