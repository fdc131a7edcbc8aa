"""Facts about clean depth frames that several venue tests ask, kept in one place."""

from __future__ import annotations

from replayer.replay_data import depth_levels
from replayer.timeline import Frame


def can_straddle(frame: Frame) -> bool:
    """An event with two update ids and two entries or more: a state inside it exists."""
    bids, asks = depth_levels(frame)
    assert frame.first_update_id is not None and frame.last_update_id is not None
    return frame.last_update_id > frame.first_update_id and len(bids) + len(asks) >= 2
