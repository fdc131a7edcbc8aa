"""The replay's clean frames as a sequence read from the recording on demand, in bounded memory.

A day of one busy symbol is about ten million frames, 6 GB as `Frame` objects, and the replay needs
them one after another (the schedule, the oracle, the fake venue's walk) plus a look-back of a few
thousand (the venue's stale snapshots, faults that hold frames back). So the frames stay in the
recording's segments, read a block at a time when asked for (consecutive chunks of one segment, row
groups or journal batches, merged up to BLOCK_FRAMES frames: a recorder seals a row group every
second, and reading one costs about as much as reading a hundred), the blocks last read kept decoded
up to FRAMES_CACHED frames; what every frame needs without its payload
is held in arrays (`ChainColumns`: a book frame's chain ids, 33 bytes) and per block (`FrameBlock`),
never as a Python object per frame. A `Frame` is made when a block is decoded: the same values `load_replay_data`
made for the whole list before (the index from the replay start, the offset from the first frame
never going back, the stream, the payload as recorded, the chain ids the dialect read).
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Protocol, overload

import pyarrow as pa
import pyarrow.compute as pc

from harness.venues.dialect import ChainIds
from recorder.format import SCHEMA, EventKind, RecordedEvent
from recorder.segments import ROWS_PER_GROUP
from replayer.reader import ChunkKey
from replayer.timeline import Frame

FRAMES_CACHED = 40_000
"""Frames kept decoded (about 20 MB of 300-byte frames): the block being walked and those just behind
it, for look-backs. Counted in frames, not blocks: a block holds BLOCK_FRAMES or more (a row group
holds up to ROWS_PER_GROUP)."""
BLOCK_FRAMES = 4_096
"""Frames a block gathers before it is closed (a chunk is never split). Reading and filtering a chunk
costs about 0.4 ms whatever its size, and a one-second row group of a quiet stream holds tens of
frames: merged, a walk pays that once per block. Small enough that a look-back decodes a few ms."""
MADE_AT_ONCE = 512
"""Frames a block makes at a time as a walk reaches them (`LazyFrames`)."""
FRAME_COLUMNS = ("kind", "stream", "payload", "recv_mono_ns")
OFFSET_COLUMNS = ("kind", "stream", "recv_mono_ns")

_SNAPSHOT = 1
_HAS_PREV = 2


_READ_AHEAD: list[ThreadPoolExecutor] = []


def _read_ahead() -> ThreadPoolExecutor:
    """The one thread every store reads its next block on (made on first use): reads are short, and
    one at a time keeps the segments' files and pyarrow's memory to one block in flight."""
    if not _READ_AHEAD:
        _READ_AHEAD.append(ThreadPoolExecutor(1, thread_name_prefix="frame-store-read-ahead"))
    return _READ_AHEAD[0]


class ChunkSource(Protocol):
    """Where the chunks are read back from (replayer/reader.py's `Recording`, or `EventChunks`)."""

    def read_chunks(self, keys: Sequence[ChunkKey], columns: Sequence[str]) -> list[pa.RecordBatch]: ...


class EventChunks:
    """Recorded events already in memory (tests, `build_replay_data`) as chunks of a recording."""

    def __init__(self, events: Iterable[RecordedEvent], rows: int = ROWS_PER_GROUP) -> None:
        self._batches: list[pa.RecordBatch] = []
        pending: list[tuple] = []
        for event in events:
            pending.append(
                (event.seq, event.conn_id, str(event.kind), event.recv_wall_ns, event.recv_mono_ns, event.url,
                 event.stream, event.payload, event.status, event.reason)
            )  # fmt: skip
            if len(pending) >= rows:
                self._batches.append(_batch(pending))
                pending = []
        if pending:
            self._batches.append(_batch(pending))

    def iter_chunks(self, columns: Sequence[str] | None = None) -> Iterator[tuple[ChunkKey, list[pa.RecordBatch]]]:
        for number in range(len(self._batches)):
            yield (0, number), self.read_chunks([(0, number)], columns if columns is not None else SCHEMA.names)

    def read_chunks(self, keys: Sequence[ChunkKey], columns: Sequence[str]) -> list[pa.RecordBatch]:
        return [self._batches[key[1]].select(list(columns)) for key in keys]


def _batch(rows: list[tuple]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(dict(zip(SCHEMA.names, zip(*rows, strict=True), strict=True)), schema=SCHEMA)


def frame_rows(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The rows of a batch that are replayable frames: received on a WebSocket, on a named stream."""
    kinds = batch.column("kind")
    streams = batch.column("stream")
    if not isinstance(kinds, pa.DictionaryArray) or not isinstance(streams, pa.DictionaryArray):
        raise ValueError("kind and stream must be dictionary columns (recorder/format.py's SCHEMA)")
    names = kinds.dictionary.to_pylist()
    if EventKind.WS_RECV.value not in names:
        return batch.slice(0, 0)
    named = [code for code, name in enumerate(streams.dictionary.to_pylist()) if name]
    mask = pc.and_(
        pc.equal(kinds.indices, names.index(EventKind.WS_RECV.value)),
        pc.is_in(streams.indices, value_set=pa.array(named, streams.indices.type)),
    )
    return batch.filter(mask)


@dataclass(slots=True)
class ChainColumns:
    """One symbol's book frames in index order: each one's index and chain ids, in arrays."""

    index: array = field(default_factory=lambda: array("q"))
    first: array = field(default_factory=lambda: array("q"))
    last: array = field(default_factory=lambda: array("q"))
    prev: array = field(default_factory=lambda: array("q"))
    flags: bytearray = field(default_factory=bytearray)

    def append(self, index: int, ids: ChainIds) -> None:
        self.index.append(index)
        self.first.append(ids.first_id)
        self.last.append(ids.last_id)
        self.prev.append(ids.prev_id if ids.prev_id is not None else 0)
        self.flags.append((_SNAPSHOT if ids.snapshot else 0) | (_HAS_PREV if ids.prev_id is not None else 0))

    def from_index(self, start: int) -> ChainColumns:
        """The frames at `start` and after, indexed from `start`."""
        at = bisect_left(self.index, start)
        return ChainColumns(
            array("q", (i - start for i in self.index[at:])),
            self.first[at:],
            self.last[at:],
            self.prev[at:],
            self.flags[at:],
        )


@dataclass(frozen=True, slots=True)
class FrameBlock:
    """Where the frames of consecutive chunks of one segment sit: `first` is the first frame's index
    (negative for frames before the replay start, which are not served), `count` how many they hold,
    `carry` the offset (ns) the frames before them reached, so their own offsets never go back."""

    keys: tuple[ChunkKey, ...]
    first: int
    count: int
    carry: int


def merged_blocks(blocks: Iterable[FrameBlock], frames: int) -> list[FrameBlock]:
    """Consecutive blocks of one segment merged until each holds `frames` or more (the last of a
    segment may hold fewer); the frames stay where they were, in the same order."""
    merged: list[FrameBlock] = []
    for block in blocks:
        last = merged[-1] if merged else None
        if last is not None and last.count < frames and last.keys[-1][0] == block.keys[0][0]:
            merged[-1] = FrameBlock(last.keys + block.keys, last.first, last.count + block.count, last.carry)
        else:
            merged.append(block)
    return merged


class _FramesByIndex(Sequence[Frame]):
    """Indexing and slicing for frames made on demand: `_at` one frame (0 <= index < len), `_span` a run
    of them (0 <= start, stop <= len)."""

    @abstractmethod
    def _at(self, index: int) -> Frame: ...

    @abstractmethod
    def _span(self, start: int, stop: int) -> list[Frame]: ...

    @overload
    def __getitem__(self, index: int) -> Frame: ...

    @overload
    def __getitem__(self, index: slice) -> list[Frame]: ...

    def __getitem__(self, index: int | slice) -> Frame | list[Frame]:
        if isinstance(index, slice):
            wanted = range(len(self))[index]
            if wanted.step == 1:
                return self._span(wanted.start, wanted.stop)
            return [self._at(i) for i in wanted]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("frame index out of range")
        return self._at(index)


class LazyFrames(_FramesByIndex):
    """`count` frames that `made` yields in order, made a slice at a time as they are first asked for:
    making a 10,000-row block's frames at once stalled a venue pacing 10,000 frames a second for 15 to
    25 ms; a slice of MADE_AT_ONCE costs a few hundred microseconds."""

    def __init__(self, count: int, made: Iterator[Frame], lock: threading.Lock) -> None:
        self._count = count
        self._frames: list[Frame] = []
        self._made: Iterator[Frame] | None = made
        self._lock = lock
        """The store's: a venue on its own thread and a test may read one block together."""

    def __len__(self) -> int:
        return self._count

    def _at(self, index: int) -> Frame:
        self._make(index + 1)
        return self._frames[index]

    def _span(self, start: int, stop: int) -> list[Frame]:
        self._make(stop)
        return self._frames[start:stop]

    def __iter__(self) -> Iterator[Frame]:
        for start in range(0, self._count, MADE_AT_ONCE):
            self._make(start + MADE_AT_ONCE)
            yield from self._frames[start : start + MADE_AT_ONCE]

    def _make(self, upto: int) -> None:
        """Makes the frames before `upto` (whole slices of MADE_AT_ONCE) that are not made yet."""
        if len(self._frames) >= min(upto, self._count):
            return
        with self._lock:
            frames, made = self._frames, self._made
            while made is not None and len(frames) < upto:
                before = len(frames)
                frames.extend(islice(made, MADE_AT_ONCE))
                if len(frames) - before < MADE_AT_ONCE:
                    made = self._made = None
            if len(frames) >= self._count:
                self._made = None
        if len(self._frames) < min(upto, self._count):
            raise ValueError(f"the block made {len(self._frames)} frames of the {self._count} its span holds")


class FrameStore(_FramesByIndex):
    """`length` frames read through `source`, block by block (`blocks`, in order, merged up to
    BLOCK_FRAMES). Indexing, slicing and iterating give `Frame`s; a block is read and decoded again
    only when it has left the FRAMES_CACHED kept, so a walk in order reads each block once and a
    look-back of a few thousand frames is served from memory."""

    def __init__(
        self,
        source: ChunkSource,
        blocks: Sequence[FrameBlock],
        chains: dict[str, ChainColumns],
        *,
        length: int,
        origin_ns: int,
        symbol_of: Callable[[str], str | None],
        base: int = 0,
    ) -> None:
        """`base`: the position (in the coordinates of `blocks` and `chains`) of frame 0."""
        if length < 0 or (length and not blocks):
            raise ValueError("a store with frames needs the blocks that hold them")
        self._source = source
        self._blocks = merged_blocks(blocks, BLOCK_FRAMES)
        self._base = base
        self._firsts = array("q", (max(block.first - base, 0) for block in self._blocks))
        self._chains = chains
        self._length = length
        self._origin_ns = origin_ns
        self._symbol_of = symbol_of
        self._symbols: dict[str, str | None] = {}
        self._names: dict[str, str] = {}
        self._cache: dict[int, LazyFrames] = {}
        self._cached = 0
        """Frames in the decoded blocks kept."""
        self._reading = threading.Lock()
        """Held to decode a block: a venue on its own thread (FakeVenue) shares the store with the test."""
        self._source_lock = threading.Lock()
        """Held to read from the source, which the read-ahead thread reads too."""
        self._ahead: tuple[int, Future[list[pa.RecordBatch]]] | None = None
        """The block being read in the background, and its rows to come."""
        self.blocks_read = 0
        """How many block reads the store has made (a block evicted and wanted again counts again)."""

    def __len__(self) -> int:
        return self._length

    @property
    def blocks(self) -> int:
        """How many blocks hold the frames."""
        return len(self._blocks)

    def _at(self, index: int) -> Frame:
        block = bisect_right(self._firsts, index) - 1
        return self._block(block)[index - self._firsts[block]]

    def __iter__(self) -> Iterator[Frame]:
        for block in range(len(self._blocks)):
            yield from self._block(block)

    def on_streams(self, wanted: Callable[[str], bool]) -> Iterator[Frame]:
        """The frames on the streams `wanted` accepts, in index order, the others passed over without
        being made: the oracle reads the book streams of recordings mostly made of trades and tickers
        (a busy symbol's bookTicker is 70% of its frames)."""
        accepted: dict[str, bool] = {}

        def accepts(stream: str) -> bool:
            verdict = accepted.get(stream)
            if verdict is None:
                verdict = accepted[stream] = bool(wanted(stream))
            return verdict

        for number in range(len(self._blocks)):
            kept = self._cache.get(number)
            if kept is not None:
                yield from (frame for frame in kept if accepts(frame.stream))
            else:
                yield from self._made(number, accepts)

    def offsets(self) -> Iterator[int]:
        """Every frame's `offset_ns`, in index order, without making the frames (reading the payloads)
        of blocks not kept decoded: what a pass over the replay's clock needs."""
        for number, block in enumerate(self._blocks):
            kept = self._cache.get(number)
            if kept is not None:
                yield from (frame.offset_ns for frame in kept)
                continue
            offset, index, stop = block.carry, block.first - self._base, self._stop(block)
            origin = self._origin_ns
            for rows in self._rows(block, OFFSET_COLUMNS):
                rows, index = self._served(rows, index, stop)
                for mono in rows.column("recv_mono_ns").to_pylist():
                    if mono - origin > offset:
                        offset = mono - origin
                    yield offset
                index += len(rows)

    def _span(self, start: int, stop: int) -> list[Frame]:
        """Frames start..stop-1 (0 <= start, stop <= len), block by block."""
        out: list[Frame] = []
        block = bisect_right(self._firsts, start) - 1
        while start < stop:
            frames = self._block(block)
            first = self._firsts[block]
            out += frames[start - first : stop - first]
            start = first + len(frames)
            block += 1
        return out

    def _block(self, block: int) -> LazyFrames:
        """A block's frames, made as they are asked for; when too many are kept, the block furthest back
        goes (not the least recently used: a walk touches its block once, a look-back behind it touches
        an older one more often)."""
        frames = self._cache.get(block)
        if frames is not None:
            return frames
        with self._reading:
            frames = self._cache.get(block)
            if frames is None:
                count = self._stop(self._blocks[block]) - self._firsts[block]
                frames = self._cache[block] = LazyFrames(count, self._made(block), self._reading)
                self._cached += count
                while self._cached > FRAMES_CACHED and len(self._cache) > 1:
                    self._cached -= len(self._cache.pop(min(kept for kept in self._cache if kept != block)))
        return frames

    def _stop(self, block: FrameBlock) -> int:
        return min(block.first - self._base + block.count, self._length)

    def _rows(self, block: FrameBlock, columns: Sequence[str]) -> list[pa.RecordBatch]:
        """The block's frame rows, its chunks read in one call and filtered as one batch (dictionary
        columns unified: each row group has its own dictionary). Arrow work only, which pyarrow does
        without the GIL: the read-ahead thread runs it too."""
        with self._source_lock:
            batches = self._source.read_chunks(block.keys, columns)
        if len(batches) > 1:
            batches = pa.Table.from_batches(batches).unify_dictionaries().combine_chunks().to_batches()
        return [frame_rows(batch) for batch in batches]

    def _frame_rows(self, number: int) -> list[pa.RecordBatch]:
        """Block `number`'s rows, from the read ahead when it was read there, and the next block's read
        started in the background: a walk then makes frames while the next block is read. A venue
        pacing 10,000 frames a second stalled up to 10 ms at each 10,000-row block otherwise."""
        ahead = self._ahead
        if ahead is not None and ahead[0] == number:
            rows = ahead[1].result()
        else:
            rows = self._rows(self._blocks[number], FRAME_COLUMNS)
        following = number + 1
        if following < len(self._blocks) and following not in self._cache:
            self._ahead = (following, _read_ahead().submit(self._rows, self._blocks[following], FRAME_COLUMNS))
        else:
            self._ahead = None
        return rows

    @staticmethod
    def _served(rows: pa.RecordBatch, index: int, stop: int) -> tuple[pa.RecordBatch, int]:
        """The rows from the replay start (frame 0) to `stop`, and the index of the first of them."""
        skip = min(max(0, -index), len(rows))  # frames before the replay start (the start's block)
        return rows.slice(skip, max(0, min(len(rows), stop - index) - skip)), index + skip

    def _made(self, number: int, accepts: Callable[[str], bool] | None = None) -> Iterator[Frame]:
        """Block `number`'s frames, made a slice at a time as they are asked for; with `accepts`, only
        those on the streams it accepts (the offsets and indices still counted over every frame)."""
        return chain.from_iterable(self._slices(number, accepts))

    def _slices(self, number: int, accepts: Callable[[str], bool] | None) -> Iterator[list[Frame]]:
        """`_made`'s frames in lists of up to MADE_AT_ONCE: each list made in one comprehension, the
        offsets (the latest receive time so far) by Arrow, not a step of a generator per frame."""
        self.blocks_read += 1
        block = self._blocks[number]
        stop = self._stop(block)
        chains = self._chains_in(block.first - self._base, stop)
        offset, index = block.carry, block.first - self._base
        for batch in self._frame_rows(number):
            rows, index = self._served(batch, index, stop)
            if not len(rows):
                continue
            streams = rows.column("stream")
            names = [self._name(name) for name in streams.dictionary.to_pylist()]
            symbols = [self._symbol(name) for name in names]
            skip = [accepts is not None and not accepts(name) for name in names]
            since = pc.subtract_checked(rows.column("recv_mono_ns"), self._origin_ns)
            offsets = pc.max_element_wise(pc.cumulative_max(since), offset)
            offset = offsets[-1].as_py()
            payloads = rows.column("payload")
            for at in range(0, len(rows), MADE_AT_ONCE):
                end = min(at + MADE_AT_ONCE, len(rows))
                first = index + at
                codes = streams.indices[at:end].to_pylist()
                made = [
                    Frame(i, o, names[c], p, None, None, symbols[c]) if (ids := chains.get(i)) is None
                    else Frame(i, o, names[c], p, *ids)
                    for i, c, p, o in zip(
                        range(first, first + end - at),
                        codes,
                        payloads[at:end].to_pylist(),
                        offsets[at:end].to_pylist(),
                        strict=True,
                    )
                    if not skip[c]
                ]  # fmt: skip
                if made:
                    yield made
            index += len(rows)

    def _name(self, stream: str) -> str:
        """One string per stream name for every frame made (as the reader gives one)."""
        return self._names.setdefault(stream, stream)

    def _symbol(self, stream: str) -> str | None:
        if stream not in self._symbols:
            self._symbols[stream] = self._symbol_of(stream)
        return self._symbols[stream]

    def _chains_in(self, start: int, stop: int) -> dict[int, tuple[int, int, str, int | None, bool]]:
        """Index -> (first id, last id, symbol, prev id, snapshot) of the book frames start..stop-1."""
        found: dict[int, tuple[int, int, str, int | None, bool]] = {}
        base = self._base
        for symbol, columns in self._chains.items():
            at, end = bisect_left(columns.index, start + base), bisect_left(columns.index, stop + base)
            for k in range(at, end):
                flags = columns.flags[k]
                prev = columns.prev[k] if flags & _HAS_PREV else None
                found[columns.index[k] - base] = (
                    columns.first[k], columns.last[k], symbol, prev, bool(flags & _SNAPSHOT)
                )  # fmt: skip
        return found
