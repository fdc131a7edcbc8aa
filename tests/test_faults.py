"""Fault plans on small synthetic frame lists: counts, windows, heals, and determinism by seed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.venues.binance_spot import DIALECT as BINANCE_SPOT
from replayer.faults import FAULT_KINDS, build_schedule, fault, sequence_breaks
from replayer.faults.stream import unreadable_payload
from replayer.timeline import (
    UNLIMITED,
    UNTIL_HEALED,
    ClientBufferLimit,
    Disconnect,
    FaultTag,
    Frame,
    HalfOpen,
    RefuseHandshakes,
    RestBehaviour,
    Send,
    Stall,
    Withheld,
    clean_schedule,
    merge_controls,
)

MS = 1_000_000
S = 1_000_000_000


def make_frames(seconds: int = 20, streams: tuple[str, ...] = ("btcusdt",), trades: bool = True) -> list[Frame]:
    """Depth frames every 100 ms per stream with contiguous U/u, and a trade 50 ms after every other one."""
    frames: list[Frame] = []
    last = {s: 1000 * (n + 1) for n, s in enumerate(streams)}
    for tick in range(seconds * 10):
        for symbol in streams:
            first, last[symbol] = last[symbol] + 1, last[symbol] + 3
            stream = f"{symbol}@depth@100ms"
            data = {"e": "depthUpdate", "E": tick, "s": symbol.upper(), "U": first, "u": last[symbol]}
            data |= {"b": [["100.5", "1.25"]], "a": [["101.0", "0"]]}
            payload = orjson.dumps({"stream": stream, "data": data})
            frames.append(Frame(len(frames), tick * 100 * MS, stream, payload, first, last[symbol]))
            if trades and tick % 2:
                trade = orjson.dumps({"stream": f"{symbol}@trade", "data": {"e": "trade", "p": "100.7", "q": "2"}})
                frames.append(Frame(len(frames), tick * 100 * MS + 50 * MS, f"{symbol}@trade", trade))
    return frames


FRAMES = make_frames()
DEPTH = [f for f in FRAMES if f.first_update_id is not None]


def sends(plan) -> list[Send]:
    return [e for e in plan.entries if isinstance(e, Send)]


def faulted(plan, kind: str) -> list[Send]:
    return [s for s in sends(plan) if s.fault == kind]


def in_window(frame: Frame, start_s: float, stop_s: float) -> bool:
    return start_s * S <= frame.offset_ns < stop_s * S


def test_no_faults_is_the_clean_schedule() -> None:
    plan = build_schedule(FRAMES, [], seed=1)
    assert plan.entries == clean_schedule(FRAMES)
    assert plan.injected == {}
    assert plan.windows == []
    assert plan.sequence_breaks == 0


def test_random_drop_removes_exactly_what_it_counts_and_only_depth_in_window() -> None:
    plan = build_schedule(FRAMES, [fault("drop", 2, 10, probability=0.3)], seed=7)
    sent = {s.frame.index for s in sends(plan)}
    missing = [f for f in FRAMES if f.index not in sent]
    assert plan.injected["drop"] == len(missing) > 0
    assert all(f.first_update_id is not None and in_window(f, 2, 10) for f in missing)
    (window,) = plan.windows
    assert window.start_ns == missing[0].offset_ns and window.heal_ns == missing[-1].offset_ns
    assert plan.sequence_breaks >= 1


def test_drop_every_nth() -> None:
    plan = build_schedule(FRAMES, [fault("drop", 1, 5, mode="nth", every=4)], seed=1)
    eligible = [f for f in DEPTH if in_window(f, 1, 5)]
    sent = {s.frame.index for s in sends(plan)}
    assert [f.index for f in eligible if f.index not in sent] == [f.index for f in eligible[3::4]]
    assert plan.injected["drop"] == len(eligible) // 4


def test_drop_all_frames_takes_trades_too() -> None:
    plan = build_schedule(FRAMES, [fault("drop", 1, 5, frames="all", probability=1.0)], seed=1)
    assert plan.injected["drop"] == sum(1 for f in FRAMES if in_window(f, 1, 5))


def test_gilbert_elliott_loses_in_bursts() -> None:
    spec = fault("drop", 0, 15, mode="gilbert_elliott", p_enter_bad=0.1, p_leave_bad=0.3)
    plan = build_schedule(FRAMES, [spec], seed=3)
    sent = {s.frame.index for s in sends(plan)}
    lost = [f.index not in sent for f in DEPTH if in_window(f, 0, 15)]
    runs = [n for n in _run_lengths(lost) if n]
    assert plan.injected["drop"] == sum(runs)
    assert max(runs) >= 2, "a bad state that lasts loses consecutive frames"
    quiet = fault("drop", 0, 15, mode="gilbert_elliott", loss_bad=0.0, loss_good=0.0)
    assert build_schedule(FRAMES, [quiet], seed=3).injected["drop"] == 0


def _run_lengths(flags: list[bool]) -> list[int]:
    runs, current = [], 0
    for flag in flags:
        if flag:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return [*runs, current]


def test_gap_loses_runs_of_consecutive_updates() -> None:
    plan = build_schedule(FRAMES, [fault("gap", 2, 14, count=4, length=3)], seed=5)
    sent = {s.frame.index for s in sends(plan)}
    lost = [f.first_update_id is not None and f.index not in sent for f in DEPTH]
    assert sorted(n for n in _run_lengths(lost) if n) == [3, 3, 3, 3]
    assert plan.injected["gap"] == 4
    assert len(plan.windows) == 4
    assert all(w.stop_ns - w.start_ns == 200 * MS and w.heal_ns == w.stop_ns for w in plan.windows)
    assert plan.sequence_breaks == 4


def test_gap_per_stream_on_a_two_symbol_recording() -> None:
    frames = make_frames(10, streams=("btcusdt", "ethusdt"), trades=False)
    plan = build_schedule(frames, [fault("gap", 1, 8, count=2, length=4)], seed=2)
    assert plan.injected["gap"] == 2
    assert plan.sequence_breaks == 2
    assert len(frames) - len(sends(plan)) == 8


def test_gap_that_does_not_fit_is_a_user_error() -> None:
    with pytest.raises(HarnessError, match=r"fault gap\.0 \(gap\): 10 runs of 5 need 50 depth frames"):
        build_schedule(FRAMES, [fault("gap", 1, 2, count=10, length=5)], seed=1)


def test_duplicate_at_once_follows_its_original() -> None:
    plan = build_schedule(FRAMES, [fault("duplicate", 1, 10, probability=0.4)], seed=11)
    schedule = sends(plan)
    copies = [i for i, s in enumerate(schedule) if s.fault == "duplicate"]
    assert plan.injected["duplicate"] == len(copies) > 0
    assert len(schedule) == len(FRAMES) + len(copies)
    for i in copies:
        assert schedule[i - 1].frame == schedule[i].frame and schedule[i - 1].fault is None
        assert schedule[i].offset_ns == schedule[i - 1].offset_ns
    assert plan.sequence_breaks == 0


def test_duplicate_later_arrives_after_newer_frames() -> None:
    plan = build_schedule(FRAMES, [fault("duplicate", 1, 10, probability=0.2, lag_frames=3)], seed=11)
    schedule = sends(plan)
    copies = [i for i, s in enumerate(schedule) if s.fault == "duplicate"]
    assert copies and plan.injected["duplicate"] == len(copies)
    for i in copies:
        frame = schedule[i].frame
        newer = [s for s in schedule[:i] if s.frame.stream == frame.stream and s.frame.index > frame.index]
        assert len({s.frame.index for s in newer}) == 3
    assert plan.sequence_breaks == 0


def test_reorder_only_permutes_within_windows() -> None:
    plan = build_schedule(FRAMES, [fault("reorder", 1, 10, window=3, probability=0.5)], seed=4)
    schedule = sends(plan)
    assert sorted(s.frame.index for s in schedule) == [f.index for f in FRAMES]
    assert [s.offset_ns for s in schedule] == [f.offset_ns for f in FRAMES]
    depth_order = [s.frame.index for s in schedule if s.frame.first_update_id is not None]
    moved = [a for a, b in zip(depth_order, [f.index for f in DEPTH], strict=True) if a != b]
    assert plan.injected["reorder"] == len(moved) == len(faulted(plan, "reorder")) > 0
    assert plan.sequence_breaks >= 1


def test_delay_keeps_order_and_counts_delayed_frames() -> None:
    plan = build_schedule(FRAMES, [fault("delay", 2, 8, base=0.05, jitter=0.3)], seed=9)
    schedule = sends(plan)
    assert [s.frame.index for s in schedule] == [f.index for f in FRAMES]
    assert all(s.offset_ns >= s.frame.offset_ns for s in schedule)
    delayed = faulted(plan, "delay")
    assert plan.injected["delay"] == len(delayed) == sum(1 for f in FRAMES if in_window(f, 2, 8))
    assert all(s.offset_ns >= s.frame.offset_ns + 50 * MS for s in delayed)
    (window,) = plan.windows
    assert window.heal_ns == max(s.offset_ns for s in schedule if s.offset_ns != s.frame.offset_ns)
    assert plan.sequence_breaks == 0


def test_burst_holds_then_releases_at_once() -> None:
    plan = build_schedule(FRAMES, [fault("burst", 2, 12, count=2, hold=1.0)], seed=6)
    assert len(plan.windows) == 2
    for window in plan.windows:
        held = [s for s in faulted(plan, "burst") if window.start_ns <= s.frame.offset_ns < window.stop_ns]
        assert held and all(s.offset_ns == window.stop_ns for s in held)
        assert len(held) == sum(1 for f in FRAMES if window.start_ns <= f.offset_ns < window.stop_ns)
    assert plan.injected["burst"] == len(faulted(plan, "burst"))
    assert [s.frame.index for s in sends(plan)] == [f.index for f in FRAMES]


@pytest.mark.parametrize("mode", ["invalid_json", "truncated", "wrong_types", "invalid_utf8"])
def test_corrupt_payloads_cannot_be_read_as_the_original(mode: str) -> None:
    original = DEPTH[0].payload
    broken = unreadable_payload(original, mode)
    assert broken != original
    if mode == "wrong_types":
        data = orjson.loads(broken)["data"]
        assert isinstance(data["U"], str) and isinstance(data["b"], dict)
    else:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(broken)
    if mode == "invalid_utf8":
        with pytest.raises(UnicodeDecodeError):
            broken.decode()
    else:
        broken.decode()


def test_corrupt_marks_binary_only_for_invalid_utf8() -> None:
    plan = build_schedule(FRAMES, [fault("corrupt", 1, 12, probability=0.5)], seed=2)
    broken = faulted(plan, "corrupt")
    assert plan.injected["corrupt"] == len(broken) > 4
    assert len(sends(plan)) == len(FRAMES)
    for send in broken:
        assert send.payload != send.frame.payload
        utf8 = True
        try:
            send.payload.decode()
        except UnicodeDecodeError:
            utf8 = False
        assert send.binary == (not utf8)
    assert plan.sequence_breaks >= 1


def test_stall_entries() -> None:
    plan = build_schedule(FRAMES, [fault("stall", 2, 12, count=2, duration=1.5)], seed=1)
    stalls = [e for e in plan.entries if isinstance(e, Stall)]
    assert len(stalls) == plan.injected["stall"] == 2
    assert all(s.duration_ns == 1500 * MS and not s.answer_pings for s in stalls)
    assert all(s.offset_ns >= 2 * S and s.offset_ns + s.duration_ns <= 12 * S for s in stalls)
    assert [w.heal_ns for w in plan.windows] == [s.offset_ns + s.duration_ns for s in stalls]
    assert len(sends(plan)) == len(FRAMES), "the server skips frames for stalled connections only"


def test_a_half_open_stall_never_heals_the_connections_it_silences() -> None:
    plan = build_schedule(FRAMES, [fault("stall", 2, 12, count=2, duration=3.0, mode="half_open")], seed=1)
    moments = [e for e in plan.entries if isinstance(e, HalfOpen)]
    assert not any(isinstance(e, Stall) for e in plan.entries)
    assert len(moments) == plan.injected["stall"] == 2 and moments[1].offset_ns - moments[0].offset_ns >= 3 * S
    # New connections are served at once, so the venue has healed at the moment itself.
    assert [(w.start_ns, w.heal_ns) for w in plan.windows] == [(m.offset_ns, m.offset_ns) for m in moments]
    assert len(sends(plan)) == len(FRAMES)
    with pytest.raises(HarnessError, match=r"stall.*answer_pings.*mode 'late' only"):
        fault("stall", 2, 12, mode="half_open", answer_pings=True)
    with pytest.raises(HarnessError, match="key 'mode': expected one of 'late', 'half_open'"):
        fault("stall", 2, 12, mode="forever")


def test_disconnects_keep_their_spacing_so_a_client_can_come_back_between() -> None:
    plan = build_schedule(FRAMES, [fault("disconnect", 1, 15, count=4, spacing=3.0)], seed=7)
    at = [e.offset_ns for e in plan.entries if isinstance(e, Disconnect)]
    assert len(at) == 4 and all(b - a >= 3 * S for a, b in pairwise(at))
    with pytest.raises(HarnessError, match="4 disconnects 4s apart do not fit in the window"):
        build_schedule(FRAMES, [fault("disconnect", 1, 15, count=4, spacing=4.0)], seed=7)


def test_disconnect_modes_and_codes() -> None:
    plan = build_schedule(FRAMES, [fault("disconnect", 1, 15, count=9, mode="mixed", code=4001, spacing=1.5)], seed=1)
    cuts = [e for e in plan.entries if isinstance(e, Disconnect)]
    assert len(cuts) == plan.injected["disconnect"] == 9
    assert {c.mode for c in cuts} == {"close", "abort", "reset"}
    assert all(c.code == 4001 for c in cuts)
    one = build_schedule(FRAMES, [fault("disconnect", 5, 5)], seed=1)
    assert [(e.offset_ns, e.mode) for e in one.entries if isinstance(e, Disconnect)] == [(5 * S, "close")]


def test_handshake_refused_arms_then_heals() -> None:
    plan = build_schedule(FRAMES, [fault("handshake_refused", 3, 6, status=429, attempts=4)], seed=1)
    controls: list[Any] = [e for e in plan.entries if not isinstance(e, Send)]
    assert [type(c) for c in controls] == [RefuseHandshakes, Disconnect, RefuseHandshakes]
    assert (controls[0].offset_ns, controls[0].status, controls[0].count) == (3 * S, 429, 4)
    assert (controls[2].offset_ns, controls[2].count) == (6 * S, 0)
    assert plan.injected["handshake_refused"] == 4


def test_snapshot_faults_set_and_restore_rest_behaviour() -> None:
    plan = build_schedule(FRAMES, [fault("snapshot", 2, 4, mode="stale", lag_frames=7, requests=2)], seed=1)
    controls: list[Any] = [e for e in plan.entries if not isinstance(e, Send)]
    assert [type(c) for c in controls] == [RestBehaviour, Disconnect, RestBehaviour]
    assert (controls[0].mode, controls[0].count, controls[0].lag_frames) == ("stale", 2, 7)
    assert (controls[2].offset_ns, controls[2].mode) == (4 * S, "normal")
    quiet = build_schedule(FRAMES, [fault("snapshot", 0, 2, mode="error", status=429, trigger="none")], seed=1)
    controls = [e for e in quiet.entries if not isinstance(e, Send)]
    assert [(type(c), c.mode, c.status) for c in controls] == [
        (RestBehaviour, "error", 429),
        (RestBehaviour, "normal", 200),
    ]
    slow = build_schedule(FRAMES, [fault("snapshot", 0, 2, mode="slow", delay=1.5)], seed=1)
    first = slow.entries[0]
    assert isinstance(first, RestBehaviour) and first.delay_ns == 1500 * MS
    barely = build_schedule(FRAMES, [fault("snapshot", 0, 4, mode="barely_stale", lag_updates=3, requests=3)], seed=1)
    armed = barely.entries[0]
    assert isinstance(armed, RestBehaviour)
    assert (armed.mode, armed.count, armed.lag_frames) == ("barely_stale", 3, 3)
    default = build_schedule(FRAMES, [fault("snapshot", 0, 4, mode="barely_stale")], seed=1).entries[0]
    assert isinstance(default, RestBehaviour) and default.lag_frames == 2
    with pytest.raises(HarnessError, match=r"key 'lag_updates': expected an integer >= 1, got 0"):
        fault("snapshot", 2, 4, mode="barely_stale", lag_updates=0)


def test_a_snapshot_fault_triggered_by_a_gap_loses_one_update_per_stream_instead_of_a_disconnect() -> None:
    frames = make_frames(streams=("btcusdt", "ethusdt"))
    plan = build_schedule(frames, [fault("snapshot", 2, 4, mode="error", trigger="gap")], seed=1)
    assert not any(isinstance(e, Disconnect) for e in plan.entries)
    lost = {f.index for f in frames} - {s.frame.index for s in sends(plan)}
    first_in_window = {
        stream: min(f.index for f in frames if f.stream == stream and f.offset_ns >= 2 * S)
        for stream in (
            "btcusdt@depth@100ms",
            "ethusdt@depth@100ms",
        )
    }
    assert lost == set(first_in_window.values()) and plan.sequence_breaks == 2
    with pytest.raises(HarnessError, match="trigger 'gap' needs a depth update"):
        build_schedule(frames, [fault("snapshot", 25, 30, mode="error", trigger="gap")], seed=1)


def test_slow_consumer_limits_then_bursts_then_lifts() -> None:
    plan = build_schedule(FRAMES, [fault("slow_consumer", 4, 9, max_bytes=2048, hold=2.0)], seed=1)
    limits = [e for e in plan.entries if isinstance(e, ClientBufferLimit)]
    assert [(e.offset_ns, e.max_bytes) for e in limits] == [(4 * S, 2048), (9 * S, UNLIMITED)]
    held = faulted(plan, "slow_consumer")
    assert len(held) == sum(1 for f in FRAMES if in_window(f, 4, 6))
    assert sum(len(s.payload) for s in held) > 2048
    assert all(s.offset_ns == 6 * S for s in held)
    assert plan.injected["slow_consumer"] == 1
    assert plan.windows[0].heal_ns == 9 * S


def test_an_exchange_restart_can_keep_rest_down_after_the_websocket_is_back() -> None:
    plan = build_schedule(FRAMES, [fault("exchange_restart", 5, 8, rest_outage=2.5)], seed=1)
    rest = [(e.offset_ns, e.mode, e.tags) for e in plan.entries if isinstance(e, RestBehaviour)]
    ws_tag = next(e.tags[0] for e in plan.entries if isinstance(e, Disconnect))
    rest_tag = FaultTag("exchange_restart", "exchange_restart.0", 0, "rest")
    assert rest == [(5 * S, "error", ()), (8 * S, "error", (rest_tag,)), (10_500 * MS, "normal", ())]
    assert [(e.offset_ns, e.count) for e in plan.entries if isinstance(e, RefuseHandshakes)] == [
        (5 * S, UNTIL_HEALED),
        (8 * S, 0),
    ]
    assert plan.windows[0].heal_ns == 10_500 * MS
    # Served only when both halves happened: a client cut, and a snapshot refused with the WebSocket back.
    assert plan.served([ws_tag]) == {"exchange_restart": 0}
    assert plan.served([ws_tag, rest_tag]) == {"exchange_restart": 1} == plan.injected
    with pytest.raises(HarnessError, match=r"heals at 18\.00s"):
        build_schedule(FRAMES, [fault("exchange_restart", 5, 8, rest_outage=10.0)], seed=1)


def test_exchange_restart_is_a_disconnect_plus_a_gap_on_binance_spot() -> None:
    plan = build_schedule(FRAMES, [fault("exchange_restart", 5, 8)], seed=1)
    controls: list[Any] = [e for e in plan.entries if not isinstance(e, Send)]
    assert [(type(c), c.offset_ns) for c in controls] == [
        (RefuseHandshakes, 5 * S),
        (RestBehaviour, 5 * S),
        (Disconnect, 5 * S),
        (RefuseHandshakes, 8 * S),
        (RestBehaviour, 8 * S),
    ]
    assert controls[0].count == UNTIL_HEALED and controls[1].status == 503 and controls[2].code == 1012
    assert controls[3].count == 0 and controls[4].mode == "normal"
    assert all(not in_window(s.frame, 5, 8) for s in sends(plan))
    assert plan.sequence_breaks == 1


def test_control_entries_come_before_sends_at_the_same_offset() -> None:
    plan = build_schedule(FRAMES, [fault("disconnect", 3, 3)], seed=1)
    at = [e for e in plan.entries if e.offset_ns == 3 * S]
    assert isinstance(at[0], Disconnect) and isinstance(at[1], Send)
    assert [e.offset_ns for e in plan.entries] == sorted(e.offset_ns for e in plan.entries)


def test_a_fault_that_heals_too_late_is_refused() -> None:
    with pytest.raises(HarnessError, match=r"fault drop\.0 \(drop\): heals at 18\.00s, after 16\.96s"):
        build_schedule(FRAMES, [fault("drop", 1, 18)], seed=1)
    with pytest.raises(HarnessError, match=r"fault delay\.0 \(delay\): heals at"):
        build_schedule(FRAMES, [fault("delay", "50%", "85%", base=0.5)], seed=1)


def test_fractions_of_the_recording() -> None:
    plan = build_schedule(FRAMES, [fault("disconnect", "50%", "50%")], seed=1)
    assert plan.windows[0].start_ns == FRAMES[-1].offset_ns // 2


def test_duplicate_fault_ids_are_refused() -> None:
    specs = [fault("drop", 1, 2, fault_id="x"), fault("gap", 3, 4, fault_id="x")]
    with pytest.raises(HarnessError, match="fault id 'x' is used twice"):
        build_schedule(FRAMES, specs, seed=1)


def test_sequence_breaks_counts_what_a_client_would_see() -> None:
    a, b, c, d = DEPTH[:4]
    order = [Send(0, a, a.payload), Send(1, c, c.payload), Send(2, b, b.payload), Send(3, d, d.payload)]
    assert sequence_breaks(order) == 1, "c after a is a gap; b is then old and skipped; d follows c"
    assert sequence_breaks([Send(0, a, a.payload), Send(1, b, b"x", fault="corrupt"), Send(2, c, c.payload)]) == 1
    assert sequence_breaks([Send(0, a, a.payload), Send(1, b, b"x", fault="delay"), Send(2, c, c.payload)]) == 1


# Determinism: the schedule is a function of (frames, faults, seed) and nothing else.

EVERYTHING = [
    fault("drop", 1, 4, probability=0.2),
    fault("gap", 1, 4, count=2, length=2),
    fault("duplicate", 4, 6, probability=0.3, lag_frames=1),
    fault("reorder", 6, 8, probability=0.5),
    fault("delay", 8, 10, jitter=0.2),
    fault("burst", 10, 12, hold=0.5),
    fault("corrupt", 12, 14, probability=0.3),
    fault("stall", 1, 14, duration=1.0),
    fault("disconnect", 1, 14, count=3, mode="mixed"),
    fault("handshake_refused", 14, 15),
    fault("snapshot", 14, 15, mode="too_new"),
    fault("slow_consumer", 15, 16, hold=0.5),
    fault("exchange_restart", 16, 16.5),
]


def test_every_kind_is_exercised_here() -> None:
    assert {f.kind for f in EVERYTHING} == set(FAULT_KINDS)


def test_same_inputs_same_schedule_and_counts() -> None:
    first = build_schedule(FRAMES, EVERYTHING, seed=42)
    second = build_schedule(list(FRAMES), list(EVERYTHING), seed=42)
    assert first == second
    assert all(first.injected[kind] > 0 for kind in FAULT_KINDS)


def test_every_armed_unit_has_an_entry_that_can_serve_it() -> None:
    """`injected` counts armed units; each one is tagged on the entries that serve it (every part of it),
    and every tag names an armed unit, so `served` can never exceed `injected`."""
    plan = build_schedule(FRAMES, EVERYTHING, seed=42)
    tags = {tag for entry in plan.entries for tag in entry.tags}
    assert Counter(unit.kind for unit in plan.units) == {k: n for k, n in plan.injected.items() if n}
    assert {(t.fault_id, t.unit, t.part) for t in tags} == {
        (u.fault_id, u.unit, part) for u in plan.units for part in u.parts
    }
    assert plan.served(tags) == plan.injected
    assert plan.served(()) == dict.fromkeys(plan.injected, 0)
    by_fault = plan.by_fault(tags)
    assert list(by_fault) == [f"{f.kind}.0" for f in EVERYTHING]
    assert all(row["armed"] == row["served"] > 0 for row in by_fault.values())
    # Lost frames leave a marker where they would have gone out, for the server to tell who missed them.
    withheld = [e for e in plan.entries if isinstance(e, Withheld)]
    assert {e.tags[0].kind for e in withheld} == {"drop", "gap"}


def test_another_seed_gives_another_schedule() -> None:
    assert build_schedule(FRAMES, EVERYTHING, seed=1).entries != build_schedule(FRAMES, EVERYTHING, seed=2).entries


def _decisions(plan, kind: str) -> Counter[tuple[int, int]]:
    return Counter((s.frame.index, s.offset_ns) for s in faulted(plan, kind))


def test_adding_a_fault_leaves_the_others_decisions_alone() -> None:
    base = [fault("drop", 1, 6, probability=0.3), fault("corrupt", 8, 12, probability=0.3)]
    more = [fault("disconnect", 1, 14, count=2), base[0], fault("duplicate", 13, 14, probability=0.5), base[1]]
    before, after = build_schedule(FRAMES, base, seed=5), build_schedule(FRAMES, more, seed=5)
    gone = lambda plan: {f.index for f in FRAMES} - {s.frame.index for s in sends(plan)}  # noqa: E731
    assert gone(before) == gone(after) and gone(before)
    assert _decisions(before, "corrupt") == _decisions(after, "corrupt")
    assert {k: before.injected[k] for k in ("drop", "corrupt")} == {k: after.injected[k] for k in ("drop", "corrupt")}


def test_a_second_fault_of_a_kind_keeps_the_first_ones_stream() -> None:
    one = [fault("corrupt", 2, 6, probability=0.3)]
    two = [*one, fault("corrupt", 8, 12, probability=0.3)]
    first = {s.frame.index for s in faulted(build_schedule(FRAMES, one, seed=3), "corrupt")}
    both = {s.frame.index for s in faulted(build_schedule(FRAMES, two, seed=3), "corrupt")}
    assert first and first == {i for i in both if FRAMES[i].offset_ns < 6 * S}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    kinds=st.lists(st.sampled_from([f for f in EVERYTHING if f.kind != "exchange_restart"]), max_size=5),
)
def test_any_plan_keeps_its_invariants(seed: int, kinds: list) -> None:
    specs = [
        fault(f.kind, f.start.value, f.stop.value, fault_id=f"{f.kind}-{i}", **f.params) for i, f in enumerate(kinds)
    ]
    plan = build_schedule(FRAMES, specs, seed)
    offsets = [e.offset_ns for e in plan.entries]
    assert offsets == sorted(offsets)
    schedule = sends(plan)
    broken = {s.frame.index for s in schedule if s.payload != s.frame.payload}
    assert len(broken) <= plan.injected.get("corrupt", 0)
    assert all(s.binary == (b"\xff" in s.payload) for s in schedule)
    assert len(faulted(plan, "duplicate")) == plan.injected.get("duplicate", 0)
    assert all(w.start_ns <= w.stop_ns <= w.heal_ns <= plan.heal_by_ns for w in plan.windows)
    assert plan == build_schedule(FRAMES, specs, seed)


def test_a_fault_the_venue_cannot_have_is_listed_not_armed() -> None:
    """On a venue whose snapshots come over the WebSocket a REST snapshot fault is not applicable: the
    plan leaves it out and says why, and the faults that apply are armed as on any venue."""
    stream_venue = replace(BINANCE_SPOT, name="stream-venue", snapshot_transport="stream")
    faults = [
        fault("snapshot", 2, 4, mode="stale"),
        fault("exchange_restart", 5, 6, rest_outage=1.0),
        fault("drop", 2, 10, probability=0.3),
    ]
    plan = build_schedule(FRAMES, faults, seed=7, venue=stream_venue)
    assert list(plan.not_applicable) == ["snapshot.0", "exchange_restart.0.rest_outage"]
    assert "over the WebSocket" in plan.not_applicable["snapshot.0"]
    # The restart still happens; only its REST outage, a part of its own, is left out.
    assert plan.injected["snapshot"] == 0 and plan.injected["exchange_restart"] == 1
    assert [u.parts for u in plan.units if u.kind == "exchange_restart"] == [frozenset({"ws"})]
    # Each fault draws from its own stream, so leaving the snapshot fault out does not move the drops.
    without = [fault("exchange_restart", 5, 6, rest_outage=0.0), faults[2]]
    assert plan.entries == build_schedule(FRAMES, without, seed=7).entries
    assert plan.injected["drop"] > 0
    on_binance = build_schedule(FRAMES, faults, seed=7, venue=BINANCE_SPOT)
    assert on_binance.not_applicable == {} and on_binance.injected["snapshot"] == 1


def test_sequence_breaks_follow_the_venue_s_link_where_it_sends_one() -> None:
    """USD-M frames chain on `pu`: ids that skip are no break, a `pu` that does not match is one."""
    linked = [
        Frame(0, 0, "btcusdt@depth@0ms", b"a", 10, 20, "BTCUSDT", prev_id=5),
        Frame(1, 1, "btcusdt@depth@0ms", b"b", 31, 40, "BTCUSDT", prev_id=20),
        Frame(2, 2, "btcusdt@depth@0ms", b"c", 41, 45, "BTCUSDT", prev_id=39),
    ]
    assert sequence_breaks(clean_schedule(linked)) == 1
    assert sequence_breaks(clean_schedule(linked[:2])) == 0


def test_the_schedule_is_made_again_on_every_walk_and_keeps_only_what_the_faults_touched() -> None:
    faults = [
        fault("drop", 2, 12, mode="random", probability=0.2),
        fault("duplicate", 2, 12, probability=0.3, lag_frames=2),
        fault("reorder", 2, 12, probability=0.5),
        fault("delay", 2, 12, jitter=0.3),
        fault("stall", 13, 15),
    ]
    plan = build_schedule(FRAMES, faults, seed=3)
    first, second = list(plan.entries), list(plan.entries)
    assert first == second and len(plan.entries) == len(first)
    assert list(plan.entries.controls) == [e for e in first if not isinstance(e, Send)]
    assert plan.entries[len(first) - 1] == first[-1] and plan.entries[2:5] == first[2:5]
    assert len(plan.units) == sum(plan.injected.values()) and list(plan.units)[-1] == plan.units[-1]
    assert plan.entries != build_schedule(FRAMES, faults, seed=4).entries


def test_a_gap_inside_an_outage_has_nothing_left_to_lose_and_arms_nothing() -> None:
    plan = build_schedule(FRAMES, [fault("exchange_restart", 5, 8), fault("gap", 5.5, 7.5, count=1, length=2)], seed=1)
    assert plan.injected == {"exchange_restart": 1, "gap": 0}
    assert not any(isinstance(e, Withheld) for e in plan.entries.controls)


class _CountedWalks(Sequence[Frame]):
    """The frames, counting how often something walks them from the start."""

    def __init__(self, frames: list[Frame]) -> None:
        self._frames = frames
        self.walks = 0

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index: Any) -> Any:
        return self._frames[index]

    def __iter__(self) -> Iterator[Frame]:
        self.walks += 1
        return iter(self._frames)


@pytest.mark.parametrize(
    "faults",
    [[], [fault("disconnect", 1, 15, count=4, spacing=3.0), fault("stall", 2, 12, count=2, duration=1.5)]],
    ids=["clean", "connection faults"],
)
def test_a_plan_whose_faults_change_no_send_does_not_walk_the_frames(faults: list) -> None:
    """The schedule is then the frames as they are, with the controls put in: building the plan costs
    nothing per frame (a replay of `clean` walks the recording only to serve it). Sequence breaks are
    counted by one walk, the first time they are asked for."""
    frames = _CountedWalks(FRAMES)
    plan = build_schedule(frames, faults, seed=1)
    assert frames.walks == 0
    assert len(plan.entries) == len(FRAMES) + len(plan.entries.controls)
    assert plan.entries == build_schedule(FRAMES, faults, seed=1).entries
    walks = frames.walks
    assert plan.sequence_breaks == 0 and plan.sequence_breaks == 0
    assert frames.walks == walks + 1


@settings(max_examples=80, deadline=None)
@given(
    sends=st.lists(st.integers(0, 20), max_size=12).map(sorted),
    controls=st.lists(st.integers(0, 20), max_size=6).map(sorted),
)
def test_controls_are_merged_before_the_sends_due_at_their_offset(sends: list[int], controls: list[int]) -> None:
    """The schedule's merge, against a sort: by offset, at one offset controls (in their order) first."""
    frame = FRAMES[0]
    send_entries = [Send(at, frame, frame.payload) for at in sends]
    control_entries = [Withheld(at, f"s{n}") for n, at in enumerate(controls)]
    merged = list(merge_controls(iter(send_entries), control_entries))
    keyed = [(at, 0, n) for n, at in enumerate(controls)] + [(at, 1, n) for n, at in enumerate(sends)]
    expected = [control_entries[n] if kind == 0 else send_entries[n] for _, kind, n in sorted(keyed)]
    assert merged == expected
