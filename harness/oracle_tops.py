"""The oracle's top 20 per known state, compressed in blocks of consecutive states.

The oracle keeps a top of book for every clean depth frame, for the whole run, because the checker
asks after the run and in any order. As level tuples those cost about 1.9 KB a frame (the tuples, and
the level strings that old tops keep alive after the book has moved on); as orjson lines, one block
of consecutive states compressed together (neighbouring tops share most of their levels), about a
tenth of that. The checker mostly asks in recording order, so one decompressed block is kept.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import orjson

Side = tuple[tuple[str, str], ...]
TOPS_PER_BLOCK = 64


class TopsStore:
    """(symbol, update id) -> (bids, asks), best first; a key stored again answers with its latest top."""

    __slots__ = ("_blocks", "_cached", "_open", "_where")

    def __init__(self) -> None:
        self._where: dict[tuple[str, int], int] = {}
        self._blocks: list[bytes] = []
        self._open: list[bytes] = []
        self._cached: tuple[int, list[bytes]] = (-1, [])

    def put(self, key: tuple[str, int], bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> None:
        self._where[key] = len(self._blocks) * TOPS_PER_BLOCK + len(self._open)
        self._open.append(orjson.dumps((bids, asks)))
        if len(self._open) == TOPS_PER_BLOCK:
            # orjson lines never hold a raw newline (it escapes control characters).
            self._blocks.append(zlib.compress(b"\n".join(self._open), 1))
            self._open = []

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._where

    def __len__(self) -> int:
        return len(self._where)

    def get(self, key: tuple[str, int]) -> tuple[Side, Side] | None:
        position = self._where.get(key)
        if position is None:
            return None
        block, slot = divmod(position, TOPS_PER_BLOCK)
        if block == len(self._blocks):
            line = self._open[slot]
        else:
            if self._cached[0] != block:
                self._cached = (block, zlib.decompress(self._blocks[block]).split(b"\n"))
            line = self._cached[1][slot]
        bids, asks = orjson.loads(line)
        return tuple(map(tuple, bids)), tuple(map(tuple, asks))
