"""OKX `books` messages, written: the exact bytes OKX sends for a snapshot, an update or a heartbeat.

As OKX writes them (the 2022 capture and the v5 docs): compact JSON, `arg` then `action` then `data`,
one object in `data` with `asks`, `bids`, `ts` (a string of epoch milliseconds), `checksum`,
`prevSeqId` (-1 on a snapshot) and `seqId`; a level is `[price, size, "0", orders]` (the third field
is deprecated and always "0"); numbers are written without trailing zeros ("30261", "0.0026"). The
fake venue and the synth use these; recorded frames are never re-encoded.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from harness.book_events import Level
from harness.venues.okx.channels import BOOKS
from harness.venues.okx.checksum import book_checksum

SNAPSHOT_PREV_SEQ_ID = -1
_UNITS = 10**8


def okx_decimal(units: int) -> str:
    """`units` of 1e-8 as OKX writes an amount: 3024940000000 -> "30249.4", 100000000 -> "1"."""
    if units < 0:
        raise ValueError(f"amounts are not negative: {units}")
    whole, frac = divmod(units, _UNITS)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:08d}".rstrip("0")


def wire_level(price: str, size: str, orders: int) -> list[str]:
    return [price, size, "0", str(orders)]


def books_message(
    inst_id: str,
    *,
    snapshot: bool,
    bids: Sequence[Sequence[str]],
    asks: Sequence[Sequence[str]],
    ts_ms: int,
    seq_id: int,
    prev_seq_id: int,
    checksum: int,
) -> bytes:
    """A `books` message; levels are already `[price, size, "0", orders]`, best first."""
    return orjson.dumps(
        {
            "arg": {"channel": BOOKS, "instId": inst_id},
            "action": "snapshot" if snapshot else "update",
            "data": [
                {
                    "asks": asks,
                    "bids": bids,
                    "ts": str(ts_ms),
                    "checksum": checksum,
                    "prevSeqId": SNAPSHOT_PREV_SEQ_ID if snapshot else prev_seq_id,
                    "seqId": seq_id,
                }
            ],
        }
    )


def snapshot_message(
    inst_id: str, bids: Sequence[Level], asks: Sequence[Level], *, seq_id: int, ts_ms: int, depth: int = 400
) -> bytes:
    """The `action: snapshot` message for a book (levels best first, `(price, size)` or wire levels),
    cut to `depth` a side, with the checksum of its top 25 levels."""
    top_bids = [_as_wire(level) for level in bids[:depth]]
    top_asks = [_as_wire(level) for level in asks[:depth]]
    return books_message(
        inst_id,
        snapshot=True,
        bids=top_bids,
        asks=top_asks,
        ts_ms=ts_ms,
        seq_id=seq_id,
        prev_seq_id=SNAPSHOT_PREV_SEQ_ID,
        checksum=book_checksum(top_bids, top_asks),
    )


def _as_wire(level: Level) -> list[str]:
    if len(level) >= 4:
        return list(level[:4])
    return wire_level(level[0], level[1], 1)
