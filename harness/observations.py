"""What a subject reports to the harness: book states, sync events and its final book.

This is the boundary a user's own components implement (`--subject module:factory`): whatever the
subject is, it hands the runner these three types, in the order things happened, and the checker
judges them against the oracle. They are slots dataclasses (cheap to build on the hot path) with
`to_wire`/`from_wire` to plain lists, so a subject in another process can stream them as orjson
lines; `dumps`/`loads` tag each message with its type for such a stream.

Contract the subject must keep:
- one `BookObservation` per applied depth update (not for frames it dropped as duplicates or stale),
  and one right after a snapshot is loaded; `synced` is True only when the subject can prove its book
  is in sync (the checker compares every synced observation with the oracle at `update_id`);
- a `SyncEvent` for each loss of sync (`gap_detected`, `resync`, `connection_closed`, ...) and each
  regain (`synced`); `symbol=""` means every symbol of the connection;
- one `FinalBook` per symbol when the run ends, with the full book.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from harness.errors import HarnessError

Level = tuple[Any, Any]
"""[price, size]: the venue's strings, or numbers (float, int, Decimal) the checker compares by value."""

SYNC_EVENT_KINDS = frozenset(
    {
        "connection_open",
        "connection_closed",
        "gap_detected",
        "resync",
        "synced",
        "stale_snapshot",
        "snapshot_error",
        "decode_error",
        "dropped",
    }
)
"""Every kind a SyncEvent may have; a misspelt kind would silently count as nothing, so it is refused."""

LOSES_SYNC = frozenset({"connection_closed", "gap_detected", "resync", "stale_snapshot"})
"""Kinds after which the subject's book is no longer in sync until its next `synced`."""


@dataclass(slots=True)
class BookObservation:
    """The subject's top of book (20 levels per side, best first) after applying `update_id`.

    The four monotonic stamps are when the frame carrying the update was received, parsed,
    taken off the queue and applied; for an observation made right after a snapshot, all four
    may be the moment the snapshot was loaded.
    """

    symbol: str
    update_id: int
    synced: bool
    bids: Sequence[Level]
    asks: Sequence[Level]
    recv_mono_ns: int
    parsed_mono_ns: int
    dequeued_mono_ns: int
    applied_mono_ns: int

    def to_wire(self) -> list[Any]:
        return [
            self.symbol,
            self.update_id,
            self.synced,
            self.bids,
            self.asks,
            self.recv_mono_ns,
            self.parsed_mono_ns,
            self.dequeued_mono_ns,
            self.applied_mono_ns,
        ]

    @classmethod
    def from_wire(cls, row: Sequence[Any]) -> BookObservation:
        symbol, update_id, synced, bids, asks, recv, parsed, dequeued, applied = _unpack(
            row, "an observation", _OBSERVATION_FIELDS
        )
        return cls(symbol, update_id, bool(synced), _levels(bids), _levels(asks), recv, parsed, dequeued, applied)


@dataclass(slots=True)
class SyncEvent:
    """Something the subject's sync or connection did; `detail` is free text for the report."""

    kind: str
    mono_ns: int
    detail: str = ""
    symbol: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SYNC_EVENT_KINDS:
            raise HarnessError(
                f"subject sent sync event kind {self.kind!r}; expected one of {sorted(SYNC_EVENT_KINDS)}"
            )

    def to_wire(self) -> list[Any]:
        return [self.kind, self.mono_ns, self.detail, self.symbol]

    @classmethod
    def from_wire(cls, row: Sequence[Any]) -> SyncEvent:
        kind, mono_ns, detail, symbol = _unpack(row, "a sync event", _SYNC_EVENT_FIELDS)
        return cls(kind, mono_ns, detail, symbol)


@dataclass(slots=True)
class FinalBook:
    """The subject's whole book for `symbol` when the run ended, best first on both sides."""

    symbol: str
    update_id: int
    synced: bool
    bids: Sequence[Level]
    asks: Sequence[Level]

    def to_wire(self) -> list[Any]:
        return [self.symbol, self.update_id, self.synced, self.bids, self.asks]

    @classmethod
    def from_wire(cls, row: Sequence[Any]) -> FinalBook:
        symbol, update_id, synced, bids, asks = _unpack(row, "a final book", _FINAL_BOOK_FIELDS)
        return cls(symbol, update_id, bool(synced), _levels(bids), _levels(asks))


SubjectMessage = BookObservation | SyncEvent | FinalBook

_TAGS: dict[type, str] = {BookObservation: "o", SyncEvent: "e", FinalBook: "f"}
_TYPES: dict[str, Any] = {tag: cls for cls, tag in _TAGS.items()}


def dumps(message: SubjectMessage) -> bytes:
    """One message as a tagged orjson array, for a subject that runs in another process."""
    return orjson.dumps([_TAGS[type(message)], message.to_wire()], default=_decimal_as_text)


def _decimal_as_text(value: Any) -> str:
    """orjson's hook for what it cannot write: a Decimal travels as its exact text."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"a book level holds a {type(value).__name__}; expected str, int, float or Decimal")


def loads(data: bytes | str) -> SubjectMessage:
    """The inverse of `dumps`; anything else raises HarnessError naming what was wrong."""
    try:
        tag, row = orjson.loads(data)
        cls = _TYPES[tag]
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError):
        raise HarnessError(f"subject sent a message that is not a tagged observation: {_head(data)!r}") from None
    try:
        if cls is BookObservation:
            return _observation(row)
        return cls.from_wire(row)
    except (TypeError, IndexError, KeyError):
        raise HarnessError(f"subject sent book levels that are not [price, size] pairs: {_head(data)!r}") from None


# The exact type of each wire field (None: checked elsewhere, or any); a wrong one would otherwise
# surface as a traceback deep in the checker instead of as the subject's protocol error.
_OBSERVATION_FIELDS = (str, int, None, None, None, int, int, int, int)
_SYNC_EVENT_FIELDS = (str, int, str, str)
_FINAL_BOOK_FIELDS = (str, int, None, None, None)


def _observation(row: Any) -> BookObservation:
    """`BookObservation.from_wire` for the line that is most of every stream, its field checks written
    out (a third of the decode's time went to the general field loop); any other row takes that loop,
    which names the field that is wrong."""
    if type(row) is list and len(row) == 9:
        symbol, update_id, synced, bids, asks, recv, parsed, dequeued, applied = row
        if (
            type(symbol) is str
            and type(update_id) is int
            and type(recv) is int
            and type(parsed) is int
            and type(dequeued) is int
            and type(applied) is int
        ):
            levels = _levels
            return BookObservation(
                symbol, update_id, bool(synced), levels(bids), levels(asks), recv, parsed, dequeued, applied
            )
    return BookObservation.from_wire(row)


def _head(data: bytes | str) -> bytes:
    return data[:80] if isinstance(data, bytes) else data[:80].encode()


def _unpack(row: Sequence[Any], what: str, fields: tuple[type | None, ...]) -> Sequence[Any]:
    if not isinstance(row, list | tuple):
        raise HarnessError(f"subject sent {what} that is not a list: {row!r:.80}")
    if len(row) != len(fields):
        raise HarnessError(f"subject sent {what} with {len(row)} fields; expected {len(fields)}")
    for i, (value, wanted) in enumerate(zip(row, fields, strict=True)):
        if wanted is not None and type(value) is not wanted:
            raise HarnessError(f"subject sent {what} whose field {i} is {value!r:.40}; expected {wanted.__name__}")
    return row


def _levels(levels: Sequence[Sequence[str]]) -> list[Level]:
    return [(level[0], level[1]) for level in levels]
