"""OKX as the harness's venue side sees it: the `VenueDialect` for `books` (and `books5`, `bbo-tbt`).

Chain ids map onto the venue-neutral model (harness/venues/dialect.py) as OKX's docs define them
("Sequence ID"): an update covers `seqId` alone and links to the previous message by `prevSeqId`
(`prev_id`), so steps need not be 1; the `action: snapshot` frame (`prevSeqId` -1) resets the chain;
the heartbeat an idle book gets about once a minute is an update with `prevSeqId == seqId` and no
levels, which follows the last applied id like any other; after maintenance the ids may restart, as
an update whose `seqId` is below its `prevSeqId`: it still follows by its link, and so does the next.
`books5` and `bbo-tbt` messages are each a whole top of book: snapshots.
Frames from before OKX sent `seqId` (2023; the 2022 cryptofeed capture) cannot be placed by ids;
their `ts` stands in for the id and `UnlinkedIds.follows` accepts them anywhere, so only the
checksum can vouch for them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from harness.book_events import Level
from harness.errors import HarnessError
from harness.synth.market import SYMBOLS
from harness.venues.dialect import (
    BookLevels,
    CapturePolicy,
    ChainIds,
    SnapshotTransport,
    SubjectParts,
    SynthEncoder,
)
from harness.venues.okx.channels import (
    BBO_TBT,
    BOOK_CHANNELS,
    BOOKS,
    LIVE_REST_URL,
    LIVE_WS_URL,
    TRADES,
    WS_PATH,
    inst_id_of,
    split_stream,
    stream_key,
)
from harness.venues.okx.checksum import book_checksum
from harness.venues.okx.frames import BookFrame, book_frame, stream_of
from harness.venues.wire import VenueWire

INST_ID_SHAPE = re.compile(r"^[A-Z0-9]{1,15}(-[A-Z0-9]{1,15}){1,3}$")
"""An OKX instrument id: dash-separated parts (BTC-USDT spot, BTC-USDT-SWAP, BTC-USD-250328 futures)."""


@dataclass(frozen=True, slots=True)
class UnlinkedIds(ChainIds):
    """A book update with no `seqId` (OKX before 2023): nothing to link by, so it follows anything."""

    def follows(self, last: int) -> bool:
        return True


def chain_ids_of(frame: BookFrame) -> ChainIds:
    symbol = frame.inst_id
    if frame.seq_id is None:
        if frame.snapshot:
            return ChainIds(symbol, frame.ts_ms, frame.ts_ms, snapshot=True)
        return UnlinkedIds(symbol, frame.ts_ms, frame.ts_ms)
    return ChainIds(symbol, frame.seq_id, frame.seq_id, prev_id=frame.prev_seq_id, snapshot=frame.snapshot)


@dataclass(frozen=True, slots=True)
class OkxDialect:
    """OKX v5 public order books; snapshots travel on the stream, REST is never asked for one."""

    name: str = "okx"
    snapshot_transport: SnapshotTransport = "stream"
    live_ws_url: str = LIVE_WS_URL
    live_rest_url: str = LIVE_REST_URL

    def stream_of(self, payload: bytes) -> str | None:
        return stream_of(payload)

    def symbol_of(self, stream: str) -> str | None:
        named = split_stream(stream)
        return named[1] if named is not None else None

    def is_book_stream(self, stream: str) -> bool:
        named = split_stream(stream)
        return named is not None and named[0] in BOOK_CHANNELS

    def chain_ids(self, stream: str, payload: bytes) -> ChainIds | None:
        frame = book_frame(payload)
        return chain_ids_of(frame) if frame is not None else None

    def book_levels(self, payload: bytes) -> BookLevels:
        frame = book_frame(payload)
        if frame is None:
            raise ValueError("not an OKX book frame")
        return BookLevels(frame.bids, frame.asks, frame.checksum)

    def bridges(self, ids: ChainIds, snapshot_id: int) -> bool:
        """OKX's snapshot comes on the stream and resets the chain; an update bridges one by its link."""
        return ids.snapshot or ids.prev_id == snapshot_id

    def snapshot_request(self, url: str) -> str | None:
        return None

    def parse_rest_snapshot(self, symbol: str, body: bytes) -> tuple[int, BookLevels]:
        raise ValueError("OKX books snapshots come over the WebSocket, never from a recorded REST body")

    def checksum(self, bids: Sequence[Level], asks: Sequence[Level]) -> int | None:
        return book_checksum(bids, asks)

    def wire(self) -> VenueWire | None:
        from harness.venues.okx.wire import WIRE

        return WIRE

    def subject_parts(self) -> SubjectParts:
        from harness.venues.okx.decoder import decode_frame
        from harness.venues.okx.sequencing import OkxSequencing
        from harness.venues.okx.subscribe import KEEPALIVE, OkxSubscribe, resubscribe_books

        return SubjectParts(
            decode_frame=decode_frame,
            sequencing=OkxSequencing,
            ws_url=lambda ws_base, symbols: ws_url(ws_base),
            subscribe=lambda symbols: OkxSubscribe([stream_key(BOOKS, s) for s in symbols]),
            keepalive=KEEPALIVE,
            resubscribe=resubscribe_books,
        )

    def capture_policy(self) -> CapturePolicy:
        from harness.venues.okx.subscribe import KEEPALIVE, OkxSubscribe

        def streams(symbols: Sequence[str], book_ticker: bool) -> list[str]:
            channels = (BOOKS, TRADES, BBO_TBT) if book_ticker else (BOOKS, TRADES)
            return [stream_key(channel, symbol) for symbol in symbols for channel in channels]

        return CapturePolicy(
            streams=streams,
            ws_url=lambda ws_base, streams: ws_url(ws_base),
            symbol_shape=INST_ID_SHAPE,
            symbol_example="BTC-USDT",
            subscribe=OkxSubscribe,
            keepalive=KEEPALIVE,
        )

    def synth_encoder(self, symbol: str) -> SynthEncoder:
        from harness.venues.okx.synth import OkxSynthEncoder

        for market in SYMBOLS.values():
            inst_id = inst_id_of(market.base_asset, market.quote_asset)
            if symbol.upper() in (market.symbol, inst_id):
                # Named as OKX names it, so the recording's symbols are the instrument ids its streams carry.
                return OkxSynthEncoder(replace(market, symbol=inst_id))
        known = ", ".join(inst_id_of(m.base_asset, m.quote_asset) for m in SYMBOLS.values())
        raise HarnessError(f"no synthetic okx market for instrument {symbol!r}; known instruments: {known}")


def ws_url(ws_base: str) -> str:
    """The public endpoint under a base (`wss://ws.okx.com:8443`, or the fake venue's `ws://127.0.0.1:port`)."""
    base = ws_base.rstrip("/")
    return base if base.endswith(WS_PATH) else base + WS_PATH


DIALECT = OkxDialect()
