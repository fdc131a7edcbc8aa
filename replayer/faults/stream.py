"""Faults on the frame stream itself: what is sent, how many times, in which order, and when.

Each function decides from the clean frames in its window with its own random stream, drawing the
same number of values per frame whatever the outcome, then applies the decision to the current
schedule and records its count and windows. Units counted are in docs/scenarios.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import orjson

from harness.errors import HarnessError
from replayer.faults.work import FaultContext, Slot, Work, spread
from replayer.timeline import Frame

CORRUPT_MODES = ("invalid_json", "truncated", "wrong_types", "invalid_utf8")


def fault_error(ctx: FaultContext, message: str) -> HarnessError:
    return HarnessError(f"fault {ctx.fault_id} ({ctx.kind}): {message}")


def _record_span(work: Work, ctx: FaultContext, touched: list[tuple[int, int]]) -> None:
    """One window over `(offset_ns, heal_ns)` pairs the fault touched; nothing touched, count 0."""
    if not touched:
        work.record(ctx, 0, 0, 0, 0)
        return
    start = min(t[0] for t in touched)
    stop = max(t[0] for t in touched)
    work.record(ctx, len(touched), start, stop, max(stop, *(t[1] for t in touched)))


def drop(work: Work, ctx: FaultContext) -> None:
    """Loses frames: independently with `probability`, every `every`-th, or in Gilbert-Elliott bursts."""
    params, rng = ctx.params, ctx.rng
    frames = work.eligible(ctx)
    chosen: list[Frame] = []
    if params["mode"] == "random":
        chosen = [f for f in frames if rng.random() < params["probability"]]
    elif params["mode"] == "nth":
        chosen = frames[params["every"] - 1 :: params["every"]]
    else:
        bad = False
        for frame in frames:
            if rng.random() < (params["loss_bad"] if bad else params["loss_good"]):
                chosen.append(frame)
            bad = rng.random() >= params["p_leave_bad"] if bad else rng.random() < params["p_enter_bad"]
    removed = work.remove({f.index for f in chosen})
    for slot in removed:
        work.withhold(ctx, [slot], work.arm(ctx))
    _record_span(work, ctx, [(s.offset_ns, s.offset_ns) for s in removed])


def gap(work: Work, ctx: FaultContext) -> None:
    """Loses `count` runs of `length` consecutive depth updates of one stream, spread over the window."""
    count, length = ctx.params["count"], ctx.params["length"]
    frames = work.eligible(replace(ctx, params={"frames": "depth"}))
    if count * length > len(frames):
        raise fault_error(
            ctx, f"{count} runs of {length} need {count * length} depth frames; the window has {len(frames)}"
        )
    by_stream: dict[str, list[Frame]] = defaultdict(list)
    for frame in frames:
        by_stream[frame.stream].append(frame)
    slot = len(frames) / count
    for i in range(count):
        first = frames[int(i * slot + ctx.rng.random() * max(0.0, slot - length))]
        stream = by_stream[first.stream]
        at = stream.index(first)
        run = stream[at : at + length]
        removed = work.remove({f.index for f in run})
        if removed:
            work.withhold(ctx, removed, work.arm(ctx))
            work.record(ctx, 1, run[0].offset_ns, run[-1].offset_ns, run[-1].offset_ns)


def duplicate(work: Work, ctx: FaultContext) -> None:
    """Sends chosen frames twice: the copy right after the original, or after `lag_frames` newer frames
    of the same stream (a retransmission that arrives late)."""
    lag = ctx.params["lag_frames"]
    chosen = [f for f in work.eligible(ctx) if ctx.rng.random() < ctx.params["probability"]]
    later: dict[str, list[Frame]] = defaultdict(list)
    for frame in work.frames:
        later[frame.stream].append(frame)
    position = {f.index: i for frames in later.values() for i, f in enumerate(frames)}
    primaries = work.primaries()
    touched = []
    for frame in chosen:
        original = primaries.get(frame.index)
        if original is None:
            continue
        stream = later[frame.stream]
        after = original
        if lag:
            target = stream[min(position[frame.index] + lag, len(stream) - 1)]
            after = primaries.get(target.index, original)
        copy = Slot(after.offset_ns, (after.rank[0], 1), replace(original.send, fault=ctx.kind), copy=1)
        copy.tag(work.arm(ctx))
        work.slots.append(copy)
        touched.append((original.offset_ns, copy.offset_ns))
    _record_span(work, ctx, touched)


def reorder(work: Work, ctx: FaultContext) -> None:
    """Shuffles groups of `window` consecutive frames of one stream (each group with `probability`);
    every moved frame takes the time slot of the one it displaced, so only the order changes.

    Groups are per stream because order matters only within one: on a connection carrying several
    symbols, three consecutive frames are mostly three different symbols, and shuffling those is no
    fault at all (measured: 296 frames moved on the four-symbol fixture, not one gap on the wire).
    """
    size = ctx.params["window"]
    by_stream: dict[str, list[Frame]] = defaultdict(list)
    for frame in work.eligible(ctx):
        by_stream[frame.stream].append(frame)
    primaries = work.primaries()
    touched = []
    for frames in by_stream.values():
        for at in range(0, len(frames) - size + 1, size):
            group = frames[at : at + size]
            chosen = ctx.rng.random() < ctx.params["probability"]
            order = list(range(size))
            ctx.rng.shuffle(order)
            if not chosen:
                continue
            if order == sorted(order):
                order.reverse()
            present = sorted(
                (primaries[f.index] for f in group if f.index in primaries), key=lambda s: (s.offset_ns, s.rank)
            )
            wanted = [primaries[group[i].index] for i in order if group[i].index in primaries]
            places = [(s.offset_ns, s.rank) for s in present]
            for slot, (offset, rank), displaced in zip(wanted, places, present, strict=True):
                if slot is not displaced:
                    touched.append((offset, offset))
                    slot.mark(ctx.kind)
                    slot.tag(work.arm(ctx))
                slot.offset_ns, slot.rank = offset, rank
    _record_span(work, ctx, touched)


def delay(work: Work, ctx: FaultContext) -> None:
    """Delays frames by `base` plus up to `jitter` seconds; like TCP, later frames never overtake a
    delayed one, they queue behind it (and are not counted)."""
    base, jitter, probability = ctx.params["base"], ctx.params["jitter"], ctx.params["probability"]
    delays: dict[int, int] = {}
    for frame in work.eligible(ctx):
        hit = ctx.rng.random() < probability
        extra = round((base + ctx.rng.random() * jitter) * 1e9)
        if hit and extra > 0:
            delays[frame.index] = extra
    work.normalize()
    running = 0
    touched = []
    last_moved = 0
    for slot in work.slots:
        extra = delays.get(slot.send.frame.index, 0) if slot.copy == 0 else 0
        moved = max(slot.offset_ns + extra, running)
        if extra:
            touched.append(slot.offset_ns)
            slot.mark(ctx.kind)
            slot.tag(work.arm(ctx))
        if moved != slot.offset_ns:
            last_moved = moved
        slot.offset_ns = running = moved
    _record_span(work, ctx, [(t, last_moved) for t in touched])


def hold(work: Work, ctx: FaultContext, start_ns: int, release_ns: int, depth_only: bool) -> list[Slot]:
    """Holds every send due in `[start_ns, release_ns)` and releases them together, in order, at
    `release_ns`; returns the slots it held."""
    held = []
    for slot in work.slots:
        if start_ns <= slot.offset_ns < release_ns and (slot.send.frame.first_update_id is not None or not depth_only):
            slot.offset_ns = release_ns
            slot.mark(ctx.kind)
            held.append(slot)
    return held


def burst(work: Work, ctx: FaultContext) -> None:
    """`count` times in the window, holds the stream for `hold` seconds, then releases it all at once."""
    hold_ns = round(ctx.params["hold"] * 1e9)
    count = ctx.params["count"]
    if count * hold_ns > ctx.stop_ns - ctx.start_ns:
        raise fault_error(ctx, f"{count} holds of {ctx.params['hold']:g}s do not fit in the window")
    for start in spread(ctx.rng, ctx.start_ns, ctx.stop_ns, count, hold_ns):
        held = hold(work, ctx, start, start + hold_ns, ctx.params["frames"] == "depth")
        for slot in held:
            slot.tag(work.arm(ctx))
        work.record(ctx, len(held), start, start + hold_ns, start + hold_ns)


def corrupt(work: Work, ctx: FaultContext) -> None:
    """Replaces chosen frames' payloads with broken ones; a frame that is not valid UTF-8 goes out as a
    binary frame (see Send.binary), the others as text."""
    primaries = work.primaries()
    touched = []
    for frame in work.eligible(ctx):
        hit = ctx.rng.random() < ctx.params["probability"]
        mode = ctx.rng.choice(CORRUPT_MODES) if ctx.params["mode"] == "mixed" else ctx.params["mode"]
        slot = primaries.get(frame.index)
        payload = corrupt_payload(frame.payload, mode) if hit and slot is not None else None
        if slot is not None and payload is not None:
            slot.send = replace(
                slot.send,
                payload=payload,
                fault=ctx.kind,
                binary=mode == "invalid_utf8",
            )
            slot.tag(work.arm(ctx))
            touched.append((slot.offset_ns, slot.offset_ns))
    _record_span(work, ctx, touched)


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
