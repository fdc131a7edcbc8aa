"""The replay's clean frames as a sequence read from the recording on demand, in bounded memory.

A day of one busy symbol is about ten million frames, 6 GB as `Frame` objects, and the replay needs
them one after another (the schedule, the oracle, the fake venue's walk) plus a look-back of a few
thousand (the venue's stale snapshots, faults that hold frames back). So the frames stay in the
recording's segments, read a chunk (a row group, at most 10,000 rows) at a time when asked for, the
chunks last read kept decoded up to FRAMES_CACHED frames; what every frame needs without its payload
is held in arrays (`ChainColumns`: a book frame's chain ids, 33 bytes) and per chunk (`Span`), never as a
Python object per frame. A `Frame` is made when a chunk is decoded: the same values `load_replay_data`
made for the whole list before (the index from the replay start, the offset from the first frame
never going back, the stream, the payload as recorded, the chain ids the dialect read).
"""

from __future__ import annotations

import threading
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, overload

import pyarrow as pa
import pyarrow.compute as pc

from harness.venues.dialect import ChainIds
from recorder.format import SCHEMA, EventKind, RecordedEvent
from recorder.segments import ROWS_PER_GROUP
from replayer.reader import ChunkKey
from replayer.timeline import Frame

FRAMES_CACHED = 40_000
"""Frames kept decoded (about 20 MB of 300-byte frames): the chunk being walked and those just behind
it, for look-backs. Counted in frames, not chunks: a recorder flushes every second, so a chunk holds
a second of frames (hundreds) up to ROWS_PER_GROUP."""
FRAME_COLUMNS = ("kind", "stream", "payload", "recv_mono_ns")

_SNAPSHOT = 1
_HAS_PREV = 2


class ChunkSource(Protocol):
    """Where the chunks are read back from (replayer/reader.py's `Recording`, or `EventChunks`)."""

    def read_chunk(self, key: ChunkKey, columns: Sequence[str]) -> list[pa.RecordBatch]: ...


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
            yield (0, number), self.read_chunk((0, number), columns if columns is not None else SCHEMA.names)

    def read_chunk(self, key: ChunkKey, columns: Sequence[str]) -> list[pa.RecordBatch]:
        return [self._batches[key[1]].select(list(columns))]


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
class Span:
    """Where one chunk's frames sit: `first` is its first frame's index (negative for frames before
    the replay start, which are not served), `count` how many it holds, `carry` the offset (ns) the
    frames before it reached, so its own offsets never go back."""

    key: ChunkKey
    first: int
    count: int
    carry: int


class FrameStore(Sequence[Frame]):
    """`length` frames read through `source`, chunk by chunk (`spans`, in order). Indexing, slicing and
    iterating give `Frame`s; a chunk is read and decoded again only when it has left the FRAMES_CACHED
    kept, so a walk in order reads each chunk once and a look-back of a few thousand frames is served
    from memory."""

    def __init__(
        self,
        source: ChunkSource,
        spans: Sequence[Span],
        chains: dict[str, ChainColumns],
        *,
        length: int,
        origin_ns: int,
        symbol_of: Callable[[str], str | None],
        base: int = 0,
    ) -> None:
        """`base`: the position (in the coordinates of `spans` and `chains`) of frame 0."""
        if length < 0 or (length and not spans):
            raise ValueError("a store with frames needs the spans that hold them")
        self._source = source
        self._spans = list(spans)
        self._base = base
        self._firsts = array("q", (max(span.first - base, 0) for span in spans))
        self._chains = chains
        self._length = length
        self._origin_ns = origin_ns
        self._symbol_of = symbol_of
        self._symbols: dict[str, str | None] = {}
        self._names: dict[str, str] = {}
        self._cache: dict[int, list[Frame]] = {}
        self._cached = 0
        """Frames in the decoded chunks kept."""
        self._reading = threading.Lock()
        """Held to read a chunk: a venue on its own thread (FakeVenue) shares the store with the test."""
        self.chunks_read = 0
        """How many chunk reads the store has made (a chunk evicted and wanted again counts again)."""

    def __len__(self) -> int:
        return self._length

    @property
    def chunks(self) -> int:
        """How many chunks of the recording hold the frames."""
        return len(self._spans)

    @overload
    def __getitem__(self, index: int) -> Frame: ...

    @overload
    def __getitem__(self, index: slice) -> list[Frame]: ...

    def __getitem__(self, index: int | slice) -> Frame | list[Frame]:
        if isinstance(index, slice):
            wanted = range(self._length)[index]
            if wanted.step == 1:
                return self._run(wanted.start, wanted.stop)
            return [self[i] for i in wanted]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError("frame index out of range")
        chunk = bisect_right(self._firsts, index) - 1
        return self._chunk(chunk)[index - self._firsts[chunk]]

    def __iter__(self) -> Iterator[Frame]:
        for chunk in range(len(self._spans)):
            yield from self._chunk(chunk)

    def _run(self, start: int, stop: int) -> list[Frame]:
        """Frames start..stop-1 (0 <= start, stop <= len), chunk by chunk."""
        out: list[Frame] = []
        chunk = bisect_right(self._firsts, start) - 1
        while start < stop:
            frames = self._chunk(chunk)
            first = self._firsts[chunk]
            out += frames[start - first : stop - first]
            start = first + len(frames)
            chunk += 1
        return out

    def _chunk(self, chunk: int) -> list[Frame]:
        """A decoded chunk; when too many are kept, the one furthest back goes (not the least recently
        used: a walk touches its chunk once, a look-back behind it touches an older one more often)."""
        frames = self._cache.get(chunk)
        if frames is not None:
            return frames
        with self._reading:
            frames = self._cache.get(chunk)
            if frames is None:
                frames = self._cache[chunk] = self._decode(self._spans[chunk])
                self._cached += len(frames)
                while self._cached > FRAMES_CACHED and len(self._cache) > 1:
                    self._cached -= len(self._cache.pop(min(kept for kept in self._cache if kept != chunk)))
        return frames

    def _decode(self, span: Span) -> list[Frame]:
        self.chunks_read += 1
        stop = min(span.first - self._base + span.count, self._length)
        chains = self._chains_in(span.first - self._base, stop)
        origin, offset, index = self._origin_ns, span.carry, span.first - self._base
        frames: list[Frame] = []
        append = frames.append
        for batch in self._source.read_chunk(span.key, FRAME_COLUMNS):
            rows = frame_rows(batch)
            skip = min(max(0, -index), len(rows))  # frames before the replay start (the start's chunk)
            rows = rows.slice(skip, max(0, min(len(rows), stop - index) - skip))
            index += skip
            streams = rows.column("stream")
            names = [self._name(name) for name in streams.dictionary.to_pylist()]
            symbols = [self._symbol(name) for name in names]
            payloads = rows.column("payload").to_pylist()
            for code, payload, mono in zip(
                streams.indices.to_pylist(), payloads, rows.column("recv_mono_ns").to_pylist(), strict=True
            ):
                if mono - origin > offset:
                    offset = mono - origin
                ids = chains.get(index)
                if ids is None:
                    append(Frame(index, offset, names[code], payload, None, None, symbols[code]))
                else:
                    append(Frame(index, offset, names[code], payload, *ids))
                index += 1
        return frames

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
