"""The oracle's own copy of OKX's `books` rule: its own reading of a frame, its own chain test.

On purpose it imports neither the subject's decoder and sequencing nor harness/book.py and
harness/sync.py (tests check the imports), so a bug there cannot be repeated here and hide. It
shares the checksum (harness/venues/okx/checksum.py, venue side, checked against every message of a
real capture) and replays onto replayer/reference_book.py's plain book.

The rule, from OKX's docs: a snapshot (`action: snapshot`, every `books5`/`bbo-tbt` message) loads
the book; an update applies when its `prevSeqId` is the last applied `seqId` (the heartbeat with
`prevSeqId == seqId`, and the update after maintenance whose `seqId` drops below its `prevSeqId`,
both link that way); an older, already applied message is a duplicate; anything else is a break,
after which the book is unknown until the next snapshot. Where the frame carries a nonzero
checksum, the book after it must match, or it is unknown too. Updates without `seqId` (before
2023) apply wherever they come; only the checksum can vouch for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import orjson

from harness.errors import HarnessError
from harness.venues.okx.checksum import book_checksum
from replayer.reference_book import ReferenceBook

if TYPE_CHECKING:
    from harness.oracle import DepthFrame
    from replayer.timeline import Frame

_BOOK_CHANNELS = ("books", "books5", "bbo-tbt")
_WHOLE_TOP = ("books5", "bbo-tbt")
CHECKSUM_DEPTH = 25


@dataclass(frozen=True, slots=True)
class OracleBookFrame:
    symbol: str
    seq_id: int | None
    prev_seq_id: int | None
    snapshot: bool
    bids: Sequence[Sequence[str]]
    asks: Sequence[Sequence[str]]
    checksum: int | None
    ts_ms: int

    @property
    def book_id(self) -> int:
        """The id a book after this frame is known by: `seqId`, or `ts` before OKX sent one."""
        return self.seq_id if self.seq_id is not None else self.ts_ms

    def follows(self, last_seq_id: int) -> bool:
        if self.snapshot or self.seq_id is None:
            return True
        return self.prev_seq_id == last_seq_id


def read_book_frame(payload: bytes) -> OracleBookFrame | None:
    """A recorded book message, None for anything else; HarnessError for a broken book message."""
    if payload == b"pong":
        return None
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise HarnessError("recording: an OKX frame that is not JSON") from None
    if not isinstance(doc, dict) or "data" not in doc or "event" in doc:
        return None
    arg = doc.get("arg")
    if not isinstance(arg, dict) or arg.get("channel") not in _BOOK_CHANNELS:
        return None
    channel = arg["channel"]
    try:
        item = doc["data"][0]
        seq = item.get("seqId")
        prev = item.get("prevSeqId")
        checksum = item.get("checksum")
        return OracleBookFrame(
            symbol=str(arg["instId"]),
            seq_id=int(seq) if seq is not None else None,
            prev_seq_id=int(prev) if prev is not None else None,
            snapshot=channel in _WHOLE_TOP or doc["action"] == "snapshot",
            bids=list(item["bids"]),
            asks=list(item["asks"]),
            checksum=int(checksum) if checksum else None,
            ts_ms=int(item.get("ts", 0)),
        )
    except (KeyError, IndexError, TypeError, ValueError):
        raise HarnessError(f"recording: an OKX {channel} frame without data, action, bids or asks") from None


OracleDepth = tuple[str, int, int, "int | None", Sequence[Any], Sequence[Any]]
"""(symbol, first id, last id, link to the previous last id, bids, asks): harness/oracle.py's shape."""


def decode(frame: Frame) -> OracleDepth | None:
    """A book message in harness/oracle.py's generic shape, None for any other frame. A snapshot's link
    is None, not its `prevSeqId` -1: read as a link, -1 would claim every id below the snapshot's, and
    the checker's hole search would count a resubscribe snapshot as the delivery of the updates before
    it. An update without `seqId` (before 2023) has no link: `unlinked` says so, and the oracle
    applies it after whatever came before, with `verify` holding it to its checksum."""
    read = read_book_frame(frame.payload)
    if read is None:
        return None
    link = None if read.snapshot else read.prev_seq_id
    return read.symbol, read.book_id, read.book_id, link, read.bids, read.asks


def unlinked(frame: Frame) -> bool:
    """Whether a book frame is an update without `seqId` (OKX before 2023): nothing to link it by."""
    read = read_book_frame(frame.payload)
    return read is not None and not read.snapshot and read.seq_id is None


def verify(frame: Frame, book: ReferenceBook) -> bool:
    """Whether the book after a frame matches the frame's checksum (True where it carries none)."""
    read = read_book_frame(frame.payload)
    return read is None or read.checksum is None or _top_checksum(book) == read.checksum


def snapshot(frame: Frame) -> bool:
    """Whether a book frame is an in-stream snapshot (`action: snapshot`, every `books5`/`bbo-tbt`)."""
    read = read_book_frame(frame.payload)
    return read is not None and read.snapshot


def bridges(ids: DepthFrame, snapshot_id: int) -> bool:
    """The first update on a snapshot links to it: `prevSeqId` is the snapshot's `seqId`."""
    return ids.prev_last == snapshot_id


class Verdict(Enum):
    SNAPSHOT = "snapshot"
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    """No book to apply to (nothing since the start or since a break)."""
    BREAK = "break"
    """The chain broke here: the book is unknown until the next snapshot."""
    CHECKSUM = "checksum"
    """The book after this frame does not match the venue's checksum: unknown until a snapshot."""


class OkxOracleBooks:
    """Every instrument's book as the clean recording makes it, frame by frame."""

    __slots__ = ("_books",)

    def __init__(self) -> None:
        self._books: dict[str, ReferenceBook | None] = {}

    def book(self, symbol: str) -> ReferenceBook | None:
        return self._books.get(symbol)

    def feed(self, frame: OracleBookFrame) -> Verdict:
        symbol = frame.symbol
        book = self._books.get(symbol)
        if frame.snapshot:
            book = ReferenceBook()
            book.load(frame.book_id, frame.bids, frame.asks)
            return self._checked(symbol, book, frame, Verdict.SNAPSHOT)
        if book is None:
            return Verdict.UNKNOWN
        if not frame.follows(book.last_update_id):
            prev = frame.prev_seq_id
            if frame.book_id <= book.last_update_id and prev is not None and prev < book.last_update_id:
                return Verdict.DUPLICATE
            self._books[symbol] = None
            return Verdict.BREAK
        book.apply(frame.book_id, frame.bids, frame.asks)
        return self._checked(symbol, book, frame, Verdict.APPLIED)

    def _checked(self, symbol: str, book: ReferenceBook, frame: OracleBookFrame, verdict: Verdict) -> Verdict:
        if frame.checksum is not None and _top_checksum(book) != frame.checksum:
            self._books[symbol] = None
            return Verdict.CHECKSUM
        self._books[symbol] = book
        return verdict


def _top_checksum(book: ReferenceBook) -> int:
    return book_checksum(book.bids(CHECKSUM_DEPTH), book.asks(CHECKSUM_DEPTH))
