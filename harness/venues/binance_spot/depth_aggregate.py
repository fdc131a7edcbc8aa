"""Binance's slower diff-depth stream computed from a recorded faster one: `@depth` (1000 ms) from
`@depth@100ms`, as the venue itself computes it, for clients that subscribe to the default stream
(python-binance does) when only the 100 ms stream was recorded.

Pure: frames go in as the server sends them (recorded bytes, faults applied), aggregated `data` bytes
come out. Frames of one window of recorded time merge into one update (`U` of the first, `u` and `E` of
the last, each price's latest size, the recorded strings kept). An aggregate only ever spans
contiguous updates, so what a fault did to the fast stream stays visible in the slow one: a frame that
does not follow the last one aggregated (a gap, a reordered frame) closes the pending aggregate and
starts the next, so the client sees the hole; a frame already covered (a duplicate, a late one) is
left out, as the venue would not count an update twice; an undecodable frame closes the pending
aggregate and is lost, which the client sees as a gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

WINDOW_NS = 1_000_000_000


@dataclass(slots=True)
class _Pending:
    window: int
    event_time: object
    symbol: object
    first: int
    last: int
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)

    def data(self) -> bytes:
        return orjson.dumps(
            {
                "e": "depthUpdate",
                "E": self.event_time,
                "s": self.symbol,
                "U": self.first,
                "u": self.last,
                "b": [[p, q] for p, q in self.bids.items()],
                "a": [[p, q] for p, q in self.asks.items()],
            }
        )


class DepthAggregate:
    """One slow stream built from one recorded fast stream; `add` each send, `flush` at the end."""

    def __init__(self, window_ns: int = WINDOW_NS) -> None:
        if window_ns <= 0:
            raise ValueError("window_ns must be positive")
        self._window_ns = window_ns
        self._pending: _Pending | None = None
        self._covered: int | None = None

    def add(self, offset_ns: int, payload: bytes) -> list[bytes]:
        """The aggregated `data` payloads this send completes (none, or the one it closed)."""
        data = _depth_data(payload)
        if data is None:
            return self.flush()
        first, last = data["U"], data["u"]
        if self._covered is not None and last <= self._covered:
            return []
        out: list[bytes] = []
        window = offset_ns // self._window_ns
        pending = self._pending
        if pending is not None and (pending.window != window or first != pending.last + 1):
            out = self.flush()
            pending = None
        if pending is None:
            pending = self._pending = _Pending(window, data["E"], data["s"], first, last)
        pending.last, pending.event_time = last, data["E"]
        for side, levels in ((pending.bids, data["b"]), (pending.asks, data["a"])):
            for price, size in levels:
                side.pop(price, None)  # re-inserted last, so a level keeps the order it was last changed in
                side[price] = size
        self._covered = last
        return out

    def flush(self) -> list[bytes]:
        pending, self._pending = self._pending, None
        return [] if pending is None else [pending.data()]


def _depth_data(payload: bytes) -> dict | None:
    """The depthUpdate `data` of a combined or raw payload with well-typed ids and levels, else None."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    data = doc.get("data", doc) if isinstance(doc, dict) else None
    if not isinstance(data, dict) or data.get("e") != "depthUpdate":
        return None
    if type(data.get("U")) is not int or type(data.get("u")) is not int:
        return None
    for key in ("b", "a"):
        levels = data.get(key)
        if not isinstance(levels, list) or not all(
            isinstance(level, list) and len(level) == 2 and all(isinstance(v, str) for v in level) for level in levels
        ):
            return None
    return data
