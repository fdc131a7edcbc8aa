"""The oracle: the book rebuilt from the clean recording, the truth the checker compares against.

It decodes the venue's depth frames itself, with the venue's own oracle rule
(`harness/venues/<venue>/oracle_rule.py`: nothing from the subject's decoder, book or sync, checked
by tests/test_house.py), and applies them to replayer/reference_book.py's plain book, so a bug in the
subject cannot be repeated here and hide.

Two passes over the clean frames. The first, when the oracle is made, reads only ids: every depth
frame's, the recording's gaps, which states (symbol, last update id) have a known book and which
symbols end with one: all the venue and the runner need before serving. The second applies the
levels and keeps the top of book after every known state, compressed (harness/oracle_tops.py); it
runs on demand, as far as the frame the venue writes (`frame`) or the state the checker asks for
(`top`), so at speed 0 this work overlaps the subject's instead of delaying the first frame, and to
the end for what only the check after the run asks (full books, the prices touched) or when told
(`complete`: a paced replay does, before serving). Both passes follow the same chain of
ids, so the first already knows where each state's top will be, and an answer never depends on how
far the second has gone. A venue whose frames carry a checksum (OKX) has no first pass: whether a
state is known depends on the book, so its one pass does both, when the oracle is made.
The full book is kept for the last frame and rebuilt by replay for any other update id, which only
the final check asks for.

A book is known from a snapshot onwards: frames before the first usable snapshot, and frames after
a break in the recorded sequence until another snapshot bridges it, have no known book.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from operator import itemgetter
from types import ModuleType
from typing import NamedTuple, Protocol, cast, runtime_checkable

import orjson

from harness.book_events import DepthSnapshot
from harness.errors import HarnessError
from harness.oracle_tops import Side, TopsStore
from harness.venues.registry import oracle_rule_of
from replayer.reference_book import ReferenceBook
from replayer.timeline import Frame

TOP_DEPTH = 20


@runtime_checkable
class DepthSnapshotLike(Protocol):
    """A depth snapshot by its shape: a DepthSnapshot, a recorded one (replay_data's RecordedSnapshot)."""

    @property
    def symbol(self) -> str: ...
    @property
    def last_update_id(self) -> int: ...
    @property
    def bids(self) -> Sequence[Sequence[str]]: ...
    @property
    def asks(self) -> Sequence[Sequence[str]]: ...


class DepthFrame(NamedTuple):
    """The ids of one clean depth frame, as the oracle decoded them; `prev_last` is USD-M's `pu`;
    `snapshot` marks an in-stream snapshot, which replaces the book whatever came before. A named
    tuple, read-only, made about three times faster than a frozen dataclass: the send digest and the
    checker ask for one per depth frame, several times over."""

    index: int  # type: ignore[assignment]  # a field where tuple has a method: nothing counts a frame's items
    symbol: str
    first_update_id: int
    last_update_id: int
    prev_last: int | None
    snapshot: bool = False
    unlinked: bool = False
    """An update with no ids to link by (OKX before 2023): it follows whatever came before, and only
    the venue's checksum (the rule's `verify`) can vouch for the book after it."""

    def follows(self, last_update_id: int) -> bool:
        """Whether this frame continues a stream whose last applied update was `last_update_id`."""
        if self.snapshot or self.unlinked:
            return True
        if self.prev_last is not None:
            return self.prev_last == last_update_id
        return self.first_update_id == last_update_id + 1


def snapshot_from_rest(symbol: str, body: bytes) -> DepthSnapshot:
    """A recorded REST depth body (`{"lastUpdateId":..,"bids":..,"asks":..}`) as a DepthSnapshot."""
    try:
        doc = orjson.loads(body)
        return DepthSnapshot(symbol, int(doc["lastUpdateId"]), doc["bids"], doc["asks"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise HarnessError(f"recording: the REST depth snapshot for {symbol} is not a depth body") from None


def oracle_rule(venue: str) -> ModuleType:
    """The oracle's own copy of `venue`'s rule (`harness/venues/<venue>/oracle_rule.py`, listed in the
    registry's `ORACLE_RULES`):
    `decode(frame)` -> (symbol, first id, last id, link to the previous last id or None, bids, asks) for
    a book frame, None for any other (HarnessError for a clean frame it cannot read);
    `bridges(ids, snapshot_id)`, whether a frame is the first to apply on a REST snapshot; optionally
    `book_stream(stream)`, whether frames on a stream can be book frames (no other is read); for
    venues whose snapshots travel on the stream, `snapshot(frame)`, whether a book frame is one;
    optionally `unlinked(frame)`, an update with no ids to link by, and `verify(frame, book)`, whether
    the book after a frame matches the checksum the frame carries (True where it carries none)."""
    return oracle_rule_of(venue)


def decode_depth(frame: Frame, rule: ModuleType) -> tuple[DepthFrame, Sequence, Sequence] | None:
    """A book frame's ids and levels by the venue's oracle rule, or None for any other frame."""
    return _DepthReader(rule)(frame)


class _DepthReader:
    """`decode_depth` with the rule's optional parts looked up once, not for every frame."""

    __slots__ = ("_decode", "_snapshot", "_unlinked")

    def __init__(self, rule: ModuleType) -> None:
        self._decode = rule.decode
        self._snapshot = getattr(rule, "snapshot", None)
        self._unlinked = getattr(rule, "unlinked", None)

    def __call__(self, frame: Frame) -> tuple[DepthFrame, Sequence, Sequence] | None:
        decoded = self._decode(frame)
        if decoded is None:
            return None
        symbol, first, last, prev, bids, asks = decoded
        snapshot = self._snapshot is not None and bool(self._snapshot(frame))
        unlinked = self._unlinked is not None and bool(self._unlinked(frame))
        return DepthFrame(frame.index, symbol, first, last, prev, snapshot, unlinked), bids, asks


class _IdsOnly:
    """A book's last update id and nothing else: what the first pass follows the chain with."""

    __slots__ = ("last_update_id",)

    def __init__(self) -> None:
        self.last_update_id = 0

    def load(self, last_update_id: int, bids: object, asks: object) -> None:
        self.last_update_id = last_update_id

    def apply(self, last_update_id: int, bids: object, asks: object) -> None:
        self.last_update_id = last_update_id


class _LastTouches:
    """The last update id that changed each price of one symbol, over every clean depth frame: the
    prices a book loaded from any snapshot learned by the last frame, without decoding them again.
    One entry per price ever touched (bounded by the price range the recording walks, not its length)."""

    __slots__ = ("asks", "bids", "latest_first", "latest_last")

    def __init__(self) -> None:
        self.bids: dict[str, int] = {}
        self.asks: dict[str, int] = {}
        self.latest_first = -(2**63)
        """The highest first update id of any frame: a query up to it or beyond sees every frame."""
        self.latest_last = -(2**63)

    def add(self, ids: DepthFrame, bids: Sequence, asks: Sequence) -> None:
        last = ids.last_update_id
        if ids.first_update_id > self.latest_first:
            self.latest_first = ids.first_update_id
        if last >= self.latest_last:  # ids going up, as they do but after a venue's reset: in C
            self.latest_last = last
            self.bids.update(zip(map(itemgetter(0), bids), repeat(last)))
            self.asks.update(zip(map(itemgetter(0), asks), repeat(last)))
            return
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for level in levels:
                price = level[0]
                if side.get(price, last) <= last:
                    side[price] = last

    def since(self, after_id: int) -> tuple[set[str], set[str]]:
        """Prices changed by a frame ending after `after_id`."""
        return (
            {price for price, last in self.bids.items() if last > after_id},
            {price for price, last in self.asks.items() if last > after_id},
        )


_NO_LINK = -(2**63)
_SNAPSHOT, _UNLINKED = 1, 2


class _DepthFrameIds:
    """Every clean depth frame's ids in columns (36 bytes a frame instead of a DepthFrame and a dict
    entry, about 250), added in recording order; looked up by frame index with a bisection."""

    __slots__ = ("_first", "_flags", "_indices", "_last", "_link", "_names", "_numbers", "_symbols")

    def __init__(self) -> None:
        self._indices, self._first, self._last, self._link = array("q"), array("q"), array("q"), array("q")
        self._symbols = array("H")
        self._flags = array("B")
        self._numbers: dict[str, int] = {}
        self._names: list[str] = []

    def add(self, ids: DepthFrame) -> None:
        if self._indices and ids.index <= self._indices[-1]:
            raise ValueError(f"depth frame {ids.index} added after frame {self._indices[-1]}")
        number = self._numbers.get(ids.symbol)
        if number is None:
            number = self._numbers[ids.symbol] = len(self._names)
            self._names.append(ids.symbol)
        self._indices.append(ids.index)
        self._symbols.append(number)
        self._first.append(ids.first_update_id)
        self._last.append(ids.last_update_id)
        self._link.append(_NO_LINK if ids.prev_last is None else ids.prev_last)
        self._flags.append((_SNAPSHOT if ids.snapshot else 0) | (_UNLINKED if ids.unlinked else 0))

    def __len__(self) -> int:
        return len(self._indices)

    def get(self, index: int) -> DepthFrame | None:
        i = bisect_left(self._indices, index)
        return self._at(i) if i < len(self._indices) and self._indices[i] == index else None

    def __iter__(self) -> Iterator[DepthFrame]:
        for i in range(len(self._indices)):
            yield self._at(i)

    def count_below(self, symbol: str, update_id: int) -> int:
        """How many of `symbol`'s depth frames end before `update_id`."""
        number = self._numbers.get(symbol)
        if number is None:
            return 0
        return sum(1 for i, last in enumerate(self._last) if last < update_id and self._symbols[i] == number)

    def indices_after(self, symbol: str, after_id: int, upto_id: int) -> Iterator[int]:
        """The frame indices of `symbol`'s depth frames that end after `after_id`, up to the first that
        starts after `upto_id`: read from the columns, so a caller decodes only those frames."""
        number = self._numbers.get(symbol)
        if number is None:
            return
        symbols, first, last = self._symbols, self._first, self._last
        for i in range(len(self._indices)):
            if symbols[i] != number or last[i] <= after_id:
                continue
            if first[i] > upto_id:
                return
            yield self._indices[i]

    def _at(self, i: int) -> DepthFrame:
        link, flags = self._link[i], self._flags[i]
        return DepthFrame(
            self._indices[i],
            self._names[self._symbols[i]],
            self._first[i],
            self._last[i],
            None if link == _NO_LINK else link,
            bool(flags & _SNAPSHOT),
            bool(flags & _UNLINKED),
        )


class Oracle:
    """Answers "what was the book after update `u`" for the clean recording.

    `snapshots` are the recorded REST snapshots (one, or several per symbol when the recorder
    resynced), or any objects with `symbol`, `last_update_id`, `bids` and `asks` (the replay's start
    books); each is used at the first frame that bridges it, and the ones no frame bridges are skipped.
    """

    def __init__(
        self,
        frames: Iterable[Frame],
        snapshots: DepthSnapshotLike | Iterable[DepthSnapshotLike],
        venue: str = "binance-spot",
    ) -> None:
        self._rule = oracle_rule(venue)
        self._read = _DepthReader(self._rule)
        self._verify = getattr(self._rule, "verify", None)
        # Read again by the second pass, and for what the final check asks (a full book, the prices a diff touched).
        self._clean = frames if isinstance(frames, Sequence) else list(frames)
        pending: dict[str, list[DepthSnapshotLike]] = {}
        for snap in [snapshots] if isinstance(snapshots, DepthSnapshotLike) else snapshots:
            pending.setdefault(snap.symbol, []).append(snap)
        for queue in pending.values():
            queue.sort(key=lambda s: s.last_update_id)
        self._snapshots = {symbol: list(queue) for symbol, queue in pending.items()}
        self._tops = TopsStore()
        self._states: dict[str, array] = {}
        self._frames = _DepthFrameIds()
        self._books: dict[str, ReferenceBook] = {}
        """Each symbol's book after the last frame, once the pass that keeps the tops has ended."""
        self._finals: dict[str, int] = {}
        """The last update id of each symbol whose book is known after the last frame."""
        self._touched: dict[str, _LastTouches] = {}
        self.recording_gaps = 0
        """Breaks in the clean recording's own sequence: the book is unknown from each until a snapshot."""
        self.depth_frames = 0
        self._tops_pass: Iterator[tuple[str, ReferenceBook]] | None = None
        """The pass that keeps the tops, advanced as far as `top` and `frame` ask; None once it has ended."""
        self._tops_read = -1
        """The index of the last depth frame that pass has read."""
        if self._verify is None:
            for _ in self._replay(self._book_frames(), self._pending(), ids=True, tops=False):
                pass
            self._tops_pass = self._replay(self._book_frames(), self._pending(), ids=False, tops=True)
        else:
            for _ in self._replay(self._book_frames(), self._pending(), ids=True, tops=True):
                pass

    def complete(self) -> None:
        """Computes every top now, not as the run asks: for a caller that must not pay them while it
        serves (a paced venue keeps its pace)."""
        self._finish()

    def close(self) -> None:
        """Gives back the disk the tops took; `top` answers nothing afterwards."""
        self._tops_pass = None
        self._tops.close()

    @property
    def symbols(self) -> list[str]:
        return sorted(self._finals)

    def frame(self, index: int) -> DepthFrame | None:
        """The ids of clean frame `index` when it is a depth frame (the send log joins on this). The
        venue's writes ask for each depth frame as it goes out (harness/send_digest.py): the tops are
        computed up to it then, while the subject still reads what went out before, so its
        observations of that frame find them ready."""
        while self._tops_read < index and self._tops_pass is not None:
            self._step()
        return self._frames.get(index)

    def depth_frame_ids(self) -> Iterator[DepthFrame]:
        """Every clean depth frame's ids, in recording order (the checker's hole search walks them)."""
        return iter(self._frames)

    def depth_frames_before(self, symbol: str, update_id: int) -> int:
        """`symbol`'s clean depth frames that end before `update_id`: before a snapshot at that id, the
        states no subject can verify."""
        return self._frames.count_below(symbol, update_id)

    def knows(self, symbol: str, update_id: int) -> bool:
        return (symbol, update_id) in self._tops

    def top(self, symbol: str, update_id: int) -> tuple[Side, Side] | None:
        """Top 20 bids and asks, best first, after `update_id`; None where the book is unknown there.
        Computes the tops up to that state's first, when `frame` has not (they come in recording order)."""
        key = (symbol, update_id)
        place = self._tops.place(key)
        if place is None:
            return None
        tops = self._tops
        while tops.filled <= place and self._tops_pass is not None:
            self._step()
        return tops.at(place)

    def skips_states(self, symbol: str, earlier: int, later: int) -> bool:
        """Whether a book that moved from update `earlier` to `later` passed over a known state: it was
        reloaded in between, where applying updates goes one state at a time. An id inside an event (a
        snapshot the venue served there) sits between the states around it."""
        states = self._states.get(symbol)
        if not states:
            return False
        return _position(states, later) - _position(states, earlier) > 1

    def last_update_id(self, symbol: str) -> int | None:
        return self._finals.get(symbol)

    def full_book(self, symbol: str, update_id: int) -> tuple[Side, Side] | None:
        """The whole book after `update_id`, None where unknown; any id but the last costs a replay."""
        self._finish()
        book = self._books.get(symbol)
        if book is not None and book.last_update_id == update_id:
            return tuple(book.bids()), tuple(book.asks())
        if not self.knows(symbol, update_id):
            return None
        for sym, book in self._replay(self._book_frames(), self._pending(), ids=False, tops=False):
            if sym == symbol and book.last_update_id == update_id:
                return tuple(book.bids()), tuple(book.asks())
        return None

    def touched_prices(self, symbol: str, after_id: int, upto_id: int) -> tuple[set[str], set[str]]:
        """Bid and ask prices that the clean depth frames ending after `after_id` and starting by
        `upto_id` changed: what a book loaded from a snapshot at `after_id` learned beyond it. Up to the
        last frame (what the final check asks) from each price's last touch, kept by the pass that keeps
        the tops; for an earlier `upto_id`, by decoding the frames again."""
        self._finish()
        touched = self._touched.get(symbol)
        if touched is not None and upto_id >= touched.latest_first:  # no frame lies beyond `upto_id`
            return touched.since(after_id)
        bids: set[str] = set()
        asks: set[str] = set()
        for index in self._frames.indices_after(symbol, after_id, upto_id):
            decoded = self._read(self._clean[index])
            if decoded is not None:
                bids.update(level[0] for level in decoded[1])
                asks.update(level[0] for level in decoded[2])
        return bids, asks

    def _step(self) -> None:
        """One more known state's top, from the pass that keeps them (ended: it is dropped)."""
        assert self._tops_pass is not None
        if next(self._tops_pass, None) is None:
            self._tops_pass = None

    def _finish(self) -> None:
        while self._tops_pass is not None:
            self._step()

    def _pending(self) -> dict[str, list[DepthSnapshotLike]]:
        """The snapshots still to bridge, for one pass (it consumes them)."""
        return {symbol: list(queue) for symbol, queue in self._snapshots.items()}

    def _book_frames(self) -> Iterable[Frame]:
        """The clean frames the rule can read a book from: those on its book streams, when it names
        them and the frames can be read by stream (replayer/frame_store.py), else every frame."""
        book_stream = getattr(self._rule, "book_stream", None)
        on_streams = getattr(self._clean, "on_streams", None)
        if book_stream is None or on_streams is None:
            return self._clean
        frames: Iterable[Frame] = on_streams(book_stream)
        return frames

    def _replay(
        self, frames: Iterable[Frame], pending: dict[str, list[DepthSnapshotLike]], *, ids: bool, tops: bool
    ) -> Iterator[tuple[str, ReferenceBook]]:
        """Applies every depth frame in order, yielding (symbol, book) after each known state. `ids`:
        keeps what the ids say (the depth frames, the gaps, the known states and where their tops go,
        the final ids), following the chain on `_IdsOnly` books unless `tops` too; `tops`: applies the
        levels and keeps the tops (planned by the `ids` pass before, unless both), each price's last
        touch and the final books. Neither: a replay for one full book."""
        books: dict[str, ReferenceBook | None] = {}
        # The ids pass calls only `load`, `apply` and `last_update_id`, which an _IdsOnly has.
        made = ReferenceBook if tops or not ids else cast(Callable[[], ReferenceBook], _IdsOnly)
        read = self._read
        verify = self._verify
        # The id each symbol's next unlinked update follows: the first snapshot's, then the last frame's.
        latest = {symbol: queue[0].last_update_id for symbol, queue in pending.items() if queue}
        for frame in frames:
            decoded = read(frame)
            if decoded is None:
                continue
            frame_ids, bids, asks = decoded
            symbol = frame_ids.symbol
            if frame_ids.unlinked:
                # Placed after its predecessor in the recording: the link the venue did not send.
                frame_ids = frame_ids._replace(prev_last=latest.get(symbol))
            latest[symbol] = frame_ids.last_update_id
            if ids:
                _check_levels(frame_ids.index, bids, asks)
                self._frames.add(frame_ids)
                self.depth_frames += 1
            if tops:
                self._tops_read = frame_ids.index
                touched = self._touched.get(symbol)
                if touched is None:
                    touched = self._touched[symbol] = _LastTouches()
                touched.add(frame_ids, bids, asks)
            book = books.get(symbol)
            if frame_ids.snapshot:
                book = made()
                book.load(frame_ids.last_update_id, bids, asks)
                books[symbol] = book
            else:
                if book is not None and not frame_ids.follows(book.last_update_id):
                    if frame_ids.last_update_id <= book.last_update_id:
                        continue
                    if ids:
                        self.recording_gaps += 1
                    book = None
                if book is None:
                    book = books[symbol] = self._bridge(frame_ids, pending.get(symbol, []), made)
                    if book is None:
                        continue
                    self._remember(symbol, book, ids, tops)
                    yield symbol, book
                    if frame_ids.last_update_id <= book.last_update_id:
                        continue
                book.apply(frame_ids.last_update_id, bids, asks)
            if verify is not None and not verify(frame, book):
                # A checksum mismatch is a break in the recording (counted with the gaps): the book is
                # unknown until the next snapshot, never silently taken as the venue's.
                books[symbol] = None
                if ids:
                    self.recording_gaps += 1
                continue
            self._remember(symbol, book, ids, tops)
            yield symbol, book
        if ids:
            self._finals = {symbol: book.last_update_id for symbol, book in books.items() if book is not None}
        if tops:
            self._books = {symbol: book for symbol, book in books.items() if book is not None}

    def _bridge(
        self, ids: DepthFrame, queue: list[DepthSnapshotLike], made: Callable[[], ReferenceBook]
    ) -> ReferenceBook | None:
        """A book loaded from the snapshot this frame bridges (or lies before), consuming used snapshots."""
        while queue:
            snap = queue[0]
            if ids.last_update_id < snap.last_update_id:
                return None
            queue.pop(0)
            if self._rule.bridges(ids, snap.last_update_id):
                book = made()
                book.load(snap.last_update_id, snap.bids, snap.asks)
                return book
        return None

    def _remember(self, symbol: str, book: ReferenceBook, ids: bool, tops: bool) -> None:
        if ids:
            update_id = book.last_update_id
            self._tops.plan((symbol, update_id))
            states = self._states.get(symbol)
            if states is None:
                states = self._states[symbol] = array("q")
            if not states or update_id > states[-1]:
                states.append(update_id)
        if tops:
            self._tops.fill(book.bids(TOP_DEPTH), book.asks(TOP_DEPTH))


def _check_levels(index: int, bids: Sequence, asks: Sequence) -> None:
    """HarnessError unless every level of clean frame `index` is a price and a size: read by the ids
    pass, before serving, so that the tops pass, which applies them during the run, cannot fail there."""
    levels: object = (bids, asks)
    try:
        for levels in (bids, asks):
            for level in levels:
                float(level[0])
                float(level[1])
    except (IndexError, KeyError, TypeError, ValueError):
        what = f"book levels that are not prices and sizes: {repr(levels)[:80]}"
        raise HarnessError(f"recording: clean frame {index} has {what}") from None


def _position(states: Sequence[int], update_id: int) -> float:
    """`update_id`'s place among the known states, halfway between two for an id inside an event."""
    i = bisect_left(states, update_id)
    return i if i < len(states) and states[i] == update_id else i - 0.5
