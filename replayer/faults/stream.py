"""Faults on the frame stream itself: what is sent, how many times, in which order, and when.

Each function decides from the clean frames in its window with its own random stream, drawing the
same number of values per frame whatever the outcome, and returns the fault's stage, which applies
the decision to the schedule as it streams by and counts what it armed. A stage keeps what the fault
touches (frame indices in arrays, a few slots in flight), never a list of the window's frames; delay,
which moves every frame of its window, draws again as it walks. Units counted are in docs/scenarios.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import orjson

from harness.errors import HarnessError
from replayer.faults.work import FaultContext, FaultStage, IndexSet, Present, Span, spread
from replayer.timeline import Frame, Send, Slot, TimelineEntry, Withheld

CORRUPT_MODES = ("invalid_json", "truncated", "wrong_types", "invalid_utf8")
CORRUPT_MODES_ALL = (*CORRUPT_MODES, "checksum")
"""Every mode a stage can be handed: `mixed` draws from CORRUPT_MODES."""


def fault_error(ctx: FaultContext, message: str) -> HarnessError:
    return HarnessError(f"fault {ctx.fault_id} ({ctx.kind}): {message}")


@dataclass(eq=False)
class Removal(FaultStage):
    """Takes every send (copies too) of the frames in `chosen` off the schedule; with `withhold`, each
    removed send leaves a Withheld marker, one unit each (`per_send`) or one per run (`runs`)."""

    chosen: IndexSet = field(default_factory=IndexSet)
    withhold: bool = True
    per_send: bool = True
    run_of: dict[int, int] = field(default_factory=dict)
    runs: list[tuple[int, int]] = field(default_factory=list)
    _span: Span = field(default_factory=Span)
    _removed: list[list[tuple[int, str]]] = field(default_factory=list)
    _withheld: list[TimelineEntry] = field(default_factory=list)

    def removes(self, frame: Frame) -> bool:
        return frame.index in self.chosen

    def apply(self, slots: Iterator[Slot], build: bool) -> Iterator[Slot]:
        if build:
            self._removed = [[] for _ in self.runs]
        if not self.chosen:
            yield from slots
            return
        kind = self.ctx.kind
        bits, first = self.chosen.bits()
        size = len(bits) * 8
        for slot in slots:
            frame = slot.send.frame
            at = frame.index - first
            if not (0 <= at < size and bits[at >> 3] >> (at & 7) & 1):
                yield slot
            elif not build or not self.withhold:
                continue
            elif self.per_send:
                tag = self.arm()
                self._withheld.append(Withheld(slot.offset_ns, frame.stream, fault=kind, tags=(tag,)))
                self._span.add(slot.offset_ns, slot.offset_ns)
            else:
                self._removed[self.run_of[frame.index]].append((slot.offset_ns, frame.stream))

    def finish(self) -> None:
        if not self.withhold:
            return
        if self.per_send:
            self.windows = self._span.windows(self.ctx)
            return
        for (first_ns, last_ns), removed in zip(self.runs, self._removed, strict=True):
            if removed:
                tag = self.arm()
                self._withheld.extend(Withheld(at, stream, fault=self.ctx.kind, tags=(tag,)) for at, stream in removed)
                self.record(1, first_ns, last_ns, last_ns)
        self._removed = []

    def withheld(self) -> list[TimelineEntry]:
        return self._withheld


def drop(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """Loses frames: independently with `probability`, every `every`-th, or in Gilbert-Elliott bursts."""
    params, rng = ctx.params, ctx.stream()
    mode = params["mode"]
    chosen: list[int] = []
    bad = False
    position = 0
    for frame in frames:
        if not ctx.eligible(frame):
            continue
        position += 1
        if mode == "random":
            hit = rng.random() < params["probability"]
        elif mode == "nth":
            hit = position % params["every"] == 0
        else:
            hit = rng.random() < (params["loss_bad"] if bad else params["loss_good"])
            bad = rng.random() >= params["p_leave_bad"] if bad else rng.random() < params["p_enter_bad"]
        if hit and present(frame):
            chosen.append(frame.index)
    return Removal(ctx, chosen=IndexSet(chosen))


def gap(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """Loses `count` runs of `length` consecutive depth updates of one stream, spread over the window."""
    count, length = ctx.params["count"], ctx.params["length"]
    total = sum(1 for f in frames if ctx.eligible(f, frames="depth"))
    if count * length > total:
        raise fault_error(ctx, f"{count} runs of {length} need {count * length} depth frames; the window has {total}")
    rng = ctx.stream()
    slot = total / count
    starts: dict[int, list[int]] = {}
    for i in range(count):
        starts.setdefault(int(i * slot + rng.random() * max(0.0, slot - length)), []).append(i)
    runs: list[list[Frame]] = [[] for _ in range(count)]
    open_runs: dict[str, list[int]] = {}
    position = 0
    for frame in frames:
        if not ctx.eligible(frame, frames="depth"):
            continue
        growing = open_runs.get(frame.stream, [])
        for run in growing:
            runs[run].append(frame)
        growing[:] = [run for run in growing if len(runs[run]) < length]
        for run in starts.get(position, ()):
            runs[run].append(frame)
            if length > 1:
                open_runs.setdefault(frame.stream, []).append(run)
        position += 1
    run_of: dict[int, int] = {}
    for number, members in enumerate(runs):
        for frame in members:
            if present(frame):
                run_of.setdefault(frame.index, number)
    return Removal(
        ctx,
        chosen=IndexSet(run_of),
        per_send=False,
        run_of=run_of,
        runs=[(run[0].offset_ns, run[-1].offset_ns) for run in runs],
    )


class _Hole:
    """A place in a stage's output whose send is not known yet (the copy of a frame still to come)."""

    __slots__ = ("slot",)

    def __init__(self) -> None:
        self.slot: Slot | None = None


def _drain(out: deque[Slot | _Hole]) -> Iterator[Slot]:
    """Hands on the output up to the first place still waiting for its send."""
    while out:
        item = out[0]
        if isinstance(item, _Hole):
            if item.slot is None:
                return
            out.popleft()
            yield item.slot
        else:
            out.popleft()
            yield item


@dataclass(eq=False)
class Duplication(FaultStage):
    """Unit j sends frame `originals[j]` (the j-th, in clean order) again, right after the send of frame
    `afters[j]`; a send still to come when its place goes by leaves a hole that holds the output back."""

    originals: IndexSet = field(default_factory=IndexSet)
    afters: list[int] = field(default_factory=list)
    _after_keys: IndexSet = field(default_factory=IndexSet)
    _after_units: list[int] = field(default_factory=list)
    _span: Span = field(default_factory=Span)

    def __post_init__(self) -> None:
        by_after = sorted(range(len(self.afters)), key=lambda j: (self.afters[j], j))
        self._after_keys = IndexSet(self.afters[j] for j in by_after)
        self._after_units = by_after
        self.armed = len(self.afters)

    def _units_after(self, index: int) -> Iterator[int]:
        at = self._after_keys.position(index)
        if at < 0:
            return
        while at < len(self._after_units) and self.afters[self._after_units[at]] == index:
            yield self._after_units[at]
            at += 1

    def _copy(self, send: Send, original_ns: int, after_ns: int, unit: int, build: bool) -> Slot:
        if build:
            self._span.add(original_ns, after_ns)
        tags = (*send.tags, self.tag(unit))
        return Slot(after_ns, Send(send.offset_ns, send.frame, send.payload, self.ctx.kind, send.binary, tags), copy=1)

    def apply(self, slots: Iterator[Slot], build: bool) -> Iterator[Slot]:
        originals, afters = self.originals, self.afters
        seen: dict[int, tuple[Send, int]] = {}
        holes: dict[int, tuple[_Hole, int]] = {}
        out: deque[Slot | _Hole] = deque()
        bits, first = originals.bits()
        after_bits, after_first = self._after_keys.bits()
        size, after_size = len(bits) * 8, len(after_bits) * 8
        for slot in slots:
            if slot.copy == 0:
                index = slot.send.frame.index
                at, after_at = index - first, index - after_first
                mine = 0 <= at < size and bits[at >> 3] >> (at & 7) & 1
                after = 0 <= after_at < after_size and after_bits[after_at >> 3] >> (after_at & 7) & 1
                if not mine and not after:
                    if out:
                        out.append(slot)
                        yield from _drain(out)
                    else:
                        yield slot
                    continue
            out.append(slot)
            if slot.copy == 0:
                j = originals.position(index)
                if j >= 0 and afters[j] != index:
                    waiting = holes.pop(j, None)
                    if waiting is not None:
                        waiting[0].slot = self._copy(slot.send, slot.offset_ns, waiting[1], j, build)
                    else:
                        seen[j] = (slot.send, slot.offset_ns)
                for unit in self._units_after(index):
                    if unit == j:
                        out.append(self._copy(slot.send, slot.offset_ns, slot.offset_ns, unit, build))
                    elif unit in seen:
                        send, original_ns = seen.pop(unit)
                        out.append(self._copy(send, original_ns, slot.offset_ns, unit, build))
                    else:
                        hole = _Hole()
                        holes[unit] = (hole, slot.offset_ns)
                        out.append(hole)
            yield from _drain(out)
        if out:
            raise ValueError("a duplicate's original never reached its stage: the schedule is not the plan's")

    def finish(self) -> None:
        self.windows = self._span.windows(self.ctx)


def duplicate(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """Sends chosen frames twice: the copy right after the original, or after `lag_frames` newer frames
    of the same stream (a retransmission that arrives late)."""
    lag, probability, rng = ctx.params["lag_frames"], ctx.params["probability"], ctx.stream()
    originals: list[int] = []
    afters: list[int] = []
    waiting: dict[str, deque[tuple[int, int]]] = {}
    positions: dict[str, int] = {}
    last_of: dict[str, Frame] = {}

    def land(unit: int, target: Frame) -> None:
        """The copy goes after the target's send, or after the original's when the target is gone."""
        if present(target):
            afters[unit] = target.index

    for frame in frames:
        position = positions.get(frame.stream, 0)
        positions[frame.stream] = position + 1
        last_of[frame.stream] = frame
        queue = waiting.get(frame.stream)
        while queue and queue[0][0] == position:
            land(queue.popleft()[1], frame)
        if ctx.eligible(frame) and rng.random() < probability and present(frame):
            originals.append(frame.index)
            afters.append(frame.index)
            if lag:
                waiting.setdefault(frame.stream, deque()).append((position + lag, len(afters) - 1))
    for stream, queue in waiting.items():
        for _, unit in queue:
            land(unit, last_of[stream])
    return Duplication(ctx, originals=IndexSet(originals), afters=afters)


@dataclass(eq=False)
class Reordering(FaultStage):
    """Shuffles chosen groups of one stream's frames: `groups[g]` is (the frames, in clean order, how
    many of them are still scheduled, the order they go out in); the members' sends take each other's
    places, so only the order changes. Units: per group, stream after stream (`bases`)."""

    groups: list[tuple[tuple[int, ...], int, tuple[int, ...]]] = field(default_factory=list)
    members: IndexSet = field(default_factory=IndexSet)
    member_group: list[int] = field(default_factory=list)
    _moved: list[int] = field(default_factory=list)
    _bases: list[int] = field(default_factory=list)
    _span: Span = field(default_factory=Span)

    def apply(self, slots: Iterator[Slot], build: bool) -> Iterator[Slot]:
        if build:
            self._moved = [0] * len(self.groups)
        members, member_group = self.members, self.member_group
        bits, first = members.bits()
        size = len(bits) * 8
        passed: dict[int, list[tuple[int, Slot]]] = {}
        buffer: list[Slot] = []
        for slot in slots:
            at = slot.send.frame.index - first
            member = slot.copy == 0 and 0 <= at < size and bits[at >> 3] >> (at & 7) & 1
            at = members.position(slot.send.frame.index) if member else -1
            if at < 0:
                if passed:
                    buffer.append(slot)
                else:
                    yield slot
                continue
            group = member_group[at]
            arrived = passed.setdefault(group, [])
            arrived.append((len(buffer), slot))
            buffer.append(slot)
            if len(arrived) == self.groups[group][1]:
                self._shuffle(group, passed.pop(group), buffer, build)
                if not passed:
                    yield from buffer
                    buffer.clear()
        if passed:
            raise ValueError("a reordered frame never reached its stage: the schedule is not the plan's")
        yield from buffer

    def _shuffle(self, group: int, present: list[tuple[int, Slot]], buffer: list[Slot], build: bool) -> None:
        frames, _, order = self.groups[group]
        by_frame = {slot.send.frame.index: slot for _, slot in present}
        wanted = [by_frame[frames[i]] for i in order if frames[i] in by_frame]
        moved = 0
        places = [(place, displaced, displaced.offset_ns) for place, displaced in present]
        for slot, (place, displaced, offset) in zip(wanted, places, strict=True):
            if slot is not displaced:
                if build:
                    self._span.add(offset, offset)
                slot.touch(self.ctx.kind, self.tag(self._bases[group] + moved if self._bases else -1))
                moved += 1
            slot.offset_ns = offset
            buffer[place] = slot
        if build:
            self._moved[group] = moved

    def finish(self) -> None:
        self._bases = []
        for moved in self._moved:
            self._bases.append(self.armed)
            self.armed += moved
        self._moved = []
        self.windows = self._span.windows(self.ctx)


def reorder(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """Shuffles groups of `window` consecutive frames of one stream (each group with `probability`);
    every moved frame takes the time slot of the one it displaced, so only the order changes.

    Groups are per stream because order matters only within one: on a connection carrying several
    symbols, three consecutive frames are mostly three different symbols, and shuffling those is no
    fault at all (measured: 296 frames moved on the four-symbol fixture, not one gap on the wire).
    Draws go stream after stream (all of the first stream's groups first), from the per-stream counts.
    """
    size, probability, rng = ctx.params["window"], ctx.params["probability"], ctx.stream()
    counts: dict[str, int] = {}
    for frame in frames:
        if ctx.eligible(frame):
            counts[frame.stream] = counts.get(frame.stream, 0) + 1
    chosen: dict[tuple[str, int], tuple[int, tuple[int, ...]]] = {}
    orders: dict[tuple[int, ...], tuple[int, ...]] = {}
    for stream, count in counts.items():
        for group in range(count // size):
            hit = rng.random() < probability
            order = list(range(size))
            rng.shuffle(order)
            if hit:
                if order == sorted(order):
                    order.reverse()
                key = tuple(order)
                chosen[stream, group] = (len(chosen), orders.setdefault(key, key))
    found: list[list[int]] = [[] for _ in chosen]
    alive = [0] * len(chosen)
    positions: dict[str, int] = {}
    for frame in frames:
        if ctx.eligible(frame):
            position = positions.get(frame.stream, 0)
            positions[frame.stream] = position + 1
            picked = chosen.get((frame.stream, position // size))
            if picked is not None:
                found[picked[0]].append(frame.index)
                alive[picked[0]] += present(frame)
    groups = [
        (tuple(indices), count, order) for (_, order), indices, count in zip(chosen.values(), found, alive, strict=True)
    ]
    members = sorted((index, number) for number, indices in enumerate(found) for index in indices)
    return Reordering(ctx, groups=groups, members=IndexSet(i for i, _ in members), member_group=[n for _, n in members])


DRAWN_ALL = 1 << 62
"""A frame index past every frame: the delay stage has drawn for the whole recording."""


@dataclass(eq=False)
class Delaying(FaultStage):
    """Moves each chosen send later; like TCP, later sends never overtake a delayed one, they queue
    behind it. Every frame of the window draws, so the draws are made again on each walk, a little
    ahead of the schedule (`_draws`), instead of kept."""

    present: Present = field(default=lambda frame: True)
    frames: Sequence[Frame] = ()
    _span: Span = field(default_factory=Span)
    _last_moved: int = 0

    def _draws(self) -> Iterator[tuple[int, int]]:
        """(frame index, delay) of each delayed frame that is still scheduled, in clean order."""
        ctx, rng = self.ctx, self.ctx.stream()
        base, jitter, probability = ctx.params["base"], ctx.params["jitter"], ctx.params["probability"]
        for frame in self.frames:
            if ctx.eligible(frame):
                hit = rng.random() < probability
                extra = round((base + rng.random() * jitter) * 1e9)
                if hit and extra > 0 and self.present(frame):
                    yield frame.index, extra

    def apply(self, slots: Iterator[Slot], build: bool) -> Iterator[Slot]:
        draws = self._draws()
        ahead: dict[int, int] = {}
        drawn_to = -1
        running = 0
        unit = 0
        kind = self.ctx.kind
        for slot in slots:
            extra = 0
            if slot.copy == 0:
                index = slot.send.frame.index
                while drawn_to < index:
                    drawn_to, delay = next(draws, (DRAWN_ALL, 0))
                    if delay:
                        ahead[drawn_to] = delay
                extra = ahead.pop(index, 0)
                if not extra and drawn_to == DRAWN_ALL and not ahead and running <= slot.offset_ns:
                    yield slot  # no delay left to draw and the queue has drained: the rest goes as it came
                    yield from slots
                    break
            moved = max(slot.offset_ns + extra, running)
            if extra:
                if build:
                    self._span.add(slot.offset_ns, slot.offset_ns)
                slot.touch(kind, self.tag(unit))
                unit += 1
            if build and moved != slot.offset_ns:
                self._last_moved = moved
            slot.offset_ns = running = moved
            yield slot
        if build:
            self.armed = unit

    def finish(self) -> None:
        span = self._span
        if span.count:
            span.heal = self._last_moved
        self.windows = span.windows(self.ctx)


def delay(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """Delays frames by `base` plus up to `jitter` seconds; like TCP, later frames never overtake a
    delayed one, they queue behind it (and are not counted)."""
    return Delaying(ctx, present=present, frames=frames)


@dataclass(eq=False)
class Holding(FaultStage):
    """Holds every send due in `[start, release)` of each hold (depth sends only with `depth_only`) and
    releases them together, in order, at `release`, before the sends due then. Each held send is a unit
    (burst), or all of them the one unit armed up front (`one_unit`, slow consumer)."""

    holds: list[tuple[int, int]] = field(default_factory=list)
    depth_only: bool = False
    one_unit: bool = False
    _counts: list[int] = field(default_factory=list)

    def apply(self, slots: Iterator[Slot], build: bool) -> Iterator[Slot]:
        self._counts = [0] * len(self.holds)
        for number, (start, release) in enumerate(self.holds):
            slots = self._hold(slots, number, start, release)
        return slots

    def _hold(self, slots: Iterator[Slot], number: int, start: int, release: int) -> Iterator[Slot]:
        held: list[Slot] = []
        kind, depth_only, counts = self.ctx.kind, self.depth_only, self._counts
        for slot in slots:
            if slot.offset_ns >= release:
                yield from held
                yield slot
                yield from slots
                return
            if start <= slot.offset_ns < release and (slot.send.frame.first_update_id is not None or not depth_only):
                slot.offset_ns = release
                slot.touch(kind, self.tag(0 if self.one_unit else sum(counts)))
                counts[number] += 1
                held.append(slot)
                continue
            yield slot
        yield from held

    def finish(self) -> None:
        if self.one_unit:
            return
        self.armed = sum(self._counts)
        for (start, release), count in zip(self.holds, self._counts, strict=True):
            self.record(count, start, release, release)


def burst(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """`count` times in the window, holds the stream for `hold` seconds, then releases it all at once."""
    hold_ns = round(ctx.params["hold"] * 1e9)
    count = ctx.params["count"]
    if count * hold_ns > ctx.stop_ns - ctx.start_ns:
        raise fault_error(ctx, f"{count} holds of {ctx.params['hold']:g}s do not fit in the window")
    starts = spread(ctx.stream(), ctx.start_ns, ctx.stop_ns, count, hold_ns)
    return Holding(
        ctx, holds=[(start, start + hold_ns) for start in starts], depth_only=ctx.params["frames"] == "depth"
    )


@dataclass(eq=False)
class Corruption(FaultStage):
    """Replaces the payloads of the frames in `hits` (unit: the frame's rank) with broken ones in
    `modes[rank]`; a payload that is not valid UTF-8 goes out as a binary frame (see Send.binary)."""

    hits: IndexSet = field(default_factory=IndexSet)
    modes: bytes = b""
    _span: Span = field(default_factory=Span)

    def apply(self, slots: Iterator[Slot], build: bool) -> Iterator[Slot]:
        hits, kind = self.hits, self.ctx.kind
        bits, first = hits.bits()
        size = len(bits) * 8
        for slot in slots:
            at = slot.send.frame.index - first
            if slot.copy == 0 and 0 <= at < size and bits[at >> 3] >> (at & 7) & 1:
                unit = hits.position(slot.send.frame.index)
                if unit >= 0:
                    mode = CORRUPT_MODES_ALL[self.modes[unit]]
                    payload = corrupt_payload(slot.send.frame.payload, mode) or b""  # never empty: see corrupt()
                    send = slot.send
                    tags = (*send.tags, self.tag(unit))
                    slot.send = Send(send.offset_ns, send.frame, payload, kind, mode == "invalid_utf8", tags)
                    if build:
                        self._span.add(slot.offset_ns, slot.offset_ns)
            yield slot

    def finish(self) -> None:
        self.windows = self._span.windows(self.ctx)


def corrupt(ctx: FaultContext, frames: Sequence[Frame], present: Present) -> FaultStage:
    """Replaces chosen frames' payloads with broken ones; a frame that is not valid UTF-8 goes out as a
    binary frame (see Send.binary), the others as text."""
    rng, probability, mixed = ctx.stream(), ctx.params["probability"], ctx.params["mode"] == "mixed"
    hits: list[int] = []
    modes = bytearray()
    for frame in frames:
        if not ctx.eligible(frame):
            continue
        hit = rng.random() < probability
        mode = rng.choice(CORRUPT_MODES) if mixed else ctx.params["mode"]
        if not hit or not present(frame):
            continue
        if mode == "checksum" and corrupt_payload(frame.payload, mode) is None:
            continue
        hits.append(frame.index)
        modes.append(CORRUPT_MODES_ALL.index(mode))
    stage = Corruption(ctx, hits=IndexSet(hits), modes=bytes(modes))
    stage.armed = len(hits)
    return stage


def corrupt_payload(payload: bytes, mode: str) -> bytes | None:
    """A broken version of `payload`: never parseable as the venue's message, never equal to it; except
    `checksum`, valid JSON whose book checksum is wrong (None for a frame that carries no checksum)."""
    if mode == "checksum":
        return _wrong_checksum(payload)
    return unreadable_payload(payload, mode)


def unreadable_payload(payload: bytes, mode: str) -> bytes:
    """`payload` broken so that it never parses as the venue's message, never equal to it."""
    if mode == "truncated":
        return payload[: max(1, len(payload) // 2)]
    if mode == "invalid_utf8":
        at = payload.find(b':"') + 2 if b':"' in payload else 0
        return payload[:at] + b"\xc3\x28\xff" + payload[at:]
    if mode == "wrong_types":
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            message = None
        if isinstance(message, dict):
            body = message.get("data", message)
            if isinstance(body, dict):
                for key, value in list(body.items()):
                    if isinstance(value, int) and not isinstance(value, bool):
                        body[key] = str(value)
                    elif isinstance(value, list):
                        body[key] = {"levels": value}
                    elif isinstance(value, str):
                        body[key] = [value]
                return orjson.dumps(message)
    return payload.replace(b'":', b'"=', 1) if b'":' in payload else b"{" + payload


def _wrong_checksum(payload: bytes) -> bytes | None:
    """The frame with its first book's `checksum` changed (a lowest-bit flip, never to 0, which means "not
    provided"), levels and ids untouched: only a client that checks the checksum can tell."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    books = message.get("data") if isinstance(message, dict) else None
    book = books[0] if isinstance(books, list) and books and isinstance(books[0], dict) else None
    value = book.get("checksum") if book is not None else None
    if book is None or type(value) is not int or value == 0:
        return None
    book["checksum"] = value ^ 1 or 2
    return orjson.dumps(message)
