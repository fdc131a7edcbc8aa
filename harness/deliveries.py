"""What reached the subject, and the holes in a chain of updates it claims to have built from it.

A subject that says it is synced at update `u` claims a chain: a REST snapshot at some `lastUpdateId`
L, then every update from L + 1 to `u`. Each link must have reached it intact before it was needed:
a frame the venue wrote to one of its connections, not mangled by a `corrupt*` fault, written
before the observation was applied. An update that no connection received that way (dropped by a
fault or a gap, corrupted, never sent because the connection closed first) is a hole, unless a
snapshot served since covers it. The top-20 comparison sees a bridged hole only when the damage
reaches the top 20; this sees it whatever the book shows.

Deliberately lenient, so a correct subject is never accused: the subject's connections count
together (a frame received on any of them, or on an earlier one, could have been used: the fault
plans send every connection the same frames, and a reconnect with nothing missed in between is no
hole); the chain may start from any snapshot served before the observation (a REST answer, or a
snapshot frame that reached the subject intact where snapshots travel on the stream), and the checker takes
the best one (the highest `lastUpdateId` at or below `u`, which needs the fewest links; snapshots
may fall inside an event, `U <= lastUpdateId < u`, so a frame counts for the ids it carries past
L; where the venue links each frame to the last (`prev_last`, USD-M's `pu`), a frame covers every id
after its link, since the ids between belong to the venue's other books). Once a chain has crossed
a hole, every later state built on it crossed it too, until the subject resyncs (a new sync point)
or a snapshot past the hole is served. Pure: no clock, no socket.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

NEVER = 2**63 - 1
"""The write time of a frame no connection received intact (the largest an array('q') holds)."""


class DepthFrameLike(Protocol):
    """A clean depth frame's ids (harness/oracle.py DepthFrame); read-only, so frozen dataclasses match."""

    @property
    def index(self) -> int: ...
    @property
    def symbol(self) -> str: ...
    @property
    def first_update_id(self) -> int: ...
    @property
    def last_update_id(self) -> int: ...


class SnapshotLike(Protocol):
    """One REST depth answer served (replayer/server.py SnapshotRecord)."""

    @property
    def symbol(self) -> str: ...
    @property
    def last_update_id(self) -> int: ...
    @property
    def served_mono_ns(self) -> int: ...


class _Send(Protocol):
    @property
    def frame_index(self) -> int: ...
    @property
    def write_mono_ns(self) -> int: ...


class _Client(Protocol):
    @property
    def sends(self) -> Iterable[_Send]: ...


@dataclass(frozen=True, slots=True)
class Hole:
    """Updates `first`..`last` of a chain that never reached the subject intact before they were needed."""

    first: int
    last: int
    why: str


@dataclass(slots=True)
class _Symbol:
    """One symbol's clean frames in update-id order with the first time each reached the subject intact."""

    starts: array = field(default_factory=lambda: array("q"))
    ends: array = field(default_factory=lambda: array("q"))
    written: array = field(default_factory=lambda: array("q"))
    served: list[tuple[int, int]] = field(default_factory=list)
    """(served_mono_ns, lastUpdateId) of every snapshot, in serving order."""


class Deliveries:
    """The send log (or the first intact writes `harness.send_digest.SendDigest` took as they happened:
    `of_first_writes`) and the snapshots served, indexed per symbol for `ChainJudge`.

    Kept in arrays (about 50 bytes a depth frame while built, 24 after) rather than a dict entry and
    a tuple per frame, so a long recording's index costs what its frames do in a Parquet column."""

    def __init__(
        self, frames: Iterable[DepthFrameLike], clients: Iterable[_Client], snapshots: Iterable[SnapshotLike]
    ) -> None:
        frames = _in_index_order(frames)
        indices = array("q", (frame.index for frame in frames))
        first_write = array("q", [NEVER]) * len(indices)
        for client in clients:
            for send in client.sends:
                fault = getattr(send, "fault", None)
                if fault is not None and fault.startswith("corrupt"):
                    continue
                at = bisect_left(indices, send.frame_index)
                if at < len(indices) and indices[at] == send.frame_index and send.write_mono_ns < first_write[at]:
                    first_write[at] = send.write_mono_ns
        del indices
        self._symbols: dict[str, _Symbol] = {}
        self._index(frames, first_write, snapshots)

    @classmethod
    def of_first_writes(
        cls, frames: Iterable[DepthFrameLike], first_write: Sequence[int], snapshots: Iterable[SnapshotLike]
    ) -> Deliveries:
        """The index from each frame's first intact write, taken as the writes happened
        (harness/send_digest.py): `frames` in index order, once each, `first_write` in the same order."""
        deliveries = cls.__new__(cls)
        deliveries._symbols = {}
        deliveries._index(frames, first_write, snapshots)
        return deliveries

    def _index(
        self, frames: Iterable[DepthFrameLike], first_write: Sequence[int], snapshots: Iterable[SnapshotLike]
    ) -> None:
        rows: dict[str, tuple[array, array, array]] = {}
        """Per symbol: each frame's first id (or its link's next), last id, and first intact write."""
        served = [(snap.served_mono_ns, snap.symbol, snap.last_update_id) for snap in snapshots]
        for frame, when in zip(frames, first_write, strict=True):
            link = getattr(frame, "prev_last", None)
            first = frame.first_update_id if link is None else min(frame.first_update_id, link + 1)
            columns = rows.get(frame.symbol)
            if columns is None:
                columns = rows[frame.symbol] = (array("q"), array("q"), array("q"))
            columns[0].append(first)
            columns[1].append(frame.last_update_id)
            columns[2].append(when)
            # A snapshot that travels on the stream (Bybit, OKX) is served when it reaches the subject intact.
            if getattr(frame, "snapshot", False) and when < NEVER:
                served.append((when, frame.symbol, frame.last_update_id))
        for symbol, (starts, ends, written) in rows.items():
            entry = self._symbols[symbol] = _Symbol()
            if _strictly_ascending(ends, starts):
                entry.starts, entry.ends, entry.written = starts, ends, written
                continue
            span: dict[tuple[int, int], int] = {}
            for start, end, when in zip(starts, ends, written, strict=True):
                span[(start, end)] = min(span.get((start, end), NEVER), when)  # recorded twice: either copy
            for (start, end), when in sorted(span.items(), key=lambda item: (item[0][1], item[0][0])):
                entry.starts.append(start)
                entry.ends.append(end)
                entry.written.append(when)
        for served_ns, symbol, last_update_id in sorted(served):
            self._symbols.setdefault(symbol, _Symbol()).served.append((served_ns, last_update_id))

    def symbol(self, symbol: str) -> _Symbol | None:
        return self._symbols.get(symbol)


def _in_index_order(frames: Iterable[DepthFrameLike]) -> Sequence[DepthFrameLike]:
    """The frames by index, once each (the last of a repeated index), without a copy when they come so."""
    frames = frames if isinstance(frames, Sequence) else list(frames)
    if all(frames[i].index < frames[i + 1].index for i in range(len(frames) - 1)):
        return frames
    return sorted({frame.index: frame for frame in frames}.values(), key=lambda frame: frame.index)


def _strictly_ascending(ends: array, starts: array) -> bool:
    return all((ends[i], starts[i]) < (ends[i + 1], starts[i + 1]) for i in range(len(ends) - 1))


@dataclass(slots=True)
class _Chain:
    served_seen: int = 0
    snapshot_ids: list[int] = field(default_factory=list)
    verified: dict[int, int] = field(default_factory=dict)
    """Per chain start L: the highest update id up to which L's chain was found whole (only ever grows)."""
    hole: Hole | None = None


class ChainJudge:
    """Follows each symbol's claimed chain: `restart` at every sync point, `judge` every synced state.

    Observations come in the order the subject made them; amortized, each frame is walked once per
    chain start, so a long run costs what its frames cost.
    """

    def __init__(self, deliveries: Deliveries) -> None:
        self._deliveries = deliveries
        self._chains: dict[str, _Chain] = {}

    def restart(self, symbol: str) -> None:
        """The subject (re)synced: a hole its previous chain crossed no longer taints what it builds now."""
        chain = self._chains.get(symbol)
        if chain is not None:
            chain.hole = None

    def judge(self, symbol: str, update_id: int, applied_mono_ns: int) -> Hole | None:
        """The hole the chain to `update_id` crosses, None when it could have been built whole."""
        known = self._deliveries.symbol(symbol)
        if known is None:
            return None
        chain = self._chains.get(symbol)
        if chain is None:
            chain = self._chains[symbol] = _Chain()
        served = known.served
        while chain.served_seen < len(served) and served[chain.served_seen][0] < applied_mono_ns:
            insort(chain.snapshot_ids, served[chain.served_seen][1])
            chain.served_seen += 1
        at = bisect_right(chain.snapshot_ids, update_id) - 1
        if at < 0:
            chain.hole = chain.hole or Hole(update_id, update_id, "no snapshot at or below it was served")
            return chain.hole
        start = chain.snapshot_ids[at]
        if chain.hole is not None:
            if start < chain.hole.last:
                return chain.hole
            chain.hole = None
        whole_to = chain.verified.get(start, start)
        if update_id <= whole_to:
            return None
        hole, whole_to = _walk(known, whole_to, update_id, applied_mono_ns)
        chain.verified[start] = whole_to
        chain.hole = hole
        return hole


def _walk(known: _Symbol, whole_to: int, update_id: int, before_ns: int) -> tuple[Hole | None, int]:
    """Extends a whole chain from `whole_to` towards `update_id`: (the first hole, how far it is whole)."""
    starts, ends, written = known.starts, known.ends, known.written
    k = bisect_right(ends, whole_to)
    need = whole_to + 1
    while need <= update_id:
        while k < len(ends) and ends[k] < need:
            k += 1
        if k == len(ends) or starts[k] > need:
            last = update_id if k == len(ends) else min(update_id, starts[k] - 1)
            return Hole(need, last, "in no recorded frame"), need - 1
        if written[k] >= before_ns:
            why = "never reached the subject intact" if written[k] == NEVER else "reached the subject only later"
            return Hole(max(starts[k], need), ends[k], why), need - 1
        need = ends[k] + 1
        k += 1
    return None, need - 1
