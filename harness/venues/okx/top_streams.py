"""`books5` and `bbo-tbt` computed from a recorded `books` stream, as OKX publishes them.

OKX's docs: `books5` pushes the top 5 levels a side, `bbo-tbt` the best bid and ask tick by tick,
each message the whole top (no `action`, no `prevSeqId`, no checksum), with the `seqId` of the book
it was taken from; `books5` also names `instId` in `data`. The fake venue serves them to clients that
subscribe to a channel the recording lacks: each recorded `books` message is applied to the levels
kept here (whole `[price, size, "0", orders]` levels, so the top goes out as recorded) and a message
goes out when the top it covers changed.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

import orjson

from harness.venues.okx.channels import BBO_TBT, BOOKS5, split_stream
from harness.venues.okx.frames import book_frame

DEPTHS = {BOOKS5: 5, BBO_TBT: 1}


class TopStream:
    """One derived stream (`books5:BTC-USDT`), fed the recorded `books` messages of its instrument."""

    __slots__ = ("_asks", "_bids", "_channel", "_depth", "_inst_id", "_last_top", "_loaded")

    def __init__(self, derived: str) -> None:
        named = split_stream(derived)
        if named is None or named[0] not in DEPTHS:
            raise ValueError(f"not a books5 or bbo-tbt stream: {derived!r}")
        self._channel, self._inst_id = named
        self._depth = DEPTHS[self._channel]
        self._bids: dict[float, Sequence[str]] = {}
        self._asks: dict[float, Sequence[str]] = {}
        self._loaded = False
        self._last_top: tuple[list[Sequence[str]], list[Sequence[str]]] | None = None

    def add(self, offset_ns: int, payload: bytes) -> list[bytes]:
        """The derived message this `books` message makes, if it changed the top; none before a snapshot
        and none for a message that is not one of the instrument's `books` (a corrupt frame)."""
        try:
            frame = book_frame(payload)
        except ValueError:
            return []
        if frame is None or frame.inst_id != self._inst_id:
            return []
        seq_id = frame.seq_id if frame.seq_id is not None else frame.ts_ms
        if frame.snapshot:
            self._bids.clear()
            self._asks.clear()
            self._loaded = True
        elif not self._loaded:
            return []
        _apply(self._bids, frame.bids)
        _apply(self._asks, frame.asks)
        top = (
            [self._bids[p] for p in heapq.nlargest(self._depth, self._bids)],
            [self._asks[p] for p in heapq.nsmallest(self._depth, self._asks)],
        )
        if top == self._last_top:
            return []
        self._last_top = top
        return [self._message(top, frame.ts_ms, seq_id)]

    def flush(self) -> list[bytes]:
        return []

    def _message(self, top: tuple[list[Sequence[str]], list[Sequence[str]]], ts_ms: int, seq_id: int) -> bytes:
        bids, asks = top
        item: dict[str, Any] = {"asks": asks, "bids": bids}
        if self._channel == BOOKS5:
            item["instId"] = self._inst_id
        item["ts"] = str(ts_ms)
        item["seqId"] = seq_id
        return orjson.dumps({"arg": {"channel": self._channel, "instId": self._inst_id}, "data": [item]})


def _apply(side: dict[float, Sequence[str]], levels: Sequence[Sequence[str]]) -> None:
    for level in levels:
        price = float(level[0])
        if float(level[1]) == 0:
            side.pop(price, None)
        else:
            side[price] = level
