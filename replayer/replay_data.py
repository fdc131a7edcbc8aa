"""What the fake venue replays, loaded from a recording, and the venue's truth as replay advances.

Everything venue-specific comes from the recording's `VenueDialect` (harness/venues/): which frames
are book frames, their chain ids and levels, which HTTP responses are snapshots, and which frame a
snapshot bridges.

Where replay starts: the server answers REST depth from a book it keeps in step with the frames it
sends, and that book can only be built from a recorded snapshot. Book frames recorded before the
snapshot cannot be bracketed by any snapshot, so replay starts at the first book frame that applies
on top of the recorded snapshot (the dialect's `bridges`: Binance spot `U <= lastUpdateId + 1 <= u`,
USD-M `U <= lastUpdateId <= u`), or at a symbol's first in-stream snapshot frame, and keeps the other
frames from that point on; everything recorded earlier is skipped (`ReplayData.skipped_frames`).
With several symbols replay starts at the latest of their start frames, and each symbol's start
book already holds its own book frames up to that point.

`VenueBooks` is the truth the REST endpoint serves: it advances by clean frame index, each clean
depth frame applied once, whatever a fault plan did to the schedule (dropped, duplicated, reordered
or corrupted sends), because a real venue's book does not care what reached one client. It applies
them when a book is read, and keeps a few copies of each book behind it for stale answers. Its REST
snapshots fall inside the next depth event by default (`U <= lastUpdateId < u`), as on the live venue.
"""

from __future__ import annotations

import os
import random
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import orjson
import pyarrow as pa

from harness.book_events import Level
from harness.errors import HarnessError
from harness.venues.binance_spot import DIALECT as BINANCE_SPOT
from harness.venues.binance_spot.rest import SymbolSpec, symbol_spec
from harness.venues.dialect import ChainIds, VenueDialect
from harness.venues.registry import DIALECTS
from harness.venues.registry import dialect as venue_dialect
from harness.venues.wire import VenueWire
from recorder.format import EventKind, RecordedEvent
from replayer.frame_store import ChainColumns, ChunkSource, EventChunks, FrameBlock, FrameStore
from replayer.reader import ChunkKey, Recording
from replayer.reference_book import ReferenceBook
from replayer.timeline import Frame

JOIN_HORIZON = 300
"""Depth events past the current position over which a barely stale snapshot's join must stay
uncrossed: 30 s of a 100 ms stream (the check replays them per request, about 50 ms here, on the venue loop)."""
CHECKPOINT_EVERY = 512
"""Depth frames between the copies of a symbol's book VenueBooks keeps for answers from the past."""
CHECKPOINTS_RECENT = 8
"""Copies kept at the recent end, so a stale answer up to 4,096 depth frames back replays at most
CHECKPOINT_EVERY frames, not the recording from its start."""
CHECKPOINTS_SPARSE = 128
"""Older copies: one in this many (every 65,536 depth frames), so an answer from long ago replays at
most that many frames while the copies kept grow by about one per two hours of a 100 ms stream."""
LEVELS_KEPT = 1024
"""Parsed depth frames VenueBooks keeps for answers that replay the same frames again: a stale answer
from its copy (CHECKPOINT_EVERY) and a join check (JOIN_HORIZON) fit."""
SPEC_SAMPLE_FRAMES = 200
"""Frames per symbol whose price/size strings, with the snapshots', decide tick and lot sizes."""


@dataclass(frozen=True, slots=True)
class RecordedSnapshot:
    """A REST depth snapshot as the recorder captured it (`seq` orders it among the frames)."""

    symbol: str
    last_update_id: int
    bids: Sequence[Level]
    asks: Sequence[Level]
    seq: int


@dataclass(slots=True)
class ReplayData:
    """The clean frames from the replay start on (indexes from 0, offsets from the first frame)."""

    frames: Sequence[Frame]
    """A list, or the recording read on demand (replayer/frame_store.py)."""
    symbols: tuple[str, ...]
    streams: tuple[str, ...]
    snapshots: dict[str, list[RecordedSnapshot]]
    start_books: dict[str, ReferenceBook]
    specs: dict[str, SymbolSpec]
    skipped_frames: int = 0
    depth_indexes: dict[str, Sequence[int]] = field(default_factory=dict)
    """Per symbol, its book frames' indexes in order (arrays of int64 when loaded)."""
    notes: tuple[str, ...] = ()
    """What reading the recording dropped and said so (a journal's torn last batch), for the user."""
    dialect: VenueDialect = BINANCE_SPOT
    """The recording's venue, which everything that reads these frames asks."""

    @property
    def duration_ns(self) -> int:
        return self.frames[-1].offset_ns if self.frames else 0


def load_replay_data(path: str | os.PathLike[str]) -> ReplayData:
    """Reads a recording once, chunk by chunk, for where replay starts and what the venue needs; the
    frames stay in the recording (replayer/frame_store.py). A HarnessError when it holds nothing the
    venue can replay."""
    recording = Recording(path)
    dialect = venue_dialect(recording.venue)
    data = _build(recording, recording.iter_chunks(_SCAN_COLUMNS), recording.symbols, str(path), dialect)
    data.notes = tuple(recording.notes)
    return data


def wire_of(data: ReplayData) -> VenueWire:
    """What the fake venue speaks for the recording's venue; HarnessError (naming the venues it does
    speak) when it does not speak this one yet."""
    wire = data.dialect.wire()
    if wire is None:
        speaks = ", ".join(name for name, known in DIALECTS.items() if known.wire() is not None)
        raise HarnessError(f"the fake venue does not speak {data.dialect.name} yet; it speaks {speaks}")
    return wire


def build_replay_data(
    events: Iterable[RecordedEvent],
    symbols: Sequence[str],
    source: str = "recording",
    dialect: VenueDialect = BINANCE_SPOT,
) -> ReplayData:
    """The same from recorded events in `seq` order already in memory."""
    chunks = EventChunks(events)
    return _build(chunks, chunks.iter_chunks(_SCAN_COLUMNS), symbols, source, dialect)


_SCAN_COLUMNS = ("seq", "kind", "stream", "payload", "recv_mono_ns", "url", "status")


def _build(
    reader: ChunkSource,
    chunks: Iterable[tuple[ChunkKey, list[pa.RecordBatch]]],
    symbols: Sequence[str],
    source: str,
    dialect: VenueDialect,
) -> ReplayData:
    """One pass over the chunks (`_Scan`), then the start books from the frames before the start, the
    kept frames' store, and the checks and specs read from it."""
    scan = _Scan(dialect, source)
    for key, batches in chunks:
        scan.chunk(key, batches)
    if not scan.frames:
        raise HarnessError(f"{source}: no WebSocket stream frames to replay")
    snapshots = scan.snapshots
    start_at = scan.starts.found(source)
    start = max((index for index, _ in start_at.values()), default=0)

    start_books: dict[str, ReferenceBook] = {}
    for symbol, (_, snapshot) in start_at.items():
        book = start_books[symbol] = ReferenceBook()
        if snapshot is not None:
            book.load(snapshot.last_update_id, snapshot.bids, snapshot.asks)
    lowest = min((index for index, _ in start_at.values()), default=start)
    for frame in scan.store(reader, lowest, start) if lowest < start else ():
        at = start_at.get(frame.symbol or "")
        if frame.last_update_id is not None and at is not None and at[0] <= frame.index + lowest:
            book_symbol = frame.symbol or ""
            apply_depth(start_books[book_symbol], frame, snapshots.get(book_symbol, ()), dialect=dialect)

    kept, market = scan.kept(reader, start)
    _check_checksums(kept, start_books, snapshots, dialect, source)
    # A name the frames use stays as it is (Bybit's `spot/BTCUSDT`); others take Binance's upper case.
    named = set(market)
    all_symbols = tuple(dict.fromkeys([*(s if s in named else s.upper() for s in symbols), *market]))
    depth_indexes: dict[str, Sequence[int]] = {symbol: array("q") for symbol in start_books}
    depth_indexes.update({symbol: columns.index for symbol, columns in scan.kept_chains.items()})
    return ReplayData(
        frames=kept,
        symbols=all_symbols,
        streams=tuple(sorted(stream for stream, last in scan.stream_last.items() if last >= start)),
        snapshots=snapshots,
        start_books=start_books,
        specs=_specs(all_symbols, named, kept, snapshots, dialect),
        skipped_frames=start,
        depth_indexes=depth_indexes,
        dialect=dialect,
    )


@dataclass(slots=True)
class _ChunkSeen:
    """What the scan keeps of one chunk: where its frames are, the latest receive time among them,
    and where each symbol first appears in it."""

    key: ChunkKey
    first: int
    count: int = 0
    max_mono: int = 0
    symbols: dict[str, int] = field(default_factory=dict)


class _Scan:
    """The one pass over a recording: the REST snapshots, where each symbol's replay can start, every
    book frame's chain ids, and a few numbers per chunk. Holds O(symbols + book frames + chunks),
    never a frame's payload beyond its chunk."""

    def __init__(self, dialect: VenueDialect, source: str) -> None:
        self._dialect = dialect
        self._source = source
        self.frames = 0
        self.chunks: list[_ChunkSeen] = []
        self.chains: dict[str, ChainColumns] = {}
        self.kept_chains: dict[str, ChainColumns] = {}
        self.snapshots: dict[str, list[RecordedSnapshot]] = {}
        self.starts = _Starts(dialect)
        self.stream_last: dict[str, int] = {}
        """Each stream's last frame: it is replayed when that is at or past the start."""
        self._symbol_of: dict[str, str | None] = {}

    def chunk(self, key: ChunkKey, batches: list[pa.RecordBatch]) -> None:
        seen = _ChunkSeen(key, self.frames)
        dialect, source, chain_ids = self._dialect, self._source, self._dialect.chain_ids
        index, latest = self.frames, 0
        for batch in batches:
            kinds = batch.column("kind")
            streams = batch.column("stream")
            kind_names = kinds.dictionary.to_pylist()
            received = _code(kind_names, EventKind.WS_RECV)
            response = _code(kind_names, EventKind.HTTP_RESPONSE)
            stream_names = streams.dictionary.to_pylist()
            payloads = batch.column("payload").to_pylist()
            statuses = batch.column("status").to_pylist()
            seqs = batch.column("seq").to_pylist()
            firsts: dict[int, int] = {}  # stream code -> its first frame in the batch that is not a book frame
            lasts: dict[int, int] = {}
            codes, monos = streams.indices.to_pylist(), batch.column("recv_mono_ns").to_pylist()
            for row, (kind, code, mono) in enumerate(zip(kinds.indices.to_pylist(), codes, monos, strict=True)):
                if kind != received or code is None or not stream_names[code]:
                    if kind == response and statuses[row] == 200:
                        url = batch.column("url")[row].as_py()
                        snapshot = _snapshot(url or "", payloads[row], seqs[row], source, dialect)
                        if snapshot is not None:
                            self.snapshots.setdefault(snapshot.symbol, []).append(snapshot)
                            self.starts.snapshot(snapshot)
                    continue
                try:
                    ids = chain_ids(stream_names[code], payloads[row])
                except ValueError as exc:
                    raise HarnessError(f"{source}: book frame seq {seqs[row]} on {stream_names[code]}: {exc}") from None
                if ids is None:
                    if code not in firsts:
                        firsts[code] = index
                else:
                    columns = self.chains.get(ids.symbol)
                    if columns is None:
                        columns = self.chains[ids.symbol] = ChainColumns()
                    columns.append(index, ids)
                    self.starts.see(index, ids)
                    if ids.symbol not in seen.symbols:
                        seen.symbols[ids.symbol] = index
                lasts[code] = index
                if mono > latest:
                    latest = mono
                index += 1
            for code, first in firsts.items():
                symbol = self._symbol(stream_names[code])
                if symbol is not None and first < seen.symbols.get(symbol, first + 1):
                    seen.symbols[symbol] = first
            for code, last in lasts.items():
                self.stream_last[stream_names[code]] = last
        seen.count, seen.max_mono = index - self.frames, latest
        self.frames = index
        if seen.count:
            self.chunks.append(seen)

    def _symbol(self, stream: str) -> str | None:
        if stream not in self._symbol_of:
            self._symbol_of[stream] = self._dialect.symbol_of(stream)
        return self._symbol_of[stream]

    def store(self, reader: ChunkSource, start: int, stop: int, origin_ns: int = 0) -> FrameStore:
        """Frames start..stop-1 (indexed from `start`); with origin 0 each offset is the latest receive
        time up to that frame."""
        firsts = [seen.first for seen in self.chunks]
        blocks = [
            FrameBlock((seen.key,), seen.first, seen.count, 0)
            for seen in self.chunks[max(0, bisect_right(firsts, start) - 1) : bisect_left(firsts, stop)]
        ]
        return FrameStore(
            reader, blocks, self.chains, length=stop - start, origin_ns=origin_ns,
            symbol_of=self._dialect.symbol_of, base=start,
        )  # fmt: skip

    def kept(self, reader: ChunkSource, start: int) -> tuple[FrameStore, list[str]]:
        """The frames from `start` on, indexed from 0 with offsets from the first one (never going
        back), and the symbols they name in order of first appearance."""
        at = bisect_right([seen.first for seen in self.chunks], start) - 1
        head = self.chunks[at]
        # The start's chunk again, for the receive times and symbols of its frames from the start on.
        frames = list(self.store(reader, start, head.first + head.count))
        origin = frames[0].offset_ns
        head_symbols: dict[str, int] = {}
        for frame in frames:
            if frame.symbol is not None:
                head_symbols.setdefault(frame.symbol, frame.index + start)
        chunks = [replace(head, max_mono=frames[-1].offset_ns, symbols=head_symbols), *self.chunks[at + 1 :]]
        blocks: list[FrameBlock] = []
        latest = origin
        for seen in chunks:
            blocks.append(FrameBlock((seen.key,), seen.first - start, seen.count, latest - origin))
            latest = max(latest, seen.max_mono)
        self.kept_chains = {symbol: columns.from_index(start) for symbol, columns in self.chains.items()}
        self.chains = {}
        market = [symbol for seen in chunks for symbol in sorted(seen.symbols, key=seen.symbols.__getitem__)]
        store = FrameStore(
            reader, blocks, self.kept_chains, length=self.frames - start, origin_ns=origin,
            symbol_of=self._dialect.symbol_of,
        )  # fmt: skip
        return store, list(dict.fromkeys(market))


def _code(names: list[str], kind: EventKind) -> int:
    """The dictionary code of `kind` in a batch's kind column (-1: the batch has none)."""
    return names.index(kind.value) if kind.value in names else -1


class _Starts:
    """Where each symbol's replay can start, found as the frames stream past: the first book frame
    that bridges a recorded snapshot (the earliest snapshot that has one), or the first in-stream
    snapshot frame. Holds one candidate per symbol, never the frames."""

    def __init__(self, dialect: VenueDialect) -> None:
        self._dialect = dialect
        self._pending: dict[str, list[RecordedSnapshot]] = {}
        self._start: dict[str, tuple[int, RecordedSnapshot | None]] = {}
        self._seen: dict[str, list[tuple[int, ChainIds]]] = {}
        """Book frames of symbols with no start yet (ids only): a snapshot recorded later may bridge one."""

    def snapshot(self, snapshot: RecordedSnapshot) -> None:
        if snapshot.symbol in self._start:
            return
        self._pending.setdefault(snapshot.symbol, []).append(snapshot)
        # A snapshot recorded after the frame that bridges it (the recorder asks after the first one).
        for index, ids in self._seen.get(snapshot.symbol, ()):
            if self._dialect.bridges(ids, snapshot.last_update_id):
                self._start[snapshot.symbol] = (index, snapshot)
                self._seen[snapshot.symbol] = []
                return

    def see(self, index: int, read: ChainIds) -> None:
        """Book frame `index` with the ids its dialect read."""
        symbol = read.symbol
        if symbol in self._start:
            return
        # The ids as a Frame gives them back (`Frame.chain`), which is what the rest of the replay sees.
        ids = ChainIds(symbol, read.first_id, read.last_id, read.prev_id, read.snapshot)
        if ids.snapshot:
            self._start[symbol] = (index, None)
            return
        for snapshot in self._pending.get(symbol, ()):
            if self._dialect.bridges(ids, snapshot.last_update_id):
                self._start[symbol] = (index, snapshot)
                return
        self._seen.setdefault(symbol, []).append((index, ids))

    def found(self, source: str) -> dict[str, tuple[int, RecordedSnapshot | None]]:
        missing = sorted(set(self._seen) - set(self._start))
        if missing:
            raise HarnessError(
                f"{source}: no recorded {self._dialect.name} depth snapshot for {missing[0]} that its recorded "
                "book frames continue (none of its frames bridges a recorded snapshot)"
            )
        return self._start


def depth_levels(frame: Frame, dialect: VenueDialect = BINANCE_SPOT) -> tuple[Sequence, Sequence]:
    """(bids, asks) of a clean book frame, parsed on demand so the frames stay plain bytes in memory."""
    levels = dialect.book_levels(frame.payload)
    return levels.bids, levels.asks


def apply_depth(
    book: ReferenceBook,
    frame: Frame,
    snapshots: Iterable[RecordedSnapshot],
    levels: tuple[Sequence, Sequence] | None = None,
    *,
    dialect: VenueDialect = BINANCE_SPOT,
) -> None:
    """Applies a clean book frame to the venue's book by the venue's rule.

    An in-stream snapshot replaces the book. A frame the book already covers is skipped. A hole in
    the recorded ids (the recorder lost a connection) is bridged by the first recorded snapshot at
    or past the hole: the recorder fetches one after every reconnect, usually a few frames after the
    first frame it continues, so from the hole until the stream reaches that snapshot the venue's
    book is ahead of the frames sent, as a real venue's REST answer can be. Without such a snapshot
    the frame is applied anyway, since nothing better is known (`harness inspect` lists such holes,
    and the oracle treats that book as unknown). `levels` is the frame's `depth_levels` when the
    caller has them parsed already.
    """
    ids = frame.chain
    if ids is None:
        return
    if ids.snapshot:
        bids, asks = levels if levels is not None else depth_levels(frame, dialect)
        book.load(ids.last_id, bids, asks)
        return
    if ids.last_id <= book.last_update_id and not ids.follows(book.last_update_id):
        return
    if not ids.follows(book.last_update_id) and not dialect.bridges(ids, book.last_update_id):
        bridge = snapshot_past_hole(snapshots, ids, dialect)
        if bridge is not None:
            book.load(bridge.last_update_id, bridge.bids, bridge.asks)
            if ids.last_id <= bridge.last_update_id:
                return
    bids, asks = levels if levels is not None else depth_levels(frame, dialect)
    book.apply(ids.last_id, bids, asks)


def snapshot_past_hole(
    snapshots: Iterable[RecordedSnapshot], ids: ChainIds, dialect: VenueDialect = BINANCE_SPOT
) -> RecordedSnapshot | None:
    """The first recorded snapshot at or past a hole that ends at frame `ids`: the venue's state there
    (one that `ids` bridges, or one past it)."""
    past_hole = [s for s in snapshots if dialect.bridges(ids, s.last_update_id) or s.last_update_id >= ids.last_id]
    return min(past_hole, key=lambda s: s.last_update_id) if past_hole else None


class VenueBooks:
    """The venue's book per symbol at the current replay position, advanced by clean frame index.

    `book` is the state at the current frame boundary (bookTicker answers from it). `snapshot`,
    `snapshot_before` and their stale and too-new shifts are what REST depth serves: with `straddle`
    on, a state inside the symbol's next depth event, as the live venue's `lastUpdateId` usually is.
    A Binance depth event carries one entry per level with the level's final size, so the venue's
    book between its first and last update id is the book before it plus some of its entries: each
    event's entries get one seeded order (drawn per event, so two answers at the same id always
    agree), and a request takes the first `k` of them (k drawn per request), labelled `U + k - 1`.
    Entries that remove or change a level come before those that add one, so no such state is
    crossed when the books on both sides of the event are not. A client that applies the event over
    it gets exactly the book after the event; one that drops the event because `U <= lastUpdateId`
    keeps a book wrong at the other levels. An event with fewer than two entries, or one update id,
    cannot be straddled, and an answer there is at the boundary.
    """

    def __init__(self, data: ReplayData, *, seed: int = 0, straddle: bool = True) -> None:
        self._data = data
        self._seed = seed
        self._straddle = straddle
        self._books = {symbol: book.copy() for symbol, book in data.start_books.items()}
        self._applied = dict.fromkeys(self._books, 0)
        self._position = -1
        """The clean frame index the venue has reached; each book catches up to it when it is read."""
        self._kept: dict[str, list[tuple[int, ReferenceBook]]] = {symbol: [] for symbol in self._books}
        """Per symbol, copies of its book after every CHECKPOINT_EVERY-th depth frame, thinned as they
        age (`_keep`): where an answer from the past starts instead of the start book."""
        self._levels: dict[int, tuple[Frame, tuple[Sequence, Sequence]]] = {}
        """The depth frames a snapshot replayed with their parsed levels, so stale answers in a row read
        and parse them once (the last LEVELS_KEPT)."""

    def advance_to(self, index: int) -> None:
        """Moves the venue past clean frame `index`: every depth frame up to it counts as applied. The
        work is done when a book is read (`book`, `snapshot`, `snapshot_before`), for the symbol read:
        most frames are sent with nobody asking for a snapshot."""
        self._position = max(self._position, index)

    def advance_all(self) -> None:
        self.advance_to(len(self._data.frames))

    def book(self, symbol: str) -> ReferenceBook | None:
        if symbol not in self._books:
            return None
        self._catch_up(symbol)
        return self._books[symbol]

    def snapshot(self, symbol: str, request: int, shift: int = 0) -> ReferenceBook:
        """What REST depth serves for request number `request`: inside the event `shift` depth frames
        from the current position (0: the next one not sent yet; negative: stale; positive: too new)."""
        self._catch_up(symbol)
        position = self._clamp(symbol, self._applied[symbol] + shift)
        return self._straddled(symbol, self._book_at(symbol, position), position, request)

    def _catch_up(self, symbol: str) -> None:
        """Applies the symbol's depth frames up to the current position not applied yet."""
        indexes = self._data.depth_indexes[symbol]
        applied, end = self._applied[symbol], bisect_right(indexes, self._position)
        if end <= applied:
            return
        book, frames = self._books[symbol], self._data.frames
        snapshots = self._data.snapshots.get(symbol, ())
        for position in range(applied, end):
            apply_depth(book, frames[indexes[position]], snapshots, dialect=self._data.dialect)
            if (position + 1) % CHECKPOINT_EVERY == 0:
                self._keep(symbol, position + 1, book.copy())
        self._applied[symbol] = end

    def _keep(self, symbol: str, position: int, book: ReferenceBook) -> None:
        """Keeps the book after `position` depth frames: the last CHECKPOINTS_RECENT kept, and of older
        ones one in CHECKPOINTS_SPARSE, so the copies held grow by one per 65,536 depth frames."""
        kept = self._kept[symbol]
        kept.append((position, book))
        if len(kept) > CHECKPOINTS_RECENT:
            aged = len(kept) - CHECKPOINTS_RECENT - 1
            if kept[aged][0] % (CHECKPOINT_EVERY * CHECKPOINTS_SPARSE) != 0:
                del kept[aged]

    def snapshot_before(self, symbol: str, first_index: int | None, lag: int, request: int) -> ReferenceBook:
        """A snapshot `lag` events older than clean frame `first_index`, the first depth frame a client's
        connection was sent (None: the next one to send), so that frame cannot bridge it.

        The lag shrinks until the book a client makes by joining the stream to it anyway (every event
        from that frame on, JOIN_HORIZON events past the current position) is never crossed, so only
        the bridge rule can tell the client the snapshot is stale. Inside the event just before the
        frame, a state whose missing entries only add levels always qualifies: the client's levels are
        then a subset of the true ones.
        """
        self._catch_up(symbol)
        indexes = self._data.depth_indexes[symbol]
        first = self._applied[symbol] if first_index is None else bisect_left(indexes, first_index)
        for shrink in range(lag, 0, -1):
            position = self._clamp(symbol, first - shrink)
            answer = self._straddled(symbol, self._book_at(symbol, position), position, request)
            if not self._join_crosses(symbol, answer, first):
                return answer
        position = self._clamp(symbol, first - 1)
        return self._straddled(symbol, self._book_at(symbol, position), position, request, adds_missing=True)

    def _join_crosses(self, symbol: str, book: ReferenceBook, first: int) -> bool:
        join = book.copy()
        for index in self._data.depth_indexes[symbol][first : self._applied[symbol] + JOIN_HORIZON]:
            self._apply(join, index)
            if is_crossed(join):
                return True
        return False

    def _clamp(self, symbol: str, position: int) -> int:
        return max(0, min(position, len(self._data.depth_indexes[symbol])))

    def _book_at(self, symbol: str, position: int) -> ReferenceBook:
        """A copy of the book after the symbol's first `position` depth frames (clamped to the recording)."""
        position = self._clamp(symbol, position)
        applied = self._applied[symbol]
        indexes = self._data.depth_indexes[symbol]
        if position >= applied:
            book, todo = self._books[symbol].copy(), indexes[applied:position]
        else:
            kept = self._kept[symbol]
            at = bisect_right(kept, position, key=lambda checkpoint: checkpoint[0]) - 1
            since, base = kept[at] if at >= 0 else (0, self._data.start_books[symbol])
            book, todo = base.copy(), indexes[since:position]
        snapshots = self._data.snapshots.get(symbol, ())
        for index in todo:
            self._apply(book, index, snapshots)
        return book

    def _apply(self, book: ReferenceBook, index: int, snapshots: Iterable[RecordedSnapshot] = ()) -> None:
        frame, levels = self._parsed(index)
        apply_depth(book, frame, snapshots, levels, dialect=self._data.dialect)

    def _parsed(self, index: int) -> tuple[Frame, tuple[Sequence, Sequence]]:
        """Depth frame `index` with its levels, from the last LEVELS_KEPT a snapshot used."""
        parsed = self._levels.get(index)
        if parsed is None:
            if len(self._levels) >= LEVELS_KEPT:
                del self._levels[next(iter(self._levels))]
            frame = self._data.frames[index]
            parsed = self._levels[index] = (frame, depth_levels(frame, self._data.dialect))
        return parsed

    def _straddled(
        self, symbol: str, book: ReferenceBook, position: int, request: int, adds_missing: bool = False
    ) -> ReferenceBook:
        """`book` (after `position` depth frames) moved inside the next event, where it can be;
        `adds_missing`: only entries that add a level are left out (none: the boundary)."""
        indexes = self._data.depth_indexes[symbol]
        if not self._straddle or position >= len(indexes):
            return book
        frame, levels = self._parsed(indexes[position])
        ids = frame.chain
        assert ids is not None, "depth_indexes holds book frames, which carry chain ids"
        dialect = self._data.dialect
        if ids.snapshot:
            return book  # an in-stream snapshot is one state, not a run of updates
        first, last = ids.first_id, ids.last_id
        if not ids.follows(book.last_update_id) and not dialect.bridges(ids, book.last_update_id):
            # A hole in the recording: the first recorded snapshot past it is the venue's own state
            # (as `apply_depth` bridges it), possibly ahead of the stream.
            recorded = snapshot_past_hole(self._data.snapshots.get(symbol, ()), ids, dialect)
            if recorded is None:
                return book
            own = ReferenceBook()
            own.load(recorded.last_update_id, recorded.bids, recorded.asks)
            return own
        if not ids.follows(book.last_update_id):
            return book  # already inside the event (a recorded snapshot), or past it
        entries = self._event_order(book, frame.index, levels)
        most = min(len(entries) - 1, last - first)
        least = sum(not _adds_level(book, *entry) for entry in entries) if adds_missing else 1
        if most < max(1, least):
            return book
        k = random.Random(f"{self._seed}/straddle/{request}").randint(max(1, least), most)
        bids = [entry for side, entry in entries[:k] if side == "b"]
        asks = [entry for side, entry in entries[:k] if side == "a"]
        book.apply(first + k - 1, bids, asks)
        return book

    def _event_order(
        self, book: ReferenceBook, index: int, levels: tuple[Sequence, Sequence]
    ) -> list[tuple[str, list]]:
        """The event's entries in the order the venue applied them: seeded per event, removals and
        changes before new levels (so no prefix is crossed)."""
        bids, asks = levels
        entries = [("b", entry) for entry in bids] + [("a", entry) for entry in asks]
        random.Random(f"{self._seed}/straddle-order/{index}").shuffle(entries)
        return sorted(entries, key=lambda item: _adds_level(book, *item))


def is_crossed(book: ReferenceBook) -> bool:
    """Best bid at or above best ask: no venue's book is ever in this state."""
    bid, ask = book.bids(1), book.asks(1)
    return bool(bid and ask) and float(bid[0][0]) >= float(ask[0][0])


def _adds_level(book: ReferenceBook, side: str, entry: list) -> bool:
    return float(entry[1]) != 0.0 and not book.has_level(side == "b", entry[0])


def _snapshot(url: str, payload: bytes, seq: int, source: str, dialect: VenueDialect) -> RecordedSnapshot | None:
    """The REST depth snapshot a response holds; None for any other response."""
    symbol = dialect.snapshot_request(url)
    if symbol is None:
        return None
    try:
        last, levels = dialect.parse_rest_snapshot(symbol, payload)
    except ValueError:
        raise HarnessError(f"{source}: REST depth response seq {seq} is not a readable snapshot") from None
    return RecordedSnapshot(symbol, last, levels.bids, levels.asks, seq)


def _check_checksums(
    frames: Iterable[Frame],
    start_books: dict[str, ReferenceBook],
    snapshots: dict[str, list[RecordedSnapshot]],
    dialect: VenueDialect,
    source: str,
) -> None:
    """Holds every frame that carries the venue's checksum to it, on the venue's book after the frame.
    An update with nothing to link by (OKX before 2023) is placed after its predecessor, and only its
    checksum vouches for that; a mismatch is a broken recording, said in one line, never served."""
    if dialect.checksum((), ()) is None:
        return
    books = {symbol: book.copy() for symbol, book in start_books.items()}
    for frame in frames:
        if frame.chain is None or frame.symbol not in books:
            continue
        levels = dialect.book_levels(frame.payload)
        book = books[frame.symbol]
        apply_depth(book, frame, snapshots.get(frame.symbol, ()), (levels.bids, levels.asks), dialect=dialect)
        if levels.checksum is not None and dialect.checksum(book.bids(), book.asks()) != levels.checksum:
            raise HarnessError(
                f"{source}: the {frame.symbol} book after frame {frame.index} ({frame.stream}) does not match"
                " the checksum the frame carries"
            )


def _specs(
    symbols: Sequence[str],
    named: set[str],
    frames: Iterable[Frame],
    snapshots: dict[str, list[RecordedSnapshot]],
    dialect: VenueDialect,
) -> dict[str, SymbolSpec]:
    """The REST symbol specs (exchangeInfo) for venues whose books start from REST; none for venues
    whose snapshot comes on the stream, whose wires serve no exchangeInfo and whose instrument ids
    (OKX's `BTC-USD-220527`) are not Binance-shaped symbols. Each symbol's price and size strings are
    its snapshots' levels and its first SPEC_SAMPLE_FRAMES frames' (`named`: the symbols frames name),
    read in one walk that stops when every symbol has its sample."""
    if dialect.snapshot_transport != "rest":
        return {}
    samples: dict[str, tuple[list[str], list[str]]] = {}
    for symbol in symbols:
        prices, sizes = samples[symbol] = ([], [])
        for snapshot in snapshots.get(symbol, []):
            for level in (*snapshot.bids, *snapshot.asks):
                prices.append(level[0])
                sizes.append(level[1])
    sampled = dict.fromkeys(named & set(symbols), 0)
    for frame in frames:
        if not sampled:
            break
        symbol = frame.symbol or ""
        if symbol not in sampled:
            continue
        try:
            data = orjson.loads(frame.payload)["data"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
        if not isinstance(data, dict):
            continue
        sampled[symbol] += 1
        if sampled[symbol] >= SPEC_SAMPLE_FRAMES:
            del sampled[symbol]
        prices, sizes = samples[symbol]
        for key in ("b", "a", "bids", "asks"):
            levels = data.get(key)
            if isinstance(levels, list):
                for level in levels:
                    if isinstance(level, list) and len(level) >= 2:
                        prices.append(level[0])
                        sizes.append(level[1])
        # A trade's price and quantity, and a bookTicker's best bid and ask with their sizes.
        for price_key, size_key in (("p", "q"), ("b", "B"), ("a", "A")):
            price, size = data.get(price_key), data.get(size_key)
            if isinstance(price, str) and isinstance(size, str):
                prices.append(price)
                sizes.append(size)
    return {symbol: symbol_spec(symbol, *samples[symbol]) for symbol in symbols}
