"""The hole search on its own: two symbols on one connection, and how a chain's hole is lifted."""

from __future__ import annotations

from dataclasses import dataclass

from harness.deliveries import ChainJudge, Deliveries


@dataclass(frozen=True)
class Ids:
    index: int
    symbol: str
    first_update_id: int
    last_update_id: int


@dataclass(frozen=True)
class Sent:
    frame_index: int
    write_mono_ns: int
    fault: str | None = None


@dataclass
class Conn:
    sends: list[Sent]


@dataclass(frozen=True)
class Snap:
    symbol: str
    last_update_id: int
    served_mono_ns: int


# Two symbols interleaved on one combined stream: frame 2k is BTC update 11+k, frame 2k+1 is ETH 501+k.
FRAMES = [Ids(2 * k, "BTCUSDT", 11 + k, 11 + k) for k in range(5)] + [
    Ids(2 * k + 1, "ETHUSDT", 501 + k, 501 + k) for k in range(5)
]
SNAPS = [Snap("BTCUSDT", 10, 0), Snap("ETHUSDT", 500, 0)]


def _judge(skip: set[int], snaps: list[Snap] = SNAPS) -> ChainJudge:
    sends = [Sent(i, 100 + i) for i in range(10) if i not in skip]
    return ChainJudge(Deliveries(FRAMES, [Conn(sends)], snaps))


def test_a_hole_in_one_symbol_leaves_the_other_symbols_chain_whole() -> None:
    judge = _judge(skip={3})  # ETH's 502 never went out
    assert [judge.judge("BTCUSDT", u, 1_000) for u in (11, 13, 15)] == [None, None, None]
    assert judge.judge("ETHUSDT", 501, 1_000) is None
    hole = judge.judge("ETHUSDT", 503, 1_000)
    assert hole is not None and (hole.first, hole.last) == (502, 502)


def test_a_hole_stays_until_a_resync_or_a_snapshot_past_it() -> None:
    late = Snap("ETHUSDT", 502, 2_000)
    judge = _judge(skip={3}, snaps=[*SNAPS, late])
    assert judge.judge("ETHUSDT", 503, 1_000) is not None
    assert judge.judge("ETHUSDT", 504, 1_500) is not None  # still standing on the hole
    assert judge.judge("ETHUSDT", 504, 2_500) is None  # a snapshot at 502 was served: a reload could explain it
    judge = _judge(skip={3})
    assert judge.judge("ETHUSDT", 503, 1_000) is not None
    judge.restart("ETHUSDT")  # the subject resynced, but no snapshot past the hole exists: the chain still crosses it
    assert judge.judge("ETHUSDT", 504, 1_500) is not None


def test_a_frame_needed_before_it_was_written_is_a_hole_even_though_it_came() -> None:
    judge = _judge(skip=set())
    assert judge.judge("BTCUSDT", 12, 101) is not None  # 12 was written at 102
    judge.restart("BTCUSDT")
    assert judge.judge("BTCUSDT", 12, 103) is None


@dataclass(frozen=True)
class LinkedIds(Ids):
    """A frame as the oracle reads a venue that links frames (`prev_last`) or sends snapshots in-stream."""

    prev_last: int | None = None
    snapshot: bool = False


def test_linked_ids_that_skip_are_no_hole_and_a_missing_link_is() -> None:
    """USD-M: ids between a frame's `pu` and its `U` belong to other books."""
    frames = [
        LinkedIds(0, "BTCUSDT", 20, 30, 12),
        LinkedIds(1, "BTCUSDT", 37, 41, 30),
        LinkedIds(2, "BTCUSDT", 45, 50, 41),
    ]
    whole = ChainJudge(Deliveries(frames, [Conn([Sent(i, 10 + i) for i in range(3)])], [Snap("BTCUSDT", 25, 0)]))
    assert whole.judge("BTCUSDT", 50, 1_000) is None
    lost = ChainJudge(Deliveries(frames, [Conn([Sent(0, 10), Sent(2, 12)])], [Snap("BTCUSDT", 25, 0)]))
    hole = lost.judge("BTCUSDT", 50, 1_000)
    assert hole is not None and (hole.first, hole.last) == (31, 41)


def test_a_snapshot_frame_that_reached_the_subject_starts_a_chain() -> None:
    """Where snapshots travel on the stream no REST answer is served: the snapshot frame is the start."""
    frames = [
        LinkedIds(0, "BTCUSDT", 7, 7, snapshot=True),
        LinkedIds(1, "BTCUSDT", 8, 8),
        LinkedIds(2, "BTCUSDT", 9, 9),
    ]
    judge = ChainJudge(Deliveries(frames, [Conn([Sent(i, 10 + i) for i in range(3)])], []))
    assert judge.judge("BTCUSDT", 9, 1_000) is None
    unsent = ChainJudge(Deliveries(frames, [Conn([Sent(1, 11), Sent(2, 12)])], []))
    assert unsent.judge("BTCUSDT", 9, 1_000) is not None


def test_an_update_recorded_twice_counts_as_delivered_by_either_copy() -> None:
    # BTC's 12 recorded again at index 10, after 14 (the recording went back): only that copy went out.
    frames = [*FRAMES, Ids(10, "BTCUSDT", 12, 12)]
    sends = [Sent(i, 100 + i) for i in range(11) if i != 2]
    judge = ChainJudge(Deliveries(frames, [Conn(sends)], SNAPS))
    assert judge.judge("BTCUSDT", 15, 1_000) is None
    early = ChainJudge(Deliveries(frames, [Conn(sends)], SNAPS))
    hole = early.judge("BTCUSDT", 15, 105)  # applied before the second copy was written
    assert hole is not None and (hole.first, hole.last, hole.why) == (12, 12, "reached the subject only later")
