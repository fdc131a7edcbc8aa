"""The fault plan: clean frames + faults + seed -> the schedule the fake server walks.

Pure and deterministic: no clock, no I/O, and every fault draws from its own stream
`random.Random(f"{seed}/{fault_id}")` (string seeds hash with SHA-512, so the stream is the same on
every machine and every PYTHONHASHSEED). Each fault decides up front from the frames (counts,
offsets, ids) and keeps only what it touches; the schedule itself is made while it is walked
(replayer/timeline.py, Schedule), after one build walk that counts units and windows (none when no
fault changes the sends), so a plan's memory grows with its faults, not with the recording. The
caller hands `entries` to the server, `injected` (faults armed) to the report with `served(tags)`
for the tags the server recorded, and `windows` to the checker (time from fault to a correct book);
`sequence_breaks` (the gaps a client connected throughout must detect) is counted when asked for.

Plans are venue-neutral: a frame's place in its update chain is the dialect's (`Frame.chain`,
harness/venues/dialect.py), so a gap or a sequence break means the same for every venue. A fault
that cannot happen on a venue (a REST snapshot fault where snapshots come over the WebSocket) is not
armed; `FaultPlan.not_applicable` says which and why, and the report lists them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import TypedDict

from harness.errors import HarnessError
from harness.venues.dialect import VenueDialect
from replayer.faults import connection, rest, stream
from replayer.faults.spec import FaultSpec
from replayer.faults.work import ArmedUnit, ArmedUnits, FaultContext, FaultStage, FaultWindow, Present
from replayer.timeline import FaultTag, Frame, Schedule, Send, TimelineEntry, walk_sends

HEAL_BY_FRACTION = 0.85
"""Every fault heals before this fraction of the recording, so the end of the replay proves the book."""

APPLY: dict[str, Callable[[FaultContext, Sequence[Frame], Present], FaultStage]] = {
    "drop": stream.drop,
    "gap": stream.gap,
    "duplicate": stream.duplicate,
    "reorder": stream.reorder,
    "delay": stream.delay,
    "burst": stream.burst,
    "corrupt": stream.corrupt,
    "stall": connection.stall,
    "disconnect": connection.disconnect,
    "handshake_refused": connection.handshake_refused,
    "slow_consumer": connection.slow_consumer,
    "exchange_restart": connection.exchange_restart,
    "snapshot": rest.snapshot,
}


class FaultUnits(TypedDict):
    """One fault's row in the report's `faults_by_id`."""

    kind: str
    armed: int
    served: int


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The schedule and what went into it.

    entries: sorted by offset; at one offset, control entries (in the order the faults made them)
    come before sends; a Schedule, made again on each walk (never held as a list). injected: units
    armed per fault kind of the scenario (0 included; units in docs/scenarios.md); units: each of
    them, in order, for `served`; fault_ids: each fault's id and kind, in scenario order. windows:
    one per episode, sorted by start. sequence_breaks: depth-stream discontinuities in the sends as
    scheduled (gaps, corrupt or reordered frames), not counting what disconnects and stalls cost a
    client, which depends on timing. A Send's `fault` names the first fault that touched it, except
    that `corrupt` always wins; a duplicate of a corrupted send is labelled `duplicate`, so "mangled"
    is `payload != frame.payload`.
    """

    entries: Schedule
    injected: dict[str, int]
    units: Sequence[ArmedUnit]
    fault_ids: dict[str, str]
    windows: list[FaultWindow]
    duration_ns: int
    heal_by_ns: int
    not_applicable: dict[str, str] = field(default_factory=dict)
    """Faults left out because the venue cannot have them: fault id -> why (in scenario order)."""
    _breaks: int | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def sequence_breaks(self) -> int:
        """Counted by a walk of the schedule the first time it is asked for (tests and digests ask; a
        replay does not, so it does not pay a walk of the recording for it)."""
        breaks = self._breaks
        if breaks is None:
            breaks = sequence_breaks(self.entries)
            object.__setattr__(self, "_breaks", breaks)
        return breaks

    @property
    def sends(self) -> list[Send]:
        """Every send, in a list (a walk of the schedule: for tests and small recordings)."""
        return [e for e in self.entries if isinstance(e, Send)]

    def served(self, tags: Iterable[FaultTag]) -> dict[str, int]:
        """Units served per kind (every kind of the scenario, 0 included), given the tags the server recorded."""
        counts = dict.fromkeys(self.injected, 0)
        for unit in self._served_units(tags):
            counts[unit.kind] += 1
        return counts

    def by_fault(self, tags: Iterable[FaultTag]) -> dict[str, FaultUnits]:
        """Per fault id, in scenario order: its kind, units armed and units served."""
        rows: dict[str, FaultUnits] = {
            fault_id: {"kind": kind, "armed": 0, "served": 0} for fault_id, kind in self.fault_ids.items()
        }
        for unit in self.units:
            rows[unit.fault_id]["armed"] += 1
        for unit in self._served_units(tags):
            rows[unit.fault_id]["served"] += 1
        return rows

    def _served_units(self, tags: Iterable[FaultTag]) -> list[ArmedUnit]:
        seen: dict[tuple[str, int], set[str]] = {}
        for tag in tags:
            seen.setdefault((tag.fault_id, tag.unit), set()).add(tag.part)
        return [u for u in self.units if u.parts <= seen.get((u.fault_id, u.unit), set())]


def fault_ids(faults: Sequence[FaultSpec]) -> list[str]:
    """Each fault's stream name: its own `fault_id`, else `kind.N` for the Nth fault of its kind."""
    seen: Counter[str] = Counter()
    ids = []
    for spec in faults:
        ids.append(spec.fault_id or f"{spec.kind}.{seen[spec.kind]}")
        seen[spec.kind] += 1
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise HarnessError(f"fault id {duplicates[0]!r} is used twice; give each fault its own id")
    return ids


def fit_to_venue(spec: FaultSpec, fault_id: str, venue: VenueDialect | None) -> tuple[FaultSpec | None, dict[str, str]]:
    """The part of `spec` that `venue` can have (None when nothing) and what was left out: id -> why.

    A restart's REST outage is a part of its own (`<fault id>.rest_outage`): on a venue without a REST
    snapshot the restart still happens, and only the outage is listed as not applicable.
    """
    checksum_fault = spec.kind == "corrupt" and spec.params.get("mode") == "checksum"
    if venue is not None and checksum_fault and venue.checksum((), ()) is None:
        return None, {fault_id: f"{venue.name} frames carry no book checksum to corrupt"}
    if venue is None or venue.snapshot_transport == "rest":
        return spec, {}
    if spec.kind == "snapshot":
        reason = f"{venue.name} sends its snapshots over the WebSocket; there is no REST snapshot to fault"
        return None, {fault_id: reason}
    if spec.kind == "exchange_restart" and spec.params.get("rest_outage", 0) > 0:
        reason = f"{venue.name} has no REST snapshot for the restart's REST outage to refuse"
        return replace(spec, params={**spec.params, "rest_outage": 0.0}), {f"{fault_id}.rest_outage": reason}
    return spec, {}


def build_schedule(
    frames: Sequence[Frame], faults: Sequence[FaultSpec], seed: int, venue: VenueDialect | None = None
) -> FaultPlan:
    """Applies `faults` in order to the clean schedule of `frames` (offsets from replay start, at speed 1).

    Faults decide over the frames in index order; the schedule sends them in time order. A recording's
    frames are both (offsets never go back); a list built by hand whose offsets do is sorted, and any
    other sequence that is not in time order fails the build walk's order check (a bug, not bad input).
    Only faults that change the sends need that walk (it is how they count what they armed): a plan
    without one (`clean`, or faults that only add control entries) costs nothing per frame.

    With `venue`, faults (or parts of faults) that cannot happen there are left out and listed in
    `not_applicable`.
    Raises HarnessError when a fault does not fit the recording (its window ends after the heal line,
    or it needs more frames than its window holds).
    """
    duration_ns = frames[-1].offset_ns if frames else 0
    heal_by_ns = int(duration_ns * HEAL_BY_FRACTION)
    ids = fault_ids(faults)
    skipped: dict[str, str] = {}
    stages: list[tuple[FaultStage, str]] = []
    removers: list[FaultStage] = []
    for spec, fault_id in zip(faults, ids, strict=True):
        fitted, left_out = fit_to_venue(spec, fault_id, venue)
        skipped |= left_out
        if fitted is None:
            continue
        spec = fitted
        ctx = FaultContext(
            kind=spec.kind,
            fault_id=fault_id,
            start_ns=spec.start.to_ns(duration_ns),
            stop_ns=spec.stop.to_ns(duration_ns),
            params=spec.params,
            stream_seed=f"{seed}/{fault_id}",
        )
        where = f"fault {fault_id} ({spec.kind})"
        if ctx.stop_ns < ctx.start_ns:
            raise HarnessError(f"{where}: stop {spec.stop} comes before start {spec.start} on this recording")
        stage = APPLY[spec.kind](ctx, frames, _present(tuple(removers)))
        _check_heal(where, max([ctx.stop_ns, *(w.heal_ns for w in stage.windows)]), heal_by_ns, duration_ns)
        if type(stage).removes is not FaultStage.removes:
            removers.append(stage)
        stages.append((stage, where))
    active = [stage for stage, _ in stages if type(stage).apply is not FaultStage.apply]
    timed = frames
    if isinstance(frames, list) and any(a.offset_ns > b.offset_ns for a, b in pairwise(frames)):
        timed = sorted(frames, key=_offset)
    sends = _build_walk(walk_sends(timed, active, build=True)) if active else len(timed)
    controls: list[TimelineEntry] = []
    windows: list[FaultWindow] = []
    for stage, where in stages:
        stage.finish()
        _check_heal(where, max([stage.ctx.stop_ns, *(w.heal_ns for w in stage.windows)]), heal_by_ns, duration_ns)
        controls.extend(stage.controls)
        controls.extend(stage.withheld())
        windows.extend(stage.windows)
    controls.sort(key=lambda entry: entry.offset_ns)
    units = ArmedUnits((s.ctx.kind, s.ctx.fault_id, s.armed, frozenset(s.parts)) for s, _ in stages)
    injected = {spec.kind: 0 for spec in faults}
    for kind, count in units.counts():
        injected[kind] += count
    return FaultPlan(
        entries=Schedule(timed, active, controls, sends + len(controls)),
        injected=injected,
        units=units,
        fault_ids={fault_id: spec.kind for spec, fault_id in zip(faults, ids, strict=True)},
        windows=sorted(windows, key=lambda w: (w.start_ns, w.fault_id)),
        duration_ns=duration_ns,
        heal_by_ns=heal_by_ns,
        not_applicable=skipped,
    )


def _offset(frame: Frame) -> int:
    return frame.offset_ns


def _present(removers: tuple[FaultStage, ...]) -> Present:
    """Whether a frame still has its sends after the faults in `removers`."""
    if not removers:
        return lambda frame: True
    return lambda frame: not any(stage.removes(frame) for stage in removers)


def _check_heal(where: str, heal_ns: int, heal_by_ns: int, duration_ns: int) -> None:
    if heal_ns > heal_by_ns:
        raise HarnessError(
            f"{where}: heals at {heal_ns / 1e9:.2f}s, after {heal_by_ns / 1e9:.2f}s "
            f"({HEAL_BY_FRACTION:.0%} of the {duration_ns / 1e9:.2f}s recording); end it earlier so the "
            "book can be proven correct at the end"
        )


def _build_walk(sends: Iterator[Send]) -> int:
    """Walks the schedule's sends once, so that the stages count what they arm; checks they stay in
    schedule order (every stage keeps it) and returns how many there are."""
    last = 0
    count = 0
    for send in sends:
        if send.offset_ns < last:
            raise AssertionError(f"a stage sent frame {send.frame.index} back in time ({send.offset_ns} < {last})")
        last = send.offset_ns
        count += 1
    return count


def sequence_breaks(entries: Iterable[TimelineEntry]) -> int:
    """How often a client reading every send in order, per book stream, sees an update that does not
    follow the last one it applied (the venue's chain: `ChainIds.follows`). A send whose payload is
    not the recorded one (corrupt) is not applied; an update at or below the last applied one (a
    duplicate, a late reordered frame) is skipped. One pass, any iterable: the schedule can stream."""
    last: dict[str, int] = {}
    breaks = 0
    for entry in entries:
        if not isinstance(entry, Send) or entry.payload is not entry.frame.payload:
            continue
        ids = entry.frame.chain
        if ids is None:
            continue
        stream = entry.frame.stream
        previous = last.get(stream)
        if previous is not None and not ids.snapshot and ids.last_id <= previous:
            continue
        if previous is not None and not ids.follows(previous):
            breaks += 1
        last[stream] = ids.last_id
    return breaks
