"""Binance USD-M as the oracle reads it: its own decoding of depth frames (with `pu`) and bridge rule.

Independent of the subject's decoder and sync rule and of the venue side (harness/venues/dialect.py,
tests/test_house.py). The frames are spot's shape plus `pu`, so decoding is the oracle's spot copy
with `pu` required; the bridge differs by one: the first event applied on a snapshot at
`lastUpdateId` has `U <= lastUpdateId` (the real capture's has `u == lastUpdateId`), or is the one
whose `pu` is exactly `lastUpdateId` (a snapshot taken between two events).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.venues.binance_spot import oracle_rule as spot

if TYPE_CHECKING:
    from harness.oracle import DepthFrame
    from replayer.timeline import Frame


def decode(frame: Frame) -> spot.OracleDepth | None:
    return spot.decode(frame, linked=True)


book_stream = spot.book_stream


def bridges(ids: DepthFrame, snapshot_id: int) -> bool:
    return ids.first_update_id <= snapshot_id or ids.prev_last == snapshot_id
