"""One OKX public frame read for what the order book needs: its stream, ids, levels and checksum.

Shapes (OKX v5 docs, "Order book channel"; the 2022 cryptofeed capture for the real bytes):
- data: `{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot"|"update","data":[{"asks":
  [[px,sz,"0",orders],...],"bids":[...],"ts":"..","checksum":int,"prevSeqId":int,"seqId":int}]}`;
  `books5` and `bbo-tbt` have no `action` (every message is the whole top) and no `prevSeqId`;
- control: `{"event":"subscribe"|"unsubscribe"|"error",...}` and the text `pong`.
A snapshot's `prevSeqId` is -1. Frames from before 2023 carry no `seqId` at all (the capture's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from harness.book_events import DecodeError, Level
from harness.venues.okx.channels import BOOK_CHANNELS, SNAPSHOT_ONLY_CHANNELS, stream_key
from harness.venues.okx.checksum import provided


@dataclass(frozen=True, slots=True)
class BookFrame:
    """A book message: `seq_id` None for a frame from before OKX sent one; `prev_seq_id` None on a
    snapshot (OKX's -1) and where the channel has none; `checksum` None where none was given (or 0)."""

    channel: str
    inst_id: str
    snapshot: bool
    bids: Sequence[Level]
    asks: Sequence[Level]
    ts_ms: int
    seq_id: int | None
    prev_seq_id: int | None
    checksum: int | None

    @property
    def stream(self) -> str:
        return stream_key(self.channel, self.inst_id)


def loads(payload: bytes | str) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from None


def arg_of(doc: Any) -> tuple[str, str] | None:
    """(channel, instId) a parsed frame's `arg` names, None when it names none (pong, login...)."""
    if type(doc) is not dict:
        return None
    arg = doc.get("arg")
    if type(arg) is not dict:
        return None
    channel = arg.get("channel")
    inst_id = arg.get("instId")
    if type(channel) is not str or type(inst_id) is not str:
        return None
    return channel, inst_id


def book_frame(payload: bytes | str) -> BookFrame | None:
    """The book message `payload` holds; None for any other frame (acks, errors, trades, `pong`).

    Raises DecodeError for a book-channel data frame that does not have OKX's shape.
    """
    if payload in (b"pong", "pong"):
        return None
    doc = loads(payload)
    named = arg_of(doc)
    if named is None or named[0] not in BOOK_CHANNELS or "data" not in doc or "event" in doc:
        return None
    return parse_book(doc, *named)


def parse_book(doc: dict[str, Any], channel: str, inst_id: str) -> BookFrame:
    """An already parsed book-channel data frame, checked field by field."""
    data = doc["data"]
    if type(data) is not list or len(data) != 1 or type(data[0]) is not dict:
        raise DecodeError(f"{channel}:{inst_id}: `data` is not a list of one object")
    item = data[0]
    action = doc.get("action")
    if channel in SNAPSHOT_ONLY_CHANNELS:
        snapshot = True
    elif action in ("snapshot", "update"):
        snapshot = action == "snapshot"
    else:
        raise DecodeError(f"{channel}:{inst_id}: `action` is {action!r}, not snapshot or update")
    bids = item.get("bids")
    asks = item.get("asks")
    if type(bids) is not list or type(asks) is not list:
        raise DecodeError(f"{channel}:{inst_id}: `bids` and `asks` must be lists")
    for level in (*bids, *asks):
        if type(level) is not list or len(level) < 2 or type(level[0]) is not str or type(level[1]) is not str:
            raise DecodeError(f"{channel}:{inst_id}: a level is not [price, size, ...] strings: {level!r}")
    seq_id = item.get("seqId")
    prev = item.get("prevSeqId")
    checksum = item.get("checksum")
    ts = item.get("ts")
    if seq_id is not None and type(seq_id) is not int:
        raise DecodeError(f"{channel}:{inst_id}: `seqId` is not an integer")
    if prev is not None and type(prev) is not int:
        raise DecodeError(f"{channel}:{inst_id}: `prevSeqId` is not an integer")
    if checksum is not None and type(checksum) is not int:
        raise DecodeError(f"{channel}:{inst_id}: `checksum` is not an integer")
    try:
        ts_ms = int(ts) if ts is not None else 0
    except (TypeError, ValueError):
        raise DecodeError(f"{channel}:{inst_id}: `ts` is not a millisecond time: {ts!r}") from None
    if not snapshot and seq_id is not None and prev is None:
        raise DecodeError(f"{channel}:{inst_id}: an update with `seqId` but no `prevSeqId`")
    return BookFrame(
        channel=channel,
        inst_id=inst_id,
        snapshot=snapshot,
        bids=bids,
        asks=asks,
        ts_ms=ts_ms,
        seq_id=seq_id,
        prev_seq_id=None if snapshot or prev is None or prev < 0 else prev,
        checksum=provided(checksum),
    )


def stream_of(payload: bytes | str) -> str | None:
    """The `channel:instId` a data frame belongs to; None for control frames (acks, errors, `pong`)."""
    if payload in (b"pong", "pong"):
        return None
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    named = arg_of(doc)
    if named is None or "event" in doc or "data" not in doc:
        return None
    return stream_key(*named)
