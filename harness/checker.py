"""The checker: judges what the subject reported against the oracle, and joins it with the server's writes.

Pure: it reads no clock and touches no socket. The runner feeds it the subject's messages in the order
the subject emitted them (`Checker.feed`, streaming, so observations need not be kept), then calls
`finish` with the subject's final books and the server's send log. Every time it handles is a
monotonic nanosecond stamp; fault windows come in replay offsets and are put on the same clock by
the `to_mono` function the runner passes (see `replay_clock`).

The worst finding is silent divergence: an observation that claims to be synced and differs from the
oracle at its update id, claims synced at an update id the clean recording never ended a frame on, or
claims synced on a chain of updates that crosses a hole in what the subject received (given the
snapshots the venue served, harness/deliveries.py), whatever its top 20 shows. The venue's REST
snapshots usually fall inside a depth event, where the clean recording has no book: a synced
observation at a served snapshot's id is judged against that snapshot's top levels (what the venue
said the book was), and an id that is neither a frame boundary nor a served snapshot's is divergence.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.deliveries import NEVER, ChainJudge, Deliveries, Hole, SnapshotLike
from harness.divergence_context import Nearby, first_difference, frames_around, writes_by_frame
from harness.errors import HarnessError
from harness.latency import Histogram
from harness.level_match import LevelMatch, SnapshotReach, VisibleDepth, as_sent, within_reach
from harness.observations import LOSES_SYNC, BookObservation, FinalBook, SubjectMessage, SyncEvent
from harness.oracle import DepthFrame, Oracle, Side
from harness.send_digest import ClientLike, SendDigest, clock_of
from harness.sync_timeline import DIVERGED, SYNCED, UNSYNCED, SyncTimeline, silent_while_synced
from replayer.timeline import Frame

STAGES = ("wire", "parse", "queue", "apply")
"""wire: server write to receive; parse: receive to parsed; queue: parsed to dequeued; apply: dequeued to applied."""

MAX_DIFF_LEVELS = 5
MAX_EXAMPLES = 5
"""Divergences described in full in the report (and flags of each kind listed); every one is counted."""
_UNWRITTEN = 2**63 - 1
"""A write time no write has: the frame (or the state) was never written to the subject."""
NEVER_WRITTEN = "the venue wrote none of its depth frames to the subject (never subscribed?)"
FLAGS = ("books_before_snapshot", "unrequested_output", "dark_books", "stale_synced")
"""Findings about a book other than its levels, each its own metric (docs/report-schema.md, "Flags")."""


@dataclass(slots=True)
class AgreedObservation(BookObservation):
    """A synced observation whose top 20 `TopJudge` compared with the oracle as it arrived, and found
    equal; it comes back from the message log without its levels, which nothing reads again."""


class TopJudge:
    """The oracle's verdict on a synced observation's top 20, given as it arrives (one per run: its
    LevelMatch caches conversions), so the levels need not be kept, nor parsed twice."""

    __slots__ = ("_match", "_oracle")

    def __init__(self, oracle: Oracle) -> None:
        self._oracle = oracle
        self._match = LevelMatch()

    def agrees(self, obs: BookObservation) -> bool:
        """True when the oracle knows the book at `obs.update_id` and its top 20 equals `obs`'s."""
        expected = self._oracle.top(obs.symbol, obs.update_id)
        if expected is None:
            return False
        match = self._match
        return match.same_side(obs.bids, expected[0]) and match.same_side(obs.asks, expected[1])


class WindowLike(Protocol):
    """A fault window in replay offsets (replayer/faults/work.py FaultWindow has this shape).

    Read-only properties, so that frozen dataclasses match."""

    @property
    def kind(self) -> str: ...
    @property
    def start_ns(self) -> int: ...
    @property
    def heal_ns(self) -> int: ...


class ServedLike(SnapshotLike, Protocol):
    """One REST depth snapshot the venue served (replayer/server.py SnapshotRecord), with its top levels,
    best first; they are read only for a synced observation at an id no clean frame ends on."""

    @property
    def bids(self) -> Side: ...
    @property
    def asks(self) -> Side: ...


def send_log_clock(frames: Sequence[Frame], clients: Iterable[ClientLike]) -> Callable[[int], int]:
    """Maps a replay offset to when the server wrote the first clean frame due at or after it.

    For speed 0 (as fast as the client reads), where offsets have no fixed place in time; an offset
    after every write maps past the last one. From a send log in hand: 8 bytes a frame while it is
    built, then 16 bytes a write batch (`harness replay` builds it as the writes happen instead:
    `SendDigest.clock`).
    """
    count = len(frames)
    written = array("q", [_UNWRITTEN]) * count
    for client in clients:
        for send in client.sends:
            i = send.frame_index
            if 0 <= i < count and send.write_mono_ns < written[i]:
                written[i] = send.write_mono_ns

    offsets = getattr(frames, "offsets", None)  # a frame store's, without making the frames

    def points() -> Iterator[tuple[int, int]]:
        every = offsets() if offsets is not None else (frame.offset_ns for frame in frames)
        for offset, when in zip(every, written, strict=True):
            if when != _UNWRITTEN:
                yield offset, when

    return clock_of(points)


def _ascending(values: Iterable[int]) -> array:
    """`values` in an array, sorted only when they did not come in order."""
    kept = array("q", values)
    if any(kept[i] > kept[i + 1] for i in range(len(kept) - 1)):
        kept = array("q", sorted(kept))
    return kept


def replay_clock(start_mono_ns: int, speed: float) -> Callable[[int], int]:
    """Maps a replay offset to the monotonic time the server meant to act on it (speed 1 = recorded pace)."""
    if speed <= 0:
        raise HarnessError("fault windows need a replay speed above 0 to be placed in time")
    return lambda offset_ns: start_mono_ns + round(offset_ns / speed)


class _FirstSeen:
    """Per symbol, the values that came with the first sighting of each update id: columns for the
    ids that come in ascending order (nearly all, 8 bytes an id and a value), a dict and columns
    of their own for the few first seen below a higher one (a resync that went back)."""

    __slots__ = ("_columns", "_ids", "_stray", "_stray_columns", "_width")

    def __init__(self, width: int) -> None:
        self._width = width
        self._ids: dict[str, array] = {}
        self._columns: dict[str, list[array]] = {}
        self._stray: dict[tuple[str, int], int] = {}
        self._stray_columns = [array("q") for _ in range(width)]

    def add(self, symbol: str, update_id: int, *values: int) -> bool:
        """Keeps `values` for (symbol, update_id) unless it was seen before; whether it was new."""
        ids = self._ids.get(symbol)
        if ids is None:
            ids = self._ids[symbol] = array("q")
            self._columns[symbol] = [array("q") for _ in range(self._width)]
        if not ids or update_id > ids[-1]:
            ids.append(update_id)
            columns = self._columns[symbol]
        elif self.find(symbol, update_id) is not None:
            return False
        else:
            self._stray[(symbol, update_id)] = len(self._stray)
            columns = self._stray_columns
        for column, value in zip(columns, values, strict=True):
            column.append(value)
        return True

    def find(self, symbol: str, update_id: int) -> tuple[list[array], int] | None:
        """The columns that hold (symbol, update_id)'s values and its row there; None: never seen."""
        ids = self._ids.get(symbol)
        if ids is not None:
            i = bisect_left(ids, update_id)
            if i < len(ids) and ids[i] == update_id:
                return self._columns[symbol], i
        row = self._stray.get((symbol, update_id))
        return None if row is None else (self._stray_columns, row)

    def rows(self) -> Iterator[tuple[int, ...]]:
        for columns in [*self._columns.values(), self._stray_columns]:
            yield from zip(*columns, strict=True)


@dataclass(slots=True)
class _Track:
    """One fault window as seen by one symbol: from its start until a verified correct book."""

    kind: str
    fault_id: str
    symbol: str
    start: int
    heal: int
    candidate: int | None = None
    closed: bool = False


@dataclass(slots=True)
class _SymbolState:
    synced: bool = False
    since: int = 0
    unsynced_ns: int = 0
    last_synced_u: int | None = None
    ever_correct: bool = False
    lost: bool = False
    episode_verified: bool = False
    episode_start: int = 0
    observed: bool = False


@dataclass(slots=True)
class WindowRecovery:
    kind: str
    fault_id: str
    symbol: str
    start_mono_ns: int
    recovery_ns: int | None
    """From the window's start to the first verified correct synced book after its last disruption; None: never."""


@dataclass(slots=True)
class FinalCheck:
    symbol: str
    correct: bool
    detail: str
    update_id: int | None
    oracle_last_update_id: int | None
    depth: VisibleDepth | None = None
    """Set when the comparison was limited to what the subject's last snapshot could show it."""


@dataclass(slots=True)
class Findings:
    """Everything the checker found; harness/report.py turns it into the JSON report."""

    checks: int = 0
    """Synced books compared with the oracle: observations and synced final books."""
    checked_states: int = 0
    """Distinct (symbol, update id) states among the synced observations checked: coverage counts these."""
    divergent: int = 0
    unknown_update_ids: int = 0
    holes_bridged: int = 0
    unverified: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    duplicates_applied: int = 0
    reorders_applied: int = 0
    events: Counter[str] = field(default_factory=Counter)
    unsynced_ns: int = 0
    recoveries: list[WindowRecovery] = field(default_factory=list)
    finals: list[FinalCheck] = field(default_factory=list)
    final_book_correct: bool = False
    frames_sent: int = 0
    depth_frames_sent: int = 0
    gaps_injected: int = 0
    out_of_order_sent: int = 0
    observations: int = 0
    latency: dict[str, Histogram] = field(default_factory=dict)
    unjoined: int = 0
    negative_latencies: int = 0
    clean_depth_frames: int = 0
    before_first_snapshot: int = 0
    """Clean depth frames ending before the first REST snapshot the venue served of their symbol: no
    subject can verify those states, so coverage leaves them out (at speed 0 the venue may send
    thousands while the first snapshot is fetched; at speed 1, the few of that round trip)."""
    recording_gaps: int = 0
    losses_detected: int = 0
    """Times a symbol's book, once correct, stopped being synced as the subject shows it: an event that
    loses sync, an unsynced observation, or a correct book at a later id that skipped states (a reload
    nobody announced). Whatever words the subject uses for its events."""
    recovered: int = 0
    """Times a symbol came back to a correct synced book after such a loss."""
    episodes: int = 0
    """Snapshot episodes: each time a symbol's book went from not synced to synced (first sync, every resync)."""
    episodes_verified: int = 0
    """Episodes with at least one synced book compared with the oracle and matching before the next loss."""
    books_before_snapshot: int = 0
    """Observations of a symbol applied before the venue had served any snapshot of it."""
    unrequested_output: int = 0
    """Messages (observations, events, final books) for a symbol the subject was never asked for."""
    dark_books: int = 0
    """Symbols the subject was asked for, with updates to give, of which it never reported a book."""
    stale_synced: int = 0
    """Silences past the stale limit (nothing written to the subject while updates were due) through
    which a symbol's book still claimed synced."""
    flags: list[dict[str, Any]] = field(default_factory=list)
    """The first few of each flag: `{flag, symbol, mono_ns, detail}`."""
    stale_limit_ns: int | None = None
    """The limit `stale_synced` was judged with; None: not judged (no limit, or no clock to say what was due)."""
    unverified_episodes: list[dict[str, Any]] = field(default_factory=list)
    """The first few episodes never verified: `{symbol, start_mono_ns, end_mono_ns}` (end null: the run's end)."""
    timeline: SyncTimeline = field(default_factory=SyncTimeline)
    fault_windows: list[tuple[str, str, int, int]] = field(default_factory=list)
    """(fault_id, kind, start, heal) on the monotonic clock, for pictures."""
    start_mono_ns: int | None = None
    end_mono_ns: int = 0

    @property
    def gaps_detected(self) -> int:
        return self.events["gap_detected"]

    @property
    def resyncs(self) -> int:
        return self.events["resync"]


class Checker:
    """Feed the subject's messages in order, then `finish`; see the module docstring."""

    def __init__(
        self,
        oracle: Oracle,
        windows: Iterable[WindowLike] = (),
        to_mono: Callable[[int], int] | None = None,
        *,
        start_mono_ns: int | None = None,
        deliveries: Deliveries | None = None,
        served: Iterable[ServedLike] = (),
        requested: Iterable[str] | None = None,
        frames: Sequence[Frame] | None = None,
        stale_limit_ns: int | None = None,
    ) -> None:
        """`deliveries` (what reached the subject, and the snapshots served) turns on the hole search:
        without it the checker cannot know where a chain may start, and counts no `holes_bridged`.
        `served`, the snapshots the venue served, are the truth at ids inside an event, and date each
        symbol's first snapshot (none served at all: the venue sends its snapshots some other way, and
        no book is judged early). `requested`: the symbols the subject was asked for (default: the
        oracle's). `frames` (the clean frames, by index) with `to_mono` say when each update was due:
        the divergence context and, with `stale_limit_ns`, the search for books synced in silence."""
        windows = list(windows)
        self._served: dict[tuple[str, int], list[ServedLike]] = {}
        first_snapshot: dict[str, int] = {}
        first_served: dict[str, ServedLike] = {}
        for snap in served:
            self._served.setdefault((snap.symbol, snap.last_update_id), []).append(snap)
            first_snapshot[snap.symbol] = min(snap.served_mono_ns, first_snapshot.get(snap.symbol, snap.served_mono_ns))
            if snap.symbol not in first_served or snap.served_mono_ns < first_served[snap.symbol].served_mono_ns:
                first_served[snap.symbol] = snap
        if first_snapshot and deliveries is not None:
            # A snapshot frame that reached the subject on the stream (Bybit, OKX) was served too.
            for symbol in list(oracle.symbols):
                known = deliveries.symbol(symbol)
                if known is not None and known.served:
                    first_snapshot[symbol] = min(known.served[0][0], first_snapshot.get(symbol, known.served[0][0]))
        self._first_snapshot = first_snapshot or None
        self._requested = set(oracle.symbols if requested is None else requested)
        self._flagged: set[tuple[str, str]] = set()
        if stale_limit_ns is not None and stale_limit_ns <= 0:
            raise ValueError(f"stale_limit_ns must be positive, not {stale_limit_ns}")
        self._stale_limit_ns = stale_limit_ns
        self._due_of = None
        self._frames = frames
        self._to_mono = to_mono
        if frames is not None and to_mono is not None:
            # Read a frame when asked (a divergence's context asks for a few): no list of every offset.
            self._due_of = lambda index: to_mono(frames[index].offset_ns)
        if windows and to_mono is None:
            raise HarnessError("fault windows given without a clock to place them (pass to_mono)")
        self._oracle = oracle
        self._windows = [
            (getattr(w, "fault_id", ""), w.kind, to_mono(w.start_ns), to_mono(w.heal_ns))
            for w in windows
            if to_mono is not None
        ]
        self._windows.sort(key=lambda w: w[2])
        self._pending: dict[str, int] = {}
        self._tracks: dict[str, list[_Track]] = {}
        self._done: list[_Track] = []
        self._start = start_mono_ns
        self._symbols: dict[str, _SymbolState] = {}
        self._first_obs = _FirstSeen(4)
        """recv and applied of each state's first observation, then its first write and when that was due."""
        self._end = start_mono_ns or 0
        self._match = LevelMatch()
        self._checked = _FirstSeen(0)
        self._written: Counter[str] = Counter()
        """Depth frames written to the subject per symbol, counted by `_join_sends`."""
        self._chains = ChainJudge(deliveries) if deliveries is not None else None
        self.findings = Findings(
            latency={stage: Histogram() for stage in STAGES},
            clean_depth_frames=oracle.depth_frames,
            before_first_snapshot=sum(
                oracle.depth_frames_before(symbol, snap.last_update_id) for symbol, snap in first_served.items()
            ),
            recording_gaps=oracle.recording_gaps,
            fault_windows=list(self._windows),
        )
        for symbol in oracle.symbols:
            self._symbol(symbol)

    def feed(self, message: SubjectMessage) -> None:
        """One message from the subject; a FinalBook is kept for `finish`."""
        if isinstance(message, BookObservation):
            self.observe(message)
        elif isinstance(message, SyncEvent):
            self.event(message)
        else:
            raise HarnessError("a FinalBook goes to Checker.finish, not Checker.feed")

    def observe(self, obs: BookObservation) -> None:
        f = self.findings
        t = obs.applied_mono_ns
        self._tick(t)
        f.observations += 1
        record, latency = self._record, f.latency
        record(latency["parse"], obs.parsed_mono_ns - obs.recv_mono_ns)
        record(latency["queue"], obs.dequeued_mono_ns - obs.parsed_mono_ns)
        record(latency["apply"], obs.applied_mono_ns - obs.dequeued_mono_ns)
        self._first_obs.add(obs.symbol, obs.update_id, obs.recv_mono_ns, obs.applied_mono_ns, _UNWRITTEN, 0)
        state = self._symbol(obs.symbol)
        state.observed = True
        self._unrequested(obs.symbol, t, "a book")
        self._before_snapshot(obs)
        self._activate(obs.symbol, t)
        if not obs.synced:
            f.unverified += 1
            state.last_synced_u = None
            self._lose(state)
            self._sync(obs.symbol, state, False, t)
            self._disrupt(obs.symbol, t)
            return
        self._sync(obs.symbol, state, True, t)
        last = state.last_synced_u
        hole = None
        if self._chains is not None:
            if last is None:
                self._chains.restart(obs.symbol)
            hole = self._chains.judge(obs.symbol, obs.update_id, t)
            if hole is not None:
                f.holes_bridged += 1
        if last is not None:
            if obs.update_id == last:
                f.duplicates_applied += 1
            elif obs.update_id < last:
                f.reorders_applied += 1
        state.last_synced_u = obs.update_id
        f.checks += 1
        agreed = type(obs) is AgreedObservation
        expected = None if agreed else self._oracle.top(obs.symbol, obs.update_id)
        if (agreed or expected is not None) and self._checked.add(obs.symbol, obs.update_id):
            f.checked_states += 1
        if agreed:
            pass
        elif expected is None:
            served = [(snap.bids, snap.asks) for snap in self._served.get((obs.symbol, obs.update_id), ())]
            if not served:
                f.unknown_update_ids += 1
                reason = "update id is neither a clean frame boundary nor a snapshot the venue served"
                self._diverged(obs.symbol, obs.update_id, t, reason, None, None, hole)
                self._disrupt(obs.symbol, t)
                return
            if not any(self._same(obs, bids, asks) for bids, asks in served):
                reason = "top 20 differs from the snapshot the venue served at this id"
                self._diverged(obs.symbol, obs.update_id, t, reason, obs, served[0], hole)
                self._disrupt(obs.symbol, t)
                return
        elif not self._same(obs, expected[0], expected[1]):
            self._diverged(obs.symbol, obs.update_id, t, "top 20 differs from the oracle", obs, expected, hole)
            self._disrupt(obs.symbol, t)
            return
        if hole is not None:
            reason = "synced across a hole in what the subject received (top 20 agrees)"
            self._diverged(obs.symbol, obs.update_id, t, reason, None, None, hole)
            self._disrupt(obs.symbol, t)
            return
        if state.lost:
            state.lost = False
            f.recovered += 1
        elif last is not None and obs.update_id > last and self._oracle.skips_states(obs.symbol, last, obs.update_id):
            f.losses_detected += 1
            f.recovered += 1
        state.ever_correct = True
        f.timeline.mark(obs.symbol, t, SYNCED)
        self._verify(state)
        for track in self._tracks.get(obs.symbol, ()):
            if track.candidate is None:
                track.candidate = t
            if t >= track.heal:
                track.closed = True
        self._close_tracks(obs.symbol)

    def _same(self, book: BookObservation | FinalBook, bids: Side, asks: Side) -> bool:
        return self._match.same_side(book.bids, bids) and self._match.same_side(book.asks, asks)

    def event(self, ev: SyncEvent) -> None:
        self._tick(ev.mono_ns)
        self.findings.events[ev.kind] += 1
        if ev.symbol:
            self._unrequested(ev.symbol, ev.mono_ns, f"a {ev.kind} event")
        symbols = [ev.symbol] if ev.symbol else list(self._symbols)
        for symbol in symbols:
            state = self._symbol(symbol)
            self._activate(symbol, ev.mono_ns)
            if ev.kind in LOSES_SYNC:
                state.last_synced_u = None
                self._lose(state)
                self._sync(symbol, state, False, ev.mono_ns)
                self._disrupt(symbol, ev.mono_ns)
            elif ev.kind == "synced":
                state.last_synced_u = None
                self._sync(symbol, state, True, ev.mono_ns)
                self.findings.timeline.mark(symbol, ev.mono_ns, SYNCED)

    def finish(
        self,
        final_books: Iterable[FinalBook],
        clients: Iterable[ClientLike],
        snapshot_reach: Mapping[str, Sequence[SnapshotReach]] | None = None,
        end_mono_ns: int | None = None,
        *,
        sends: SendDigest | None = None,
    ) -> Findings:
        """Closes the run: final books against the oracle, the send log joined for gaps and latency.

        `snapshot_reach` (per symbol, in the order the venue served them) limits each final book's
        comparison to what the subject's last snapshot before its final update id could show it;
        without it the whole book is compared. `end_mono_ns`, when the runner stopped the subject,
        lets a silence that lasted to the end count as one (a silent subject reports nothing to date it).
        `sends`, `clients`' writes digested as they happened: then `clients`' send logs are read only
        to describe a divergence; without it they are read once here.
        """
        f = self.findings
        clients = list(clients)
        if sends is None:
            sends = SendDigest.of_clients(self._oracle, clients)
        end = self._end
        for state in self._symbols.values():
            self._set_synced(state, state.synced, end)
            f.unsynced_ns += state.unsynced_ns
        every_window = self._windows[-1][2] if self._windows else end
        for symbol in list(self._symbols):
            self._activate(symbol, every_window)
            self._done.extend(self._tracks.pop(symbol, []))
        self._done.sort(key=lambda tr: (tr.start, tr.symbol))
        f.recoveries = [
            WindowRecovery(
                tr.kind, tr.fault_id, tr.symbol, tr.start, None if tr.candidate is None else tr.candidate - tr.start
            )
            for tr in self._done
        ]
        finals = list(final_books)
        for book in finals:
            self._unrequested(book.symbol, None, "a final book")
        self._check_finals(finals, snapshot_reach or {})
        for symbol, state in self._symbols.items():
            if state.synced:
                self._episode_ended(symbol, state, None)
        self._join_sends(sends)
        f.start_mono_ns = self._start
        f.end_mono_ns = max(end, end_mono_ns or 0)
        self._dark_books()
        self._stale(sends, f.end_mono_ns)
        self._explain(clients)
        return f

    def _flag(self, flag: str, symbol: str, t: int | None, detail: str) -> None:
        f = self.findings
        if sum(1 for row in f.flags if row["flag"] == flag) < MAX_EXAMPLES:
            f.flags.append({"flag": flag, "symbol": symbol, "mono_ns": t, "detail": detail})

    def _before_snapshot(self, obs: BookObservation) -> None:
        if self._first_snapshot is None:
            return
        first = self._first_snapshot.get(obs.symbol)
        if first is not None and obs.applied_mono_ns >= first:
            return
        self.findings.books_before_snapshot += 1
        if ("early", obs.symbol) not in self._flagged:
            self._flagged.add(("early", obs.symbol))
            detail = f"a book at update {obs.update_id} (synced: {obs.synced}) applied before the venue served"
            self._flag("books_before_snapshot", obs.symbol, obs.applied_mono_ns, f"{detail} any snapshot of it")

    def _unrequested(self, symbol: str, t: int | None, what: str) -> None:
        if symbol in self._requested:
            return
        self.findings.unrequested_output += 1
        if ("unrequested", symbol) not in self._flagged:
            self._flagged.add(("unrequested", symbol))
            asked = ", ".join(sorted(self._requested)) or "none"
            self._flag("unrequested_output", symbol, t, f"{what} for {symbol}, which it was never asked for ({asked})")

    def _sync(self, symbol: str, state: _SymbolState, synced: bool, t: int) -> None:
        """A change of the synced claim: a new episode starts at each regain; a loss ends the open one."""
        if synced and not state.synced:
            self.findings.episodes += 1
            state.episode_verified = False
            state.episode_start = t
            self.findings.timeline.episode(symbol, t)
        if not synced:
            if state.synced:
                self._episode_ended(symbol, state, t)
            self.findings.timeline.mark(symbol, t, UNSYNCED)
        self._set_synced(state, synced, t)

    def _episode_ended(self, symbol: str, state: _SymbolState, t: int | None) -> None:
        unverified = self.findings.unverified_episodes
        if not state.episode_verified and len(unverified) < MAX_EXAMPLES:
            unverified.append({"symbol": symbol, "start_mono_ns": state.episode_start, "end_mono_ns": t})

    def _verify(self, state: _SymbolState) -> None:
        if state.synced and not state.episode_verified:
            state.episode_verified = True
            self.findings.episodes_verified += 1

    def _dark_books(self) -> None:
        """Needs `_join_sends` first: it counts each symbol's depth frames written."""
        written = self._written
        for symbol in sorted(self._requested & set(self._oracle.symbols)):
            if self._symbols[symbol].observed:
                continue
            self.findings.dark_books += 1
            sent = written[symbol]
            why = f"the venue wrote {sent} of its depth frames to the subject" if sent else NEVER_WRITTEN
            self._flag("dark_books", symbol, None, f"asked for {symbol}, never reported a book of it; {why}")

    def _stale(self, sends: SendDigest, end: int) -> None:
        frames, to_mono = self._frames, self._to_mono
        if self._stale_limit_ns is None or frames is None or to_mono is None:
            return
        self.findings.stale_limit_ns = self._stale_limit_ns
        writes = sends.write_times()
        due: dict[str, array] = {}
        for frame, offset in _with_offsets(self._oracle.depth_frame_ids(), frames):
            times = due.get(frame.symbol)
            if times is None:
                times = due[frame.symbol] = array("q")
            times.append(to_mono(offset))
        limit_s = self._stale_limit_ns / 1e9
        for symbol, times in sorted(due.items()):
            for silence in silent_while_synced(
                self.findings.timeline, symbol, _ascending(times), writes, self._stale_limit_ns, end
            ):
                self.findings.stale_synced += 1
                silent_s = (silence.until_ns - silence.due_ns) / 1e9
                claimed_s = (silence.claimed_ns - silence.due_ns) / 1e9
                self._flag(
                    "stale_synced",
                    symbol,
                    silence.claimed_ns,
                    f"nothing reached the subject for {silent_s:.1f} s while updates were due, and its book "
                    f"still claimed synced {claimed_s:.1f} s in (limit {limit_s:g} s)",
                )

    def _explain(self, clients: Sequence[ClientLike]) -> None:
        """Adds to each divergence example the frames around its update id and the faults open then."""
        examples = self.findings.examples
        if not examples:
            return
        pickers: dict[str, list[Nearby]] = {}
        picked = {id(ex): Nearby(ex["update_id"]) for ex in examples}
        for example in examples:
            pickers.setdefault(example["symbol"], []).append(picked[id(example)])
        for frame in self._oracle.depth_frame_ids():  # one pass, whatever the recording's length
            for picker in pickers.get(frame.symbol, ()):
                picker.add(frame)
        around = {key: picker.frames() for key, picker in picked.items()}
        wanted = {frame.index for frames in around.values() for frame in frames}

        def ids_of(index: int) -> tuple[str, int] | None:
            frame = self._oracle.frame(index)
            return None if frame is None else (frame.symbol, frame.last_update_id)

        writes = writes_by_frame(clients, wanted, ids_of)
        for example in examples:
            example["context"] = frames_around(
                example["update_id"], example["mono_ns"], around[id(example)], writes, self._windows, self._due_of
            )

    def _check_finals(self, finals: list[FinalBook], served: Mapping[str, Sequence[SnapshotReach]]) -> None:
        f = self.findings
        by_symbol = {book.symbol: book for book in finals}
        symbols = self._oracle.symbols or sorted(by_symbol)
        for symbol in symbols:
            oracle_last = self._oracle.last_update_id(symbol)
            book = by_symbol.get(symbol)
            if book is None:
                f.finals.append(FinalCheck(symbol, False, "the subject gave no final book", None, oracle_last))
                continue
            expected = self._oracle.full_book(symbol, book.update_id)
            depth = None
            got: Any = book
            if book.synced and expected is not None:
                f.checks += 1
                reach = _last_reach(served.get(symbol, ()), book.update_id)
                if reach is not None:
                    got, expected, depth = self._visible(symbol, book, expected, reach)
            if not book.synced:
                detail, correct = "not synced at the end", False
            elif book.update_id != oracle_last and (expected is not None or (symbol, book.update_id) in self._served):
                detail, correct = f"synced but stopped at {book.update_id}, before the stream's last update", False
            elif expected is None:
                detail, correct = "synced at an update id the clean recording never ended a frame on", False
                f.unknown_update_ids += 1
                self._diverged(symbol, book.update_id, self._end, "final book: " + detail, None, None)
            elif self._match.same_side(got.bids, expected[0]) and self._match.same_side(got.asks, expected[1]):
                detail, correct = "equals the oracle's full book", True
                if symbol in self._symbols:
                    self._verify(self._symbols[symbol])
                if depth is not None:
                    detail = f"equals the oracle's book within its {depth.snapshot_levels}-level snapshot's reach"
            else:
                detail, correct = "full book differs from the oracle", False
                if depth is not None:
                    detail = f"book within its {depth.snapshot_levels}-level snapshot's reach differs from the oracle"
                reason = "final book differs from the oracle"
                if depth is not None:
                    reason += f" within its {depth.snapshot_levels}-level snapshot's reach"
                self._diverged(symbol, book.update_id, self._end, reason, got, expected)
            f.finals.append(FinalCheck(symbol, correct, detail, book.update_id, oracle_last, depth))
        f.final_book_correct = bool(f.finals) and all(check.correct for check in f.finals)

    def _visible(
        self, symbol: str, book: FinalBook, expected: tuple[Side, Side], reach: SnapshotReach
    ) -> tuple[FinalBook, tuple[Side, Side], VisibleDepth]:
        """Both books cut to what a book loaded from `reach`'s snapshot can know at the final id."""
        touched_bids, touched_asks = self._oracle.touched_prices(symbol, reach.last_update_id, book.update_id)
        mine_bids, mine_asks, _, _ = within_reach(book.bids, book.asks, reach, touched_bids, touched_asks)
        bids, asks, bids_beyond, asks_beyond = within_reach(expected[0], expected[1], reach, touched_bids, touched_asks)
        depth = VisibleDepth(reach.limit, len(bids), len(asks), bids_beyond, asks_beyond)
        cut = FinalBook(book.symbol, book.update_id, book.synced, mine_bids, mine_asks)
        return cut, (tuple(bids), tuple(asks)), depth

    def _join_sends(self, sends: SendDigest) -> None:
        """The writes' counts, and each observed state's first intact write for the latency join."""
        f = self.findings
        f.frames_sent = sends.frames_sent
        f.depth_frames_sent = sends.depth_frames_sent
        f.gaps_injected = sends.gaps_injected
        f.out_of_order_sent = sends.out_of_order_sent
        self._written = sends.written
        first = self._first_obs
        frames = self._oracle.depth_frame_ids()
        for frame, write, intended in zip(frames, sends.first_write, sends.first_intended, strict=True):
            if write == NEVER:
                continue
            seen = first.find(frame.symbol, frame.last_update_id)
            if seen is not None:
                columns, row = seen
                if write < columns[2][row]:
                    columns[2][row] = write
                    columns[3][row] = intended
        e2e = f.latency.setdefault("e2e", Histogram())
        intended_hist = f.latency.setdefault("e2e_intended", Histogram())
        for recv, applied, actual, planned in first.rows():
            if actual == _UNWRITTEN:
                f.unjoined += 1
                continue
            self._stage("wire", recv - actual)
            self._record(e2e, applied - actual)
            self._record(intended_hist, applied - planned)

    def _stage(self, stage: str, ns: int) -> None:
        self._record(self.findings.latency[stage], ns)

    def _record(self, hist: Histogram, ns: int) -> None:
        if ns < 0:
            self.findings.negative_latencies += 1
        hist.record(ns)

    def _tick(self, t: int) -> None:
        if self._start is None:
            self._start = t
            for state in self._symbols.values():
                state.since = t
        if t > self._end:
            self._end = t

    def _symbol(self, symbol: str) -> _SymbolState:
        state = self._symbols.get(symbol)
        if state is None:
            state = self._symbols[symbol] = _SymbolState(since=self._start or 0)
            self._pending[symbol] = 0
            self._tracks[symbol] = []
        return state

    def _lose(self, state: _SymbolState) -> None:
        if state.ever_correct and not state.lost:
            state.lost = True
            self.findings.losses_detected += 1

    @staticmethod
    def _set_synced(state: _SymbolState, synced: bool, t: int) -> None:
        if not state.synced:
            state.unsynced_ns += max(0, t - state.since)
        state.since = max(state.since, t)
        state.synced = synced

    def _activate(self, symbol: str, t: int) -> None:
        """Opens, for `symbol`, every fault window that has started by `t`."""
        i = self._pending[symbol]
        while i < len(self._windows) and self._windows[i][2] <= t:
            fault_id, kind, start, heal = self._windows[i]
            self._tracks[symbol].append(_Track(kind, fault_id, symbol, start, heal))
            i += 1
        self._pending[symbol] = i

    def _disrupt(self, symbol: str, t: int) -> None:
        for track in self._tracks.get(symbol, ()):
            if t >= track.start:
                track.candidate = None

    def _close_tracks(self, symbol: str) -> None:
        tracks = self._tracks[symbol]
        if any(track.closed for track in tracks):
            self._done.extend(track for track in tracks if track.closed)
            self._tracks[symbol] = [track for track in tracks if not track.closed]

    def _diverged(
        self,
        symbol: str,
        update_id: int,
        t: int,
        reason: str,
        got: Any,
        expected: tuple[Side, Side] | None,
        hole: Hole | None = None,
    ) -> None:
        f = self.findings
        f.divergent += 1
        if symbol in self._symbols and self._symbols[symbol].synced:
            f.timeline.mark(symbol, t, DIVERGED)
        if len(f.examples) >= MAX_EXAMPLES:
            return
        example: dict[str, Any] = {"symbol": symbol, "update_id": update_id, "mono_ns": t, "reason": reason}
        if hole is not None:
            example["hole"] = {"first_update_id": hole.first, "last_update_id": hole.last, "why": hole.why}
        if got is not None and expected is not None:
            example["bids"] = _diff(self._match, got.bids, expected[0])
            example["asks"] = _diff(self._match, got.asks, expected[1])
            example["first_difference"] = first_difference(self._match, (got.bids, got.asks), expected)
        f.examples.append(example)


def check(
    oracle: Oracle,
    messages: Iterable[SubjectMessage],
    clients: Iterable[ClientLike],
    windows: Iterable[WindowLike] = (),
    to_mono: Callable[[int], int] | None = None,
    *,
    start_mono_ns: int | None = None,
    snapshots: Iterable[ServedLike] | None = None,
    snapshot_reach: Mapping[str, Sequence[SnapshotReach]] | None = None,
    requested: Iterable[str] | None = None,
    frames: Sequence[Frame] | None = None,
    stale_limit_ns: int | None = None,
    end_mono_ns: int | None = None,
    sends: SendDigest | None = None,
) -> Findings:
    """The whole check in one call, for a run whose messages (FinalBooks included) are all in hand.

    `snapshots`, the REST depth answers the venue served (replayer/server.py `snapshots_served`),
    turns on the hole search over `clients`' send log, and is the truth at ids inside an event; `snapshot_reach`
    (server `depths_served`) bounds the final-book comparison, as in `Checker.finish`; `requested`,
    `frames`, `stale_limit_ns` and `end_mono_ns` are the Checker's and `finish`'s. `sends`, the
    writes digested as they happened (harness/send_digest.py); without it `clients`' send logs are
    read once to make it. Either way they are read again only to describe a divergence.
    """
    clients = list(clients)
    if sends is None:
        sends = SendDigest.of_clients(oracle, clients)
    snapshots = None if snapshots is None else list(snapshots)
    deliveries = None if snapshots is None else sends.deliveries(snapshots)
    checker = Checker(
        oracle,
        windows,
        to_mono,
        start_mono_ns=start_mono_ns,
        deliveries=deliveries,
        served=snapshots or (),
        requested=requested,
        frames=frames,
        stale_limit_ns=stale_limit_ns,
    )
    finals: list[FinalBook] = []
    for message in messages:
        if isinstance(message, FinalBook):
            finals.append(message)
        elif not finals:  # what a subject says while shutting down, after its final books, is not judged
            checker.feed(message)
    return checker.finish(finals, clients, snapshot_reach, end_mono_ns, sends=sends)


def _with_offsets(depth: Iterable[DepthFrame], frames: Sequence[Frame]) -> Iterator[tuple[DepthFrame, int]]:
    """Each depth frame (in index order) with its offset_ns: from one pass over the frames' offsets
    where the frames can give them without being made (replayer/frame_store.py), else by index."""
    offsets = getattr(frames, "offsets", None)
    if offsets is None:
        for frame in depth:
            yield frame, frames[frame.index].offset_ns
        return
    at, offset = -1, 0
    every = offsets()
    for frame in depth:
        while at < frame.index:
            offset = next(every)
            at += 1
        yield frame, offset


def _last_reach(served: Sequence[SnapshotReach], update_id: int) -> SnapshotReach | None:
    """The snapshot the final book most likely grew from: the last served at or before its update id."""
    for reach in reversed(served):
        if reach.last_update_id <= update_id:
            return reach
    return None


def _diff(match: LevelMatch, got: Sequence[Sequence[Any]], expected: Side) -> list[dict[str, Any]]:
    """The first levels (best first) where the subject and the oracle differ, the subject's as sent."""
    rows: list[dict[str, Any]] = []
    for i in range(max(len(got), len(expected))):
        mine = [as_sent(v) for v in got[i][:2]] if i < len(got) else None
        theirs = list(expected[i]) if i < len(expected) else None
        same = mine is not None and theirs is not None and len(mine) == 2
        if not (
            same and theirs is not None and match.equal(got[i][0], theirs[0]) and match.equal(got[i][1], theirs[1])
        ):
            rows.append({"level": i, "subject": mine, "oracle": theirs})
            if len(rows) >= MAX_DIFF_LEVELS:
                break
    return rows
