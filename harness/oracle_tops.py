"""The oracle's top 20 per known state, compressed in blocks of consecutive states, kept on disk.

The oracle keeps a top of book for every clean depth frame because observations come back to old
states after a resync (a stale snapshot can take a subject thousands of frames back). As level
tuples those cost about 1.9 KB a frame; as orjson lines, one block of consecutive states compressed
together (neighbouring tops share most of their levels), about a tenth of that, and that tenth goes
to a temporary file (in memory up to SPILL_BYTES, a real file past that). Memory holds only the
index, 16 bytes a state in two arrays per symbol (ids ascending, as a symbol's states come, and
where each top is), so it stays flat however long the recording. Observations ask mostly in
recording order, so one decompressed block is kept.

A key's place can be known before its top is (`plan`, then `fill` in the same order): the oracle
learns every state from the frames' ids first and computes the tops later, as they are asked for.
The last top filled is kept as the book gave it, so the state just computed for an observation is
answered without a round trip through orjson.
"""

from __future__ import annotations

import tempfile
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

import orjson

Side = tuple[tuple[str, str], ...]
TOPS_PER_BLOCK = 64
SPILL_BYTES = 4 << 20
"""Compressed blocks kept in memory before they go to a real temporary file (a short run never opens one)."""


class TopsStore:
    """(symbol, update id) -> (bids, asks), best first; a key stored again answers with its latest top.

    `put` stores a top at once; `plan` gives a key the next place and `fill` stores the tops of the
    places planned, in order, later (`filled` says how many are in: `get` of a place not yet filled
    is the caller's bug)."""

    __slots__ = (
        "_answer",
        "_blocks",
        "_cached",
        "_count",
        "_file",
        "_ids",
        "_last",
        "_open",
        "_places",
        "_planned",
        "_stray",
        "filled",
    )

    def __init__(self) -> None:
        self._ids: dict[str, array] = {}
        """Per symbol, the ids of its states in ascending order (where `_places` says their tops are)."""
        self._places: dict[str, array] = {}
        self._stray: dict[tuple[str, int], int] = {}
        """Where a key stored below its symbol's highest id went (a recording that went back): rare."""
        self._blocks = array("q")
        """Where each sealed block starts in the file, and where the next would."""
        self._blocks.append(0)
        self._file: tempfile.SpooledTemporaryFile[bytes] | None = None
        self._open: list[bytes] = []
        self._cached: tuple[int, list[bytes]] = (-1, [])
        self._last: tuple[int, Sequence[Sequence[str]], Sequence[Sequence[str]]] = (-1, (), ())
        """The last place filled and its top as `fill` had it."""
        self._answer: tuple[int, tuple[Side, Side]] = (-1, ((), ()))
        """The last place `get` answered, and its answer (observations of one state come in runs)."""
        self._planned = 0
        self.filled = 0
        self._count = 0

    def put(self, key: tuple[str, int], bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> None:
        self.plan(key)
        self.fill(bids, asks)

    def plan(self, key: tuple[str, int]) -> int:
        """Gives `key` the next place (its top is the next `fill` but the ones planned before); returns it."""
        place = self._planned
        self._planned += 1
        symbol, update_id = key
        ids = self._ids.get(symbol)
        if ids is None:
            ids = self._ids[symbol] = array("q")
            self._places[symbol] = array("q")
        if not ids or update_id > ids[-1]:
            ids.append(update_id)
            self._places[symbol].append(place)
            self._count += 1
        elif update_id == ids[-1]:
            self._places[symbol][-1] = place
        else:
            if key not in self._stray and self._where_in_order(symbol, update_id) is None:
                self._count += 1
            self._stray[key] = place
        return place

    def fill(self, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> None:
        """The top of the first place planned and not yet filled; kept as given until the next fill."""
        place = self.filled
        if place >= self._planned:
            raise ValueError(f"fill of place {place}, but only {self._planned} were planned")
        self.filled += 1
        self._last = (place, bids, asks)
        self._open.append(orjson.dumps((bids, asks)))
        if len(self._open) == TOPS_PER_BLOCK:
            self._seal()

    def place(self, key: tuple[str, int]) -> int | None:
        """Where `key`'s latest top is (or will be, once filled); None for a key never planned."""
        place = self._stray.get(key)
        return place if place is not None else self._where_in_order(*key)

    def __contains__(self, key: tuple[str, int]) -> bool:
        return self.place(key) is not None

    def __len__(self) -> int:
        return self._count

    def get(self, key: tuple[str, int]) -> tuple[Side, Side] | None:
        place = self.place(key)
        return None if place is None else self.at(place)

    def at(self, place: int) -> tuple[Side, Side]:
        """The top filled at `place` (a `place` answer)."""
        if place == self._answer[0]:
            return self._answer[1]
        if place >= self.filled:
            raise ValueError(f"place {place} is not filled yet ({self.filled} are)")
        last_place, last_bids, last_asks = self._last
        answer = (_side(last_bids), _side(last_asks)) if place == last_place else self._decoded(place)
        self._answer = (place, answer)
        return answer

    def close(self) -> None:
        """Gives the disk back; the store answers nothing afterwards."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._ids, self._places, self._stray = {}, {}, {}
        self._blocks = array("q", [0])
        self._open, self._cached, self._last, self._answer = [], (-1, []), (-1, (), ()), (-1, ((), ()))
        self._planned = self.filled = self._count = 0

    def _decoded(self, place: int) -> tuple[Side, Side]:
        block, slot = divmod(place, TOPS_PER_BLOCK)
        if block == len(self._blocks) - 1:
            line = self._open[slot]
        else:
            if self._cached[0] != block:
                self._cached = (block, self._read(block).split(b"\n"))
            line = self._cached[1][slot]
        bids, asks = orjson.loads(line)
        return _side(bids), _side(asks)

    def _where_in_order(self, symbol: str, update_id: int) -> int | None:
        ids = self._ids.get(symbol)
        if ids is None:
            return None
        i = bisect_left(ids, update_id)
        return self._places[symbol][i] if i < len(ids) and ids[i] == update_id else None

    def _seal(self) -> None:
        if self._file is None:
            self._file = tempfile.SpooledTemporaryFile(SPILL_BYTES, prefix="harness-oracle-")  # noqa: SIM115 (closed by close())
        # orjson lines never hold a raw newline (it escapes control characters).
        block = zlib.compress(b"\n".join(self._open), 1)
        self._file.seek(self._blocks[-1])
        self._file.write(block)
        self._blocks.append(self._blocks[-1] + len(block))
        self._open = []

    def _read(self, block: int) -> bytes:
        assert self._file is not None
        self._file.seek(self._blocks[block])
        return zlib.decompress(self._file.read(self._blocks[block + 1] - self._blocks[block]))


def _side(levels: Any) -> Side:
    """(price, size) pairs as the tuples the checker compares."""
    return tuple(map(tuple, levels))
