"""A deliberately plain order book: the venue side's truth, used by the fake server and the oracle.

It shares no code with the subject's book (harness/book.py), so a bug there cannot hide itself by
being repeated here. Levels keep the venue's own price and size strings.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence


class ReferenceBook:
    """Price levels per side: a dict by float price holding `(price_str, size_str)`, and the prices in
    a sorted list, best first (bids by negated price), kept with `bisect` in C.

    The oracle takes the top 20 after every depth frame and applies every level of every frame: a
    list and a dict do both about 2.3x faster than a SortedDict (measured on a 1 h synth, 320 levels
    a side). A new price costs a memmove of the list's tail, which stays under a few microseconds up
    to tens of thousands of levels a side.
    """

    __slots__ = ("_ask_keys", "_asks", "_bid_keys", "_bids", "last_update_id")

    def __init__(self) -> None:
        self._bids: dict[float, tuple[str, str]] = {}
        self._asks: dict[float, tuple[str, str]] = {}
        self._bid_keys: list[float] = []
        """Negated bid prices, ascending: the best bid first."""
        self._ask_keys: list[float] = []
        self.last_update_id = 0

    def load(self, last_update_id: int, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        for side, keys in ((self._bids, self._bid_keys), (self._asks, self._ask_keys)):
            side.clear()
            keys.clear()
        self.apply(last_update_id, bids, asks)

    def apply(self, last_update_id: int, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        self._apply_side(self._bids, self._bid_keys, bids, -1.0)
        self._apply_side(self._asks, self._ask_keys, asks, 1.0)
        self.last_update_id = last_update_id

    @staticmethod
    def _apply_side(side: dict, keys: list[float], levels: Iterable[Sequence[str]], sign: float) -> None:
        for level in levels:
            price, size = level[0], level[1]
            key = float(price) * sign
            if float(size) == 0.0:
                if side.pop(key, None) is not None:
                    del keys[bisect_left(keys, key)]
            else:
                if key not in side:
                    insort(keys, key)
                side[key] = (price, size)

    def has_level(self, bid: bool, price: str) -> bool:
        return (-float(price) if bid else float(price)) in (self._bids if bid else self._asks)

    def bids(self, depth: int | None = None) -> list[tuple[str, str]]:
        """Best first."""
        side = self._bids
        return [side[key] for key in (self._bid_keys if depth is None else self._bid_keys[: max(depth, 0)])]

    def asks(self, depth: int | None = None) -> list[tuple[str, str]]:
        """Best first."""
        side = self._asks
        return [side[key] for key in (self._ask_keys if depth is None else self._ask_keys[: max(depth, 0)])]

    def copy(self) -> ReferenceBook:
        other = ReferenceBook()
        other._bids = self._bids.copy()
        other._asks = self._asks.copy()
        other._bid_keys = self._bid_keys.copy()
        other._ask_keys = self._ask_keys.copy()
        other.last_update_id = self.last_update_id
        return other

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)
