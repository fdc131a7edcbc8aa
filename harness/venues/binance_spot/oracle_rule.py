"""Binance spot as the oracle reads it: its own decoding of depth frames and its own bridge rule.

A second, independent copy on purpose (harness/venues/dialect.py): it imports nothing of the
subject's decoder or sync rule, nor of the venue side, so a bug there cannot repeat here and hide
(tests/test_house.py checks the imports). The chain link itself (`U == previous u + 1`) is the
oracle's `DepthFrame.follows`, which reads `prev_last` as None here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.oracle import DepthFrame
    from replayer.timeline import Frame

OracleDepth = tuple[str, int, int, "int | None", Sequence[Any], Sequence[Any]]
"""(symbol, first id, last id, link to the previous last id or None, bids, asks)."""


def decode(frame: Frame, *, linked: bool = False) -> OracleDepth | None:
    """A combined-stream depthUpdate's ids and levels, None for any other frame; HarnessError when a
    clean frame is not JSON or a depthUpdate lacks its fields (`pu` too, when `linked`). A frame off
    the depth streams whose bytes do not hold `depthUpdate` cannot be one and is not parsed (most
    frames are trades); every frame on a depth stream is."""
    if "@depth" not in frame.stream and b"depthUpdate" not in frame.payload:
        return None
    try:
        doc = orjson.loads(frame.payload)
    except orjson.JSONDecodeError:
        raise HarnessError(f"recording: clean frame {frame.index} on {frame.stream} is not JSON") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or data.get("e") != "depthUpdate":
        return None
    try:
        symbol = data.get("s") or str(doc["stream"]).split("@", 1)[0].upper()
        prev = int(data["pu"]) if linked else None
        return symbol, int(data["U"]), int(data["u"]), prev, data["b"], data["a"]
    except (KeyError, TypeError, ValueError):
        fields = "U, u, pu, b and a" if linked else "U, u, b and a"
        raise HarnessError(f"recording: clean frame {frame.index} is a depthUpdate without {fields}") from None


def book_stream(stream: str) -> bool:
    """Whether frames on `stream` can be depth updates: the oracle reads no other stream's frames."""
    return "@depth" in stream


def bridges(ids: DepthFrame, snapshot_id: int) -> bool:
    """Spot: the first event applied on a snapshot at `lastUpdateId` has `U <= lastUpdateId + 1`
    (the caller has skipped the events ending before it)."""
    return ids.first_update_id <= snapshot_id + 1
