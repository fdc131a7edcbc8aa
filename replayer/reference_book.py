"""A deliberately plain order book: the venue side's truth, used by the fake server and the oracle.

It shares no code with the subject's book (harness/book.py), so a bug there cannot hide itself by
being repeated here. Levels keep the venue's own price and size strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sortedcontainers import SortedDict


class ReferenceBook:
    """Price levels per side, keyed by the float price, holding `(price_str, size_str)`."""

    __slots__ = ("_asks", "_bids", "last_update_id")

    def __init__(self) -> None:
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        self.last_update_id = 0

    def load(self, last_update_id: int, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        self._bids.clear()
        self._asks.clear()
        self._apply_side(self._bids, bids)
        self._apply_side(self._asks, asks)
        self.last_update_id = last_update_id

    def apply(self, last_update_id: int, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        self._apply_side(self._bids, bids)
        self._apply_side(self._asks, asks)
        self.last_update_id = last_update_id

    @staticmethod
    def _apply_side(side: SortedDict, levels: Iterable[Sequence[str]]) -> None:
        for level in levels:
            price, size = level[0], level[1]
            key = float(price)
            if float(size) == 0.0:
                side.pop(key, None)
            else:
                side[key] = (price, size)

    def has_level(self, bid: bool, price: str) -> bool:
        return float(price) in (self._bids if bid else self._asks)

    def bids(self, depth: int | None = None) -> list[tuple[str, str]]:
        """Best first. A slice of the sorted view, not an index per level: the oracle takes the top 20
        after every depth frame, and one index costs a bisection in Python."""
        values = self._bids.values()
        return values[::-1] if depth is None else values[-depth:][::-1] if depth > 0 else []

    def asks(self, depth: int | None = None) -> list[tuple[str, str]]:
        """Best first."""
        values = self._asks.values()
        return values[:] if depth is None else values[: max(depth, 0)]

    def copy(self) -> ReferenceBook:
        other = ReferenceBook()
        other._bids = self._bids.copy()
        other._asks = self._asks.copy()
        other.last_update_id = self.last_update_id
        return other

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)
