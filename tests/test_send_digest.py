"""The send digest, fed as the venue writes, against the send log read back after the run."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.checker import send_log_clock
from harness.deliveries import ChainJudge, Deliveries
from harness.oracle import DepthFrame
from harness.send_digest import SendDigest
from replayer.timeline import Frame, Send
from replayer.venue_actions import Write

SYMBOLS = ("BTCUSDT", "ETHUSDT")


@dataclass(frozen=True)
class Due:
    offset_ns: int


@dataclass(frozen=True)
class Sent:
    frame_index: int
    intended_mono_ns: int
    write_mono_ns: int
    fault: str | None = None


@dataclass
class Conn:
    client_id: int
    sends: list[Sent]


@dataclass(frozen=True)
class Snap:
    symbol: str
    last_update_id: int
    served_mono_ns: int


class Depth:
    """The oracle's depth index over every third frame, two symbols taking turns, one update each."""

    def __init__(self, frames: int) -> None:
        self._frames = {
            i: DepthFrame(i, SYMBOLS[(i // 3) % 2], 100 + i // 6, 100 + i // 6, None) for i in range(0, frames, 3)
        }

    def frame(self, index: int) -> DepthFrame | None:
        return self._frames.get(index)

    def depth_frame_ids(self):
        return iter(self._frames.values())


@st.composite
def replays(draw):
    """Frames with offsets that repeat, connections that each get some of them (in order, or a few
    swapped, some corrupted), written in batches at shared times across connections."""
    count = draw(st.integers(1, 40))
    steps = draw(st.lists(st.sampled_from([0, 0, 1, 5]), min_size=count, max_size=count))
    offsets = [sum(steps[: i + 1]) for i in range(count)]
    conns = []
    for client_id in range(draw(st.integers(1, 3))):
        picked = [i for i in range(count) if draw(st.booleans()) or draw(st.booleans())]
        if len(picked) > 1 and draw(st.booleans()):
            k = draw(st.integers(0, len(picked) - 2))
            picked[k], picked[k + 1] = picked[k + 1], picked[k]
        sends, t = [], 1_000 + client_id
        for i in picked:
            t += draw(st.sampled_from([0, 0, 0, 7]))
            fault = "corrupt_json" if draw(st.integers(0, 9)) == 0 else None
            sends.append(Sent(i, 500 + offsets[i], t, fault))
        conns.append(Conn(client_id, sends))
    return [Due(o) for o in offsets], conns


def _as_written(conns: list[Conn]) -> list[tuple[int, Sent]]:
    """Every connection's writes in time order, as the venue makes them (ties: the earlier connection)."""
    tagged = [[(send.write_mono_ns, conn.client_id, send) for send in conn.sends] for conn in conns]
    return [(client_id, send) for _, client_id, send in heapq.merge(*tagged, key=lambda row: row[0])]


def _online(frames: Sequence[Due | Frame], conns: list[Conn]) -> SendDigest:
    digest = SendDigest(Depth(len(frames)), len(frames))
    for client_id, send in _as_written(conns):
        digest.add(client_id, send.frame_index, send.intended_mono_ns, send.write_mono_ns, send.fault)
    return digest


@settings(max_examples=60, deadline=None)
@given(replays())
def test_the_clock_built_as_writes_happen_answers_as_the_send_log_does(replay) -> None:
    frames, conns = replay
    conns = [Conn(c.client_id, sorted(c.sends, key=lambda s: s.write_mono_ns)) for c in conns]
    expected = send_log_clock(frames, conns)
    clock = _online(frames, conns).clock(lambda: (frame.offset_ns for frame in frames))
    for offset in range(-1, frames[-1].offset_ns + 3):
        assert clock(offset) == expected(offset), offset


@settings(max_examples=60, deadline=None)
@given(replays())
def test_the_digest_fed_online_equals_the_send_log_read_once(replay) -> None:
    frames, conns = replay
    conns = [Conn(c.client_id, sorted(c.sends, key=lambda s: s.write_mono_ns)) for c in conns]
    online, read = _online(frames, conns), SendDigest.of_clients(Depth(len(frames)), conns)
    for name in ("frames_sent", "depth_frames_sent", "gaps_injected", "out_of_order_sent", "written"):
        assert getattr(online, name) == getattr(read, name), name
    assert online.first_write == read.first_write
    assert online.first_intended == read.first_intended
    assert list(online.write_times()) == sorted({s.write_mono_ns for c in conns for s in c.sends})
    assert list(read.write_times()) == list(online.write_times())


@settings(max_examples=60, deadline=None)
@given(replays())
def test_a_socket_write_digested_at_once_equals_its_frames_one_by_one(replay) -> None:
    frames, conns = replay
    conns = [Conn(c.client_id, sorted(c.sends, key=lambda s: s.write_mono_ns)) for c in conns]
    by_frame, by_write = _online(frames, conns), SendDigest(Depth(len(frames)), len(frames))
    written = _as_written(conns)
    for (client_id, write_ns), group in groupby(written, key=lambda row: (row[0], row[1].write_mono_ns)):
        sends = [send for _, send in group]
        writes = [
            Write(client_id, b"", True, Send(0, Frame(s.frame_index, 0, "s", b""), b"", s.fault), s.intended_mono_ns)
            for s in sends
        ]
        by_write.on_written(client_id, writes, write_ns)
    for name in ("frames_sent", "depth_frames_sent", "gaps_injected", "out_of_order_sent", "written"):
        assert getattr(by_write, name) == getattr(by_frame, name), name
    assert by_write.first_write == by_frame.first_write
    assert by_write.first_intended == by_frame.first_intended
    assert list(by_write.write_times()) == list(by_frame.write_times())
    offsets = [frame.offset_ns for frame in frames]
    clocks = [digest.clock(lambda: iter(offsets)) for digest in (by_frame, by_write)]
    assert [clocks[0](o) for o in range(-1, offsets[-1] + 3)] == [clocks[1](o) for o in range(-1, offsets[-1] + 3)]


@settings(max_examples=50, deadline=None)
@given(replays(), st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(99, 108), st.integers(990, 1_300))))
def test_the_hole_search_from_the_digest_judges_as_from_the_send_log(replay, asks) -> None:
    frames, conns = replay
    depth = Depth(len(frames))
    snaps = [Snap("BTCUSDT", 99, 0), Snap("ETHUSDT", 100, 1_100)]
    from_log = ChainJudge(Deliveries(depth.depth_frame_ids(), conns, snaps))
    from_digest = ChainJudge(SendDigest.of_clients(depth, conns).deliveries(snaps))
    for symbol, update_id, applied in asks:
        assert from_digest.judge(symbol, update_id, applied) == from_log.judge(symbol, update_id, applied)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from([0, 0, 1, 5, -3]), min_size=1, max_size=60),
    st.lists(st.booleans(), min_size=60, max_size=60),
    st.lists(st.sampled_from([0, 0, 0, 7]), min_size=60, max_size=60),
)
def test_one_connection_in_order_gets_the_clock_of_every_frame(steps, written, pauses) -> None:
    """The clock from each batch's last frame (one connection, frames in order) against the send log's,
    offsets that repeat and, now and then, go back."""
    offsets = [1_000 + sum(steps[: i + 1]) for i in range(len(steps))]
    frames = [Frame(i, offset, "btcusdt@depth", b"") for i, offset in enumerate(offsets)]
    sends, t = [], 5_000
    for i in range(len(frames)):
        t += pauses[i]
        if written[i]:
            sends.append(Sent(i, 0, t))
    conns = [Conn(1, sends)]
    expected = send_log_clock(frames, conns)
    clock = _online(frames, conns).clock(lambda: iter(offsets))
    for offset in range(min(offsets) - 1, max(offsets) + 3):
        assert clock(offset) == expected(offset), offset


def test_the_clock_keeps_a_point_per_write_batch_not_per_frame() -> None:
    frames = [Due(i * 10) for i in range(1_000)]
    digest = SendDigest(Depth(len(frames)), len(frames))
    for i in range(1_000):
        digest.add(1, i, 0, 5_000 + i // 64)  # batches of 64 frames, one write time each
    clock = digest.clock(lambda: (frame.offset_ns for frame in frames))
    assert len(clock) == 16
    assert clock(0) == 5_000 and clock(640) == 5_001 and clock(641) == 5_001 and clock(10_000) == 5_016


def test_frames_far_apart_and_frames_written_late_keep_their_first_write() -> None:
    frames = [Frame(i, i, "btcusdt@depth", b"") for i in range(200_000)]
    sends = [Sent(5, 0, 10), Sent(150_000, 0, 10), Sent(7, 0, 11), Sent(199_999, 0, 12), Sent(6, 0, 12)]
    digest = SendDigest(Depth(0), len(frames))
    for send in sends:
        digest.add(1, send.frame_index, 0, send.write_mono_ns)
    digest.add(2, 5, 0, 13)  # another connection, later: the first write stands
    clock = digest.clock(lambda: (frame.offset_ns for frame in frames))
    expected = send_log_clock(frames, [Conn(1, sends), Conn(2, [Sent(5, 0, 13)])])
    for offset in (0, 5, 6, 7, 8, 149_999, 150_000, 150_001, 199_999, 200_000):
        assert clock(offset) == expected(offset), offset
    assert [clock(o) for o in (5, 6, 7, 150_000, 199_999, 200_000)] == [10, 12, 11, 10, 12, 13]


def test_writes_that_go_back_in_time_are_refused_when_the_clock_is_kept() -> None:
    digest = SendDigest(Depth(3), 3)
    digest.add(1, 0, 0, 2_000)
    with pytest.raises(ValueError, match="time order"):
        digest.add(2, 1, 0, 1_999)
    unordered = SendDigest(Depth(3))
    unordered.add(1, 0, 0, 2_000)
    unordered.add(2, 1, 0, 1_999)
    assert list(unordered.write_times()) == [1_999, 2_000]
    with pytest.raises(ValueError, match="frames="):
        unordered.clock(lambda: iter(()))
