"""The oracle's top 20 per known state, compressed in blocks of consecutive states, kept on disk.

The oracle keeps a top of book for every clean depth frame because observations come back to old
states after a resync (a stale snapshot can take a subject thousands of frames back). As level
tuples those cost about 1.9 KB a frame; as orjson lines, one block of consecutive states compressed
together (neighbouring tops share most of their levels), about a tenth of that, and that tenth goes
to a temporary file (in memory up to SPILL_BYTES, a real file past that). Memory holds only the
index, 16 bytes a state in two arrays per symbol (ids ascending, as a symbol's states come, and
where each top is), so it stays flat however long the recording. Observations ask mostly in
recording order, so one decompressed block is kept.
"""

from __future__ import annotations

import tempfile
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Sequence

import orjson

Side = tuple[tuple[str, str], ...]
TOPS_PER_BLOCK = 64
SPILL_BYTES = 4 << 20
"""Compressed blocks kept in memory before they go to a real temporary file (a short run never opens one)."""


class TopsStore:
    """(symbol, update id) -> (bids, asks), best first; a key stored again answers with its latest top."""

    __slots__ = ("_blocks", "_cached", "_count", "_file", "_ids", "_open", "_places", "_puts", "_stray")

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
        self._puts = 0
        self._count = 0

    def put(self, key: tuple[str, int], bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> None:
        place = self._puts
        self._puts += 1
        self._open.append(orjson.dumps((bids, asks)))
        if len(self._open) == TOPS_PER_BLOCK:
            self._seal()
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

    def __contains__(self, key: tuple[str, int]) -> bool:
        return self._where(key) is not None

    def __len__(self) -> int:
        return self._count

    def get(self, key: tuple[str, int]) -> tuple[Side, Side] | None:
        place = self._where(key)
        if place is None:
            return None
        block, slot = divmod(place, TOPS_PER_BLOCK)
        if block == len(self._blocks) - 1:
            line = self._open[slot]
        else:
            if self._cached[0] != block:
                self._cached = (block, self._read(block).split(b"\n"))
            line = self._cached[1][slot]
        bids, asks = orjson.loads(line)
        return tuple(map(tuple, bids)), tuple(map(tuple, asks))

    def close(self) -> None:
        """Gives the disk back; the store answers nothing afterwards."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._ids, self._places, self._stray = {}, {}, {}
        self._blocks = array("q", [0])
        self._open, self._cached, self._puts, self._count = [], (-1, []), 0, 0

    def _where(self, key: tuple[str, int]) -> int | None:
        place = self._stray.get(key)
        return place if place is not None else self._where_in_order(*key)

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
