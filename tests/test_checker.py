"""The checker against hand-made subjects: a correct one, and ones that are silently wrong in each way."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from dataclasses import dataclass, replace
from decimal import Decimal

import orjson
import pytest

from harness.book_events import DepthSnapshot
from harness.checker import Checker, Findings, check, replay_clock, send_log_clock
from harness.divergence_context import FRAMES_AFTER, FRAMES_BEFORE, Nearby, first_difference
from harness.errors import HarnessError
from harness.level_match import LevelMatch, reach_of
from harness.observations import BookObservation, FinalBook, SubjectMessage, SyncEvent, dumps, loads
from harness.oracle import DepthFrame, Oracle
from harness.report import build_report
from harness.sync_timeline import Silence, SyncTimeline, silent_while_synced
from replayer.timeline import Frame

SYMBOL = "BTCUSDT"
STREAM = "btcusdt@depth@100ms"
T0 = 5_000_000_000
STEP = 1_000_000
SNAP = DepthSnapshot(SYMBOL, 100, [["100.0", "1"], ["99.0", "2"]], [["101.0", "1"], ["102.0", "3"]])


def depth(index: int, first: int, last: int, bids=(), asks=()) -> Frame:
    data = {"e": "depthUpdate", "E": 1, "s": SYMBOL, "U": first, "u": last, "b": list(bids), "a": list(asks)}
    return Frame(index, index * STEP, STREAM, orjson.dumps({"stream": STREAM, "data": data}), first, last)


def clean_frames() -> list[Frame]:
    """Frame i (1..20) carries update 100 + i and changes a bid and an ask the next frames leave alone."""
    frames = [depth(0, 95, 100)]
    for i in range(1, 21):
        frames.append(depth(i, 100 + i, 100 + i, [[f"{80 + i}.0", str(i)]], [[f"{120 + i}.0", str(i)]]))
    return frames


@dataclass
class Write:
    frame_index: int
    intended_mono_ns: int
    write_mono_ns: int
    fault: str | None = None


@dataclass
class Client:
    client_id: int
    sends: list[Write]


class DictBook:
    """The test's own book: a dict per side, nothing shared with the oracle."""

    def __init__(self, snap: DepthSnapshot) -> None:
        self.bids = {price: size for price, size in snap.bids}
        self.asks = {price: size for price, size in snap.asks}
        self.u = snap.last_update_id

    def apply(self, frame: Frame) -> None:
        data = orjson.loads(frame.payload)["data"]
        for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for p, q in levels:
                if float(q) == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
        self.u = data["u"]

    def top(self, n: int | None = 20) -> tuple[list, list]:
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))[:n]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:n]
        return bids, asks


def observation(book: DictBook, t: int, synced: bool = True) -> BookObservation:
    bids, asks = book.top()
    return BookObservation(SYMBOL, book.u, synced, bids, asks, t + 50_000, t + 60_000, t + 80_000, t + 85_000)


def run_subject(frames: list[Frame], *, skip=(), twice=(), wrong_at=None, gap_aware=True, snap=SNAP):
    """Drives a subject over the frames it receives; returns (messages, server clients).

    `skip` frame indices are never written (a drop fault); `twice` ones are written twice and applied
    twice (a subject that does not drop duplicates); `wrong_at` corrupts one level of that update's
    observation; a `gap_aware` subject resyncs from a fresh snapshot on a gap, otherwise it applies on.
    """
    book = DictBook(snap)
    messages: list = [SyncEvent("connection_open", T0)]
    writes: list[Write] = []
    clients = [Client(1, writes)]
    synced = False
    for frame in frames[1:]:
        if frame.index in skip:
            continue
        t = T0 + frame.offset_ns
        for _ in range(2 if frame.index in twice else 1):
            writes.append(Write(frame.index, t - 1000, t))
            first = frame.first_update_id
            if gap_aware and synced and first is not None and first > book.u + 1:
                messages.append(SyncEvent("gap_detected", t + 1, f"expected {book.u + 1}"))
                messages.append(SyncEvent("resync", t + 2))
                truth = DictBook(snap)
                for earlier in frames[1 : frame.index]:
                    truth.apply(earlier)
                book = truth
                bids, asks = book.top()
                messages.append(BookObservation(SYMBOL, book.u, False, bids, asks, t + 3, t + 3, t + 3, t + 3))
            book.apply(frame)
            if not synced:
                synced = True
                messages.append(SyncEvent("synced", t + 4))
            obs = observation(book, t)
            if frame.last_update_id == wrong_at:
                obs.bids = [(obs.bids[0][0], "999"), *obs.bids[1:]]
            messages.append(obs)
    bids, asks = book.top(None)
    messages.append(FinalBook(SYMBOL, book.u, synced, bids, asks))
    return messages, clients


def test_a_correct_subject_has_no_divergence_and_a_correct_final_book() -> None:
    frames = clean_frames()
    oracle = Oracle(frames, SNAP)
    messages, clients = run_subject(frames)
    found = check(oracle, messages, clients)
    assert found.checks == 21, "20 synced observations and the synced final book"
    assert found.checked_states == 20
    assert found.divergent == 0 and found.examples == []
    assert found.final_book_correct
    assert found.finals[0].update_id == 120 == found.finals[0].oracle_last_update_id
    assert found.gaps_injected == 0 and found.gaps_detected == 0
    assert found.duplicates_applied == 0 and found.reorders_applied == 0
    assert found.frames_sent == 20 == found.depth_frames_sent


def test_a_wrong_level_while_synced_is_silent_divergence_with_a_diff() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames, wrong_at=107)
    found = check(Oracle(frames, SNAP), messages, clients)
    assert found.divergent == 1
    example = found.examples[0]
    assert example["update_id"] == 107
    assert example["bids"] == [{"level": 0, "subject": ["100.0", "999"], "oracle": ["100.0", "1"]}]
    assert example["asks"] == []
    assert found.final_book_correct


def test_claiming_synced_at_an_update_id_between_frame_boundaries_is_divergence() -> None:
    frames = [depth(0, 95, 100), depth(1, 101, 105, [["100.0", "4"]])]
    book = DictBook(SNAP)
    book.u = 103
    messages = [observation(book, T0)]
    found = check(Oracle(frames, SNAP), messages, [])
    assert found.unknown_update_ids == 1 and found.divergent == 1
    assert "frame boundary" in found.examples[0]["reason"]
    assert not found.final_book_correct
    assert found.finals[0].detail == "the subject gave no final book"


def test_a_duplicate_applied_twice_is_counted() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames, twice={5})
    found = check(Oracle(frames, SNAP), messages, clients)
    assert found.duplicates_applied == 1
    assert found.out_of_order_sent == 1
    assert found.frames_sent == 21


def test_update_ids_going_back_while_synced_are_counted_unless_a_resync_came_between() -> None:
    frames = clean_frames()
    oracle = Oracle(frames, SNAP)
    book = DictBook(SNAP)
    states = {}
    for frame in frames[1:6]:
        book.apply(frame)
        states[frame.last_update_id] = observation(book, T0 + frame.offset_ns)
    back = [states[101], states[102], states[104], states[103], states[105]]
    assert check(oracle, back, []).reorders_applied == 1
    resynced: list[SubjectMessage] = [states[101], states[104], SyncEvent("resync", T0 + 9), states[103], states[105]]
    assert check(oracle, resynced, []).reorders_applied == 0


def test_a_subject_that_never_detects_a_gap_diverges_and_detects_none() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames, skip={4, 9, 10, 15}, gap_aware=False)
    found = check(Oracle(frames, SNAP), messages, clients)
    assert found.gaps_injected == 3
    assert found.gaps_detected == 0
    assert found.divergent > 0
    assert found.examples[0]["update_id"] == 105
    assert not found.final_book_correct


def test_a_gap_aware_subject_detects_every_gap_and_stays_correct() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames, skip={4, 9, 10, 15})
    found = check(Oracle(frames, SNAP), messages, clients)
    assert found.gaps_injected == 3 == found.gaps_detected
    assert found.resyncs == 3
    assert found.divergent == 0
    assert found.unverified == 3
    assert found.final_book_correct


def test_corrupt_writes_count_as_missing_and_reconnects_are_not_gaps() -> None:
    frames = clean_frames()
    first = Client(1, [Write(1, 0, 10), Write(2, 0, 20, fault="corrupt_truncate"), Write(3, 0, 30)])
    found = check(Oracle(frames, SNAP), [], [first, Client(2, [Write(5, 0, 50)])])
    assert found.gaps_injected == 1
    assert found.depth_frames_sent == 4


def test_recovery_runs_from_window_start_to_the_first_correct_book_after_the_last_disruption() -> None:
    @dataclass
    class Window:
        kind: str
        start_ns: int
        stop_ns: int
        heal_ns: int
        fault_id: str = ""

    frames = clean_frames()
    messages, clients = run_subject(frames, skip={9, 10})
    windows = [
        Window("drop", 8 * STEP, 10 * STEP, 11 * STEP, "drop-1"),
        Window("delay", 14 * STEP, 15 * STEP, 15 * STEP),
    ]
    found = check(Oracle(frames, SNAP), messages, clients, windows, replay_clock(T0, 1.0))
    first, second = found.recoveries
    assert (first.kind, first.fault_id, second.kind) == ("drop", "drop-1", "delay")
    # Frame 8 is applied correctly inside the window, but the gap at frame 11 disrupts: recovery ends
    # at frame 11's correct observation, applied 85 µs after its write.
    assert first.recovery_ns == 3 * STEP + 85_000
    assert second.recovery_ns == 85_000
    unhealed = check(
        Oracle(frames, SNAP), messages, clients, [Window("x", 30 * STEP, 31 * STEP, 32 * STEP)], replay_clock(T0, 1.0)
    )
    assert unhealed.recoveries[0].recovery_ns is None


def test_unsynced_time_runs_from_each_loss_of_sync_to_the_next_sync() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames, skip={9})
    found = check(Oracle(frames, SNAP), messages, clients, start_mono_ns=T0)
    # Unsynced from T0 to the first `synced` (frame 1 + 4 ns), and from frame 10's gap (+1 ns) to
    # its resynced observation (+85 µs).
    assert found.unsynced_ns == (STEP + 4) + (85_000 - 1)


def test_latency_joins_the_first_write_of_each_update_id() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames, twice={3})
    found = check(Oracle(frames, SNAP), messages, clients)
    e2e, intended, wire = found.latency["e2e"], found.latency["e2e_intended"], found.latency["wire"]
    assert e2e.count == 20 == intended.count == wire.count
    assert e2e.max == 85_000 and e2e.min == 85_000
    assert intended.max == 86_000
    assert wire.max == 50_000
    assert found.latency["queue"].max == 20_000 and found.latency["queue"].count == 21
    assert found.unjoined == 0 and found.negative_latencies == 0


def test_a_final_book_that_is_synced_and_wrong_is_divergence() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames)
    final = messages[-1]
    final.asks = list(final.asks)[:-1]
    found = check(Oracle(frames, SNAP), messages, clients)
    assert not found.final_book_correct
    assert found.divergent == 1
    assert found.examples[0]["reason"] == "final book differs from the oracle"


def test_messages_round_trip_through_orjson_and_bad_ones_are_refused() -> None:
    frames = clean_frames()
    messages, _ = run_subject(frames)
    assert [loads(dumps(m)) for m in messages] == messages
    with pytest.raises(HarnessError, match="sync event kind"):
        SyncEvent("gap_detect", 1)
    with pytest.raises(HarnessError, match="not a tagged observation"):
        loads(b"[1,2,3]")
    with pytest.raises(HarnessError, match="expected 9"):
        loads(b'["o", [1, 2]]')
    with pytest.raises(HarnessError, match=r"Checker\.finish"):
        Checker(Oracle(frames, SNAP)).feed(messages[-1])


def test_send_log_clock_places_offsets_at_the_first_write_of_the_frame_due_then() -> None:
    frames = clean_frames()
    _, clients = run_subject(frames, skip={4})
    to_mono = send_log_clock(frames, clients)
    assert to_mono(3 * STEP) == T0 + 3 * STEP
    assert to_mono(3 * STEP + 1) == T0 + 5 * STEP
    assert to_mono(99 * STEP) == T0 + 20 * STEP + 1
    with pytest.raises(HarnessError, match="speed above 0"):
        replay_clock(T0, 0.0)


def test_send_log_clock_takes_the_earliest_write_among_frames_due_at_once_in_any_order() -> None:
    frames = [replace(frame, offset_ns=(frame.index // 2) * STEP) for frame in clean_frames()]  # two due at a time
    writes = [Write(i, 0, T0 + (30 - i) * STEP) for i in range(len(frames))]  # later frames written first
    in_order = send_log_clock(frames, [Client(0, writes)])
    mirrored = [Write(len(frames) - 1 - w.frame_index, 0, w.write_mono_ns) for w in writes]
    backwards = send_log_clock(frames[::-1], [Client(0, mirrored)])
    for offset in (0, STEP, 3 * STEP, 3 * STEP + 1, 10 * STEP):
        due = [w.write_mono_ns for w, f in zip(writes, frames, strict=True) if f.offset_ns == -(-offset // STEP) * STEP]
        assert in_order(offset) == backwards(offset) == min(due)
    assert in_order(11 * STEP) == T0 + 30 * STEP + 1, "past every frame: after the last write"


def test_nearby_frames_picked_from_a_stream_are_the_sorted_neighbours() -> None:
    rng = random.Random(3)
    frames = [DepthFrame(i, SYMBOL, u, u, None) for i, u in enumerate(rng.choices(range(100, 140), k=120))]
    for update_id in (99, 100, 117, 139, 150):
        picker = Nearby(update_id)
        for frame in rng.sample(frames, len(frames)):
            picker.add(frame)
        ordered = sorted(frames, key=lambda fr: (fr.last_update_id, fr.index))
        at = sum(fr.last_update_id <= update_id for fr in ordered)
        assert picker.frames() == ordered[max(0, at - FRAMES_BEFORE) : at + FRAMES_AFTER]


def numbers(side, convert) -> list[tuple]:
    return [(convert(p), convert(q)) for p, q in side]


@pytest.mark.parametrize(
    "convert", [float, Decimal, lambda s: f"{Decimal(s):.8f}"], ids=["float", "Decimal", "padded str"]
)
def test_levels_held_as_numbers_are_judged_by_value(convert) -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames)
    for message in messages:
        if isinstance(message, BookObservation | FinalBook):
            message.bids, message.asks = numbers(message.bids, convert), numbers(message.asks, convert)
    found = check(Oracle(frames, SNAP), [loads(dumps(m)) for m in messages], clients)
    assert found.divergent == 0 and found.checks == 21
    assert found.final_book_correct


def test_an_int_equals_the_venue_decimal_it_denotes() -> None:
    match = LevelMatch()
    assert match.equal(100, "100.00000000") and match.equal(Decimal("0.1"), "0.10")
    assert not match.equal(True, "1") and not match.equal(None, "1") and not match.equal("abc", "1")


def test_a_float_one_ulp_off_the_venue_number_is_divergence_and_shows_as_sent() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames)
    obs = next(m for m in messages if isinstance(m, BookObservation) and m.update_id == 107)
    obs.bids = numbers(obs.bids, float)
    price, size = obs.bids[0]
    obs.bids[0] = (price, math.nextafter(size, math.inf))
    found = check(Oracle(frames, SNAP), messages, clients)
    assert found.divergent == 1
    row = found.examples[0]["bids"][0]
    assert row["subject"] == [price, math.nextafter(size, math.inf)] and isinstance(row["subject"][0], float)


def test_a_state_reported_twice_counts_once_for_coverage_and_divergent_never_exceeds_checks() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames)
    observations = [m for m in messages if isinstance(m, BookObservation)]
    final = messages[-1]
    final.asks = list(final.asks)[:-1]
    found = check(Oracle(frames, SNAP), [*observations, *observations, final], clients)
    assert found.checked_states == 20 == found.clean_depth_frames - 1
    assert found.checks == 41 and found.divergent == 1 <= found.checks


def test_the_final_book_is_judged_within_the_reach_of_the_snapshot_the_subject_was_served() -> None:
    frames = clean_frames()
    oracle = Oracle(frames, SNAP)
    messages, clients = run_subject(frames)
    final = messages[-1]
    # Served with limit 1: the subject saw bid 100.0 and ask 101.0 only. Later frames set bids 81..100
    # and asks 121..140, so the snapshot's ask 102.0 is the one level it cannot know.
    served = {SYMBOL: [reach_of(100, 1, SNAP.bids[:1], SNAP.asks[:1])]}
    final.asks = [level for level in final.asks if level[0] != "102.0"]
    assert not check(oracle, messages, clients).final_book_correct, "the whole book is compared without it"
    found = check(oracle, messages, clients, snapshot_reach=served)
    assert found.final_book_correct and found.divergent == 0
    depth = found.finals[0].depth
    assert depth is not None
    assert (depth.snapshot_levels, depth.bids_beyond, depth.asks_beyond) == (1, 0, 1)
    assert depth.bids_compared == 20 and depth.asks_compared == 21
    assert "1-level snapshot" in found.finals[0].detail
    final.bids = [level for level in final.bids if level[0] != "85.0"]
    missed = check(oracle, messages, clients, snapshot_reach=served)
    assert not missed.final_book_correct, "a level a diff set after the snapshot is within reach"
    assert "snapshot's reach" in missed.examples[0]["reason"]


def test_loss_and_recovery_are_read_from_behaviour_whatever_the_subject_calls_its_events() -> None:
    frames = clean_frames()
    oracle = Oracle(frames, SNAP)
    messages, clients = run_subject(frames, skip={4, 9, 10, 15})
    named = check(oracle, messages, clients)
    assert (named.losses_detected, named.recovered) == (3, 3)
    other_words = [
        SyncEvent("connection_closed", m.mono_ns) if isinstance(m, SyncEvent) and m.kind == "resync" else m
        for m in messages
        if not (isinstance(m, SyncEvent) and m.kind == "gap_detected")
    ]
    renamed = check(oracle, other_words, clients)
    assert (renamed.losses_detected, renamed.recovered, renamed.resyncs) == (3, 3, 0)
    silent = [
        m for m in messages if not isinstance(m, SyncEvent) and not (isinstance(m, BookObservation) and not m.synced)
    ]
    reloaded = check(oracle, silent, clients)
    assert (reloaded.losses_detected, reloaded.recovered, reloaded.divergent) == (3, 3, 0)


def test_a_book_that_skips_states_and_is_wrong_recovered_nothing() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames, skip={4, 9, 10, 15}, gap_aware=False)
    found = check(Oracle(frames, SNAP), messages, clients)
    assert found.divergent > 0
    assert (found.losses_detected, found.recovered) == (0, 0)


def test_a_loss_without_a_correct_book_again_is_detected_but_not_recovered_and_shutdown_is_not_judged() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames)
    final = messages.pop()
    late = T0 + 30 * STEP
    lost = check(Oracle(frames, SNAP), [*messages, SyncEvent("connection_closed", late), final], clients)
    assert (lost.losses_detected, lost.recovered) == (1, 0)
    shutdown = check(Oracle(frames, SNAP), [*messages, final, SyncEvent("connection_closed", late)], clients)
    assert (shutdown.losses_detected, shutdown.recovered) == (0, 0)


# Holes: synced states built across updates the subject never received intact (harness/deliveries.py).


@dataclass
class Served:
    """A REST depth answer the venue served (replayer/server.py SnapshotRecord)."""

    symbol: str
    last_update_id: int
    served_mono_ns: int
    bids: tuple = ()
    asks: tuple = ()


TOP_ONLY = DepthSnapshot(SYMBOL, 100, [["200.0", "1"], ["199.0", "2"]], [["201.0", "1"]])


def test_states_before_the_first_snapshot_served_are_left_out_of_coverage() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames)
    late = [m for m in messages if not isinstance(m, BookObservation) or m.update_id >= 105]  # synced late
    served = [Served(SYMBOL, 110, T0 + 5 * STEP), Served(SYMBOL, 104, T0)]  # the first in time counts
    found = check(Oracle(frames, SNAP), late, clients, snapshots=served)
    assert found.before_first_snapshot == 4 and found.checked_states == 16  # updates 100..103; 105..120
    report = build_report(found, scenario="clean", seed=1, recording="r", faults={})
    assert report["sync"]["before_first_snapshot"] == 4
    assert report["sync"]["coverage"] == round(16 / (21 - 4), 4)  # 104 was verifiable and not verified
    unserved = check(Oracle(frames, SNAP), late, clients)  # no REST snapshot served: nothing left out
    assert unserved.before_first_snapshot == 0
    assert build_report(unserved, scenario="clean", seed=1, recording="r", faults={})["sync"]["coverage"] == round(
        16 / 21, 4
    )


def overwriting_frames() -> list[Frame]:
    """Frame i (1..10) sets the best bid's size to i: each frame's change is undone by the next, so a
    book that missed one agrees with the oracle's top 20 again one frame later."""
    return [depth(0, 95, 100)] + [depth(i, 100 + i, 100 + i, [["200.0", str(i)]]) for i in range(1, 11)]


def test_a_hole_bridged_below_the_top_20s_notice_is_caught_by_holes_bridged() -> None:
    frames = overwriting_frames()
    messages, clients = run_subject(frames, snap=TOP_ONLY, skip={5}, gap_aware=False)
    blind = check(Oracle(frames, TOP_ONLY), messages, clients)
    assert blind.divergent == 0 and blind.holes_bridged == 0  # without the served snapshots: no hole search
    found = check(Oracle(frames, TOP_ONLY), messages, clients, snapshots=[Served(SYMBOL, 100, T0)])
    assert found.holes_bridged == 5 == found.divergent  # the states at 106..110 all stand on the missing 105
    assert {example["reason"] for example in found.examples} == {
        "synced across a hole in what the subject received (top 20 agrees)"
    }
    assert found.examples[0]["hole"] == {
        "first_update_id": 105,
        "last_update_id": 105,
        "why": "never reached the subject intact",
    }


def test_a_resync_from_a_snapshot_past_the_hole_is_no_bridge() -> None:
    frames = overwriting_frames()
    messages, clients = run_subject(frames, snap=TOP_ONLY, skip={5}, gap_aware=True)
    resync_at = T0 + frames[6].offset_ns + 2
    stale = check(Oracle(frames, TOP_ONLY), messages, clients, snapshots=[Served(SYMBOL, 100, T0)])
    assert stale.holes_bridged > 0  # claiming sync again with only the first snapshot served: still a bridge
    served = [Served(SYMBOL, 100, T0), Served(SYMBOL, 105, resync_at)]
    found = check(Oracle(frames, TOP_ONLY), messages, clients, snapshots=served)
    assert found.holes_bridged == 0 == found.divergent and found.gaps_detected == 1


def test_duplicates_are_no_hole_but_a_frame_that_came_after_it_was_needed_is() -> None:
    frames = overwriting_frames()
    served = [Served(SYMBOL, 100, T0)]
    messages, clients = run_subject(frames, snap=TOP_ONLY, twice={3, 4})
    assert check(Oracle(frames, TOP_ONLY), messages, clients, snapshots=served).holes_bridged == 0
    messages, clients = run_subject(frames, snap=TOP_ONLY, skip={5}, gap_aware=False)
    late = Write(5, 0, T0 + frames[8].offset_ns)  # written after 106 and 107 were applied, before 108
    clients[0].sends.append(late)
    found = check(Oracle(frames, TOP_ONLY), messages, clients, snapshots=served)
    assert found.holes_bridged == 5  # applying 106 without 105 cannot be undone by 105 arriving later
    assert found.examples[0]["hole"]["why"] == "reached the subject only later"


def test_a_corrupted_frame_is_a_hole_and_a_reconnect_that_missed_nothing_is_not() -> None:
    frames = overwriting_frames()
    served = [Served(SYMBOL, 100, T0)]
    messages, clients = run_subject(frames, snap=TOP_ONLY)
    writes = clients[0].sends
    first, second = Client(1, writes[:6]), Client(2, writes[4:])  # the new connection repeats 105 and 106
    assert check(Oracle(frames, TOP_ONLY), messages, [first, second], snapshots=served).holes_bridged == 0
    resumed = [Client(1, writes[:4]), Client(2, writes[6:])]  # 105 and 106 went to neither connection
    assert check(Oracle(frames, TOP_ONLY), messages, resumed, snapshots=served).holes_bridged == 6
    writes[2].fault = "corrupt:truncated"
    assert check(Oracle(frames, TOP_ONLY), messages, clients, snapshots=served).holes_bridged == 8


def test_a_chain_may_start_inside_an_event_from_a_straddling_snapshot() -> None:
    """Snapshots fall inside events on the live venue (U <= lastUpdateId < u): the straddling frame is a link."""
    frames = [depth(0, 95, 100)] + [depth(i, 99 + 2 * i, 100 + 2 * i, [["200.0", str(i)]]) for i in range(1, 6)]
    oracle = Oracle(frames, TOP_ONLY)
    messages, clients = run_subject(frames, snap=TOP_ONLY)
    from_103 = [m for m in messages if not (isinstance(m, BookObservation) and m.update_id == 102)]
    assert check(oracle, from_103, clients, snapshots=[Served(SYMBOL, 103, T0)]).holes_bridged == 0
    del clients[0].sends[1]  # the frame [103, 104] that straddles the snapshot never went out
    found = check(oracle, from_103, clients, snapshots=[Served(SYMBOL, 103, T0)])
    assert found.examples[0]["hole"]["first_update_id"] == 104 and found.holes_bridged == 4


def test_synced_with_no_snapshot_ever_served_is_a_bridge() -> None:
    frames = overwriting_frames()
    messages, clients = run_subject(frames, snap=TOP_ONLY)
    found = check(Oracle(frames, TOP_ONLY), messages, clients, snapshots=[])
    assert found.holes_bridged == 10 and found.examples[0]["hole"]["why"] == "no snapshot at or below it was served"


def test_a_book_at_a_snapshot_the_venue_served_inside_an_event_is_judged_against_that_snapshot() -> None:
    frames = [depth(0, 95, 100), depth(1, 101, 105, [["100.0", "4"], ["98.0", "5"]])]
    inside = DictBook(SNAP)
    inside.bids["98.0"] = "5"  # one of the event's two entries: the venue's state at 101
    inside.u = 101
    bids, asks = inside.top()
    served = [Served(SYMBOL, 101, 0, tuple(bids), tuple(asks))]
    found = check(Oracle(frames, SNAP), [observation(inside, T0)], [], snapshots=served)
    assert found.checks == 1 and found.divergent == 0 and found.unknown_update_ids == 0

    inside.bids["99.0"] = "7"
    found = check(Oracle(frames, SNAP), [observation(inside, T0)], [], snapshots=served)
    assert found.divergent == 1 and found.unknown_update_ids == 0
    assert found.examples[0]["reason"] == "top 20 differs from the snapshot the venue served at this id"
    assert found.examples[0]["bids"] == [{"level": 1, "subject": ["99.0", "7"], "oracle": ["99.0", "2"]}]

    inside.u = 102  # an id inside the event that the venue never served
    found = check(Oracle(frames, SNAP), [observation(inside, T0)], [], snapshots=served)
    assert found.unknown_update_ids == 1 and found.divergent == 1
    assert "nor a snapshot the venue served" in found.examples[0]["reason"]


def test_a_final_book_left_at_a_served_snapshot_is_short_not_divergent() -> None:
    frames = [depth(0, 95, 100), depth(1, 101, 105, [["100.0", "4"], ["98.0", "5"]])]
    served = [Served(SYMBOL, 101, 0)]
    final = FinalBook(SYMBOL, 101, True, [], [])
    found = check(Oracle(frames, SNAP), [final], [], snapshots=served)
    assert found.divergent == 0 and not found.final_book_correct
    assert found.finals[0].detail.startswith("synced but stopped at 101")


def test_a_book_at_an_id_inside_an_event_sits_between_the_states_around_it() -> None:
    frames = [depth(0, 95, 100), depth(1, 101, 105), depth(2, 106, 110), depth(3, 111, 115)]
    oracle = Oracle(frames, SNAP)
    assert not oracle.skips_states(SYMBOL, 100, 105) and not oracle.skips_states(SYMBOL, 103, 105)
    assert not oracle.skips_states(SYMBOL, 105, 108), "a snapshot served inside the next event"
    assert oracle.skips_states(SYMBOL, 100, 110) and oracle.skips_states(SYMBOL, 100, 108)


# Snapshot episodes and the flags (issue 11, item 2).


def test_every_episode_of_a_correct_subject_is_verified_and_one_lost_before_a_check_is_not() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames, skip={4, 9, 15})
    found = check(Oracle(frames, SNAP), messages, clients)
    assert found.episodes == 4 == found.episodes_verified  # the first sync and three resyncs
    t = T0 + frames[20].offset_ns + 100_000
    lost = [SyncEvent("gap_detected", t, "", SYMBOL), SyncEvent("synced", t + 1, "", SYMBOL)]
    unchecked = [*messages[:-1], *lost, SyncEvent("gap_detected", t + 2, "", SYMBOL), messages[-1]]
    found = check(Oracle(frames, SNAP), unchecked, clients)
    assert (found.episodes, found.episodes_verified) == (5, 4)
    assert found.unverified_episodes == [{"symbol": SYMBOL, "start_mono_ns": t + 1, "end_mono_ns": t + 2}]
    starts = found.timeline.episode_starts[SYMBOL]
    assert len(starts) == 5 and starts[-1] == t + 1


def test_the_final_book_verifies_an_episode_no_observation_checked() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames)
    late = [m for m in messages if not isinstance(m, BookObservation)]  # events and the final book only
    found = check(Oracle(frames, SNAP), late, clients)
    assert found.final_book_correct and (found.episodes, found.episodes_verified) == (1, 1)


def test_a_book_reported_before_the_first_snapshot_was_served_is_flagged() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames)
    first_book = next(m for m in messages if isinstance(m, BookObservation))
    on_time = [Served(SYMBOL, 100, first_book.applied_mono_ns - 1)]
    assert check(Oracle(frames, SNAP), messages, clients, snapshots=on_time).books_before_snapshot == 0
    late = [Served(SYMBOL, 100, T0 + frames[3].offset_ns + 100_000)]
    found = check(Oracle(frames, SNAP), messages, clients, snapshots=late)
    assert found.books_before_snapshot == 3
    assert [flag["flag"] for flag in found.flags] == ["books_before_snapshot"]  # one finding per symbol
    assert found.flags[0]["symbol"] == SYMBOL and "update 101" in found.flags[0]["detail"]
    assert check(Oracle(frames, SNAP), messages, clients, snapshots=[]).books_before_snapshot == 0


def test_output_for_a_symbol_never_asked_for_is_flagged_and_a_silent_asked_for_one_is_a_dark_book() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames)
    found = check(Oracle(frames, SNAP), messages, clients, requested=[SYMBOL])
    assert found.unrequested_output == 0 == found.dark_books and found.flags == []
    renamed = [replace(m, symbol="btcusdt") if not isinstance(m, SyncEvent) else m for m in messages]
    found = check(Oracle(frames, SNAP), renamed, clients, requested=[SYMBOL])
    assert found.unrequested_output == 21  # 20 books and the final one
    assert found.dark_books == 1
    flags = {flag["flag"]: flag for flag in found.flags}
    assert set(flags) == {"unrequested_output", "dark_books"}
    assert flags["unrequested_output"]["symbol"] == "btcusdt"
    assert flags["dark_books"]["detail"].endswith("the venue wrote 20 of its depth frames to the subject")


def test_a_book_that_stays_synced_while_nothing_arrives_past_the_limit_is_stale() -> None:
    frames = clean_frames()
    messages, clients = run_subject(frames, skip=set(range(10, 21)), gap_aware=False)
    limit = 5 * STEP

    def stale(messages: list, end: int) -> Findings:
        clock = replay_clock(T0, 1.0)
        return check(
            Oracle(frames, SNAP), messages, clients, to_mono=clock, frames=frames, stale_limit_ns=limit, end_mono_ns=end
        )

    found = stale(messages, T0 + 40 * STEP)
    assert found.stale_synced == 1  # one silence, however many updates it swallowed
    assert found.stale_limit_ns == limit and check(Oracle(frames, SNAP), messages, clients).stale_limit_ns is None
    assert found.flags[0]["flag"] == "stale_synced" and found.flags[0]["mono_ns"] == T0 + 10 * STEP + limit
    watchful = [*messages[:-1], SyncEvent("connection_closed", T0 + 12 * STEP), messages[-1]]
    assert stale(watchful, T0 + 40 * STEP).stale_synced == 0
    short = stale(messages, T0 + 12 * STEP)
    assert short.stale_synced == 0  # the run ended before the limit was reached
    with pytest.raises(ValueError, match="positive"):
        Checker(Oracle(frames, SNAP), stale_limit_ns=0)


def test_a_quiet_market_is_no_silence() -> None:
    timeline = SyncTimeline()
    timeline.mark(SYMBOL, 0, "synced")
    # Nothing written for 10 s, but nothing was due either: updates due at 1 s and 12 s were written on time.
    assert silent_while_synced(timeline, SYMBOL, [1_000, 12_000], [1_000, 12_000], 5_000, 20_000) == []
    found = silent_while_synced(timeline, SYMBOL, [1_000, 2_000, 3_000], [1_000, 12_000], 5_000, 20_000)
    assert found == [Silence(SYMBOL, 2_000, 12_000, 7_000)]


def test_a_divergence_names_its_first_differing_level_and_the_frames_before_it() -> None:
    @dataclass
    class Window:
        kind: str
        start_ns: int
        stop_ns: int
        heal_ns: int
        fault_id: str = ""

    frames = clean_frames()
    messages, clients = run_subject(frames, skip={5}, twice={6}, gap_aware=False)
    windows = [Window("drop", 4 * STEP, 5 * STEP, 6 * STEP, "drop.0")]
    found = check(Oracle(frames, SNAP), messages, clients, windows, replay_clock(T0, 1.0), frames=frames)
    example = found.examples[0]
    assert example["update_id"] == 106
    # Frame 5 set bid 85.0 and ask 125.0; the subject never had them: the best missing level is the bid.
    assert example["first_difference"] == {"side": "bids", "level": 3, "price": "85.0", "subject": None, "oracle": "5"}
    fates = {row["last_update_id"]: row["fate"] for row in example["context"]["frames"]}
    assert fates[105] == "dropped by drop.0"
    assert fates[104] == "sent intact" and fates[106] == "duplicated"
    assert fates[107] == "arrived only after the divergent book"
    assert example["context"]["faults"] == [
        {"fault_id": "drop.0", "kind": "drop", "start_ms": -2.085, "heal_ms": 0.0 - 0.085}
    ]


def test_the_first_difference_walks_prices_best_first_on_both_sides() -> None:
    match = LevelMatch()
    book = ([["10", "1"], ["9", "2"]], [["11", "1"], ["12", "5"]])
    assert first_difference(match, book, book) is None
    assert first_difference(match, ([[10.0, 1.0], [9.0, 3.0]], book[1]), book) == {
        "side": "bids",
        "level": 1,
        "price": "9",
        "subject": 3.0,
        "oracle": "2",
    }
    extra_ask = (book[0], [["10.5", "1"], *book[1]])
    assert first_difference(match, extra_ask, book) == {
        "side": "asks",
        "level": 0,
        "price": "10.5",
        "subject": "1",
        "oracle": None,
    }


def test_the_judge_imports_none_of_the_components_it_judges() -> None:
    """The oracle, checker and report share no code with a subject's book, sync, queue, client, decoders or
    sequencing rules."""
    code = (
        "import sys, harness.checker, harness.oracle, harness.report, harness.html_report; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('harness', 'replayer')))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    components = {"harness.book", "harness.sync", "harness.queue", "harness.client", "harness.default_subject"}
    # A venue's oracle rule is the judge's own copy; its decoder and sequencing rule are the subject's.
    subject_side = [m for m in loaded if m.startswith("harness.venues") and m.endswith((".decoder", ".sequencing"))]
    assert not components & set(loaded) and not subject_side, loaded
