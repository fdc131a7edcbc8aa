"""OKX frames -> venue-neutral book events, for the subject (our default client's pipeline).

A `books` snapshot (and every `books5`/`bbo-tbt` message) is a `DepthSnapshot` at its `seqId`; an
update is a `DepthDelta` covering `seqId` alone, linked by `prevSeqId`, with the checksum its
sequencing rule verifies after applying it. Frames from before OKX sent `seqId` use `ts` as the id
and have no link (`prev_last_update_id` None), so only their checksum guards them. Anything that is
not the venue's shape raises DecodeError, so the caller can count it and go on; control frames and
other channels decode to None.
"""

from __future__ import annotations

from harness.book_events import DepthDelta, DepthSnapshot
from harness.venues.okx.frames import book_frame


def decode_frame(payload: bytes | str) -> DepthSnapshot | DepthDelta | None:
    frame = book_frame(payload)
    if frame is None:
        return None
    seq_id = frame.seq_id if frame.seq_id is not None else frame.ts_ms
    if frame.snapshot:
        return DepthSnapshot(frame.inst_id, seq_id, frame.bids, frame.asks)
    return DepthDelta(
        symbol=frame.inst_id,
        first_update_id=seq_id,
        last_update_id=seq_id,
        bids=frame.bids,
        asks=frame.asks,
        prev_last_update_id=frame.prev_seq_id,
        event_time_ms=frame.ts_ms,
        checksum=frame.checksum,
    )
