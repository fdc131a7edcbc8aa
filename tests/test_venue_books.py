"""The venue's REST snapshots straddle depth events (replayer/replay_data.py VenueBooks), without sockets.

On the live venue a snapshot's `lastUpdateId` usually falls inside a depth event (`U <= id < u`); the
fake venue answers there too, from states it could really have had, so that applying the event over a
snapshot gives exactly the book after the event, on the synthetic fixture, the real slice and a
two-symbol recording alike.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.synth.run import write_synthetic_recording
from replayer import replay_data
from replayer.frame_store import FrameStore
from replayer.reference_book import ReferenceBook
from replayer.replay_data import (
    JOIN_HORIZON,
    ReplayData,
    VenueBooks,
    apply_depth,
    is_crossed,
    load_replay_data,
)
from tests.depth_helpers import can_straddle

REPO = Path(__file__).resolve().parents[1]
POSITIONS = 80


@pytest.fixture(scope="module")
def two_symbols(tmp_path_factory: pytest.TempPathFactory) -> ReplayData:
    return load_replay_data(write_synthetic_recording(tmp_path_factory.mktemp("two") / "rec", "BTCUSDT,ETHUSDT", 8, 3))


def _fixture(name: str) -> ReplayData:
    return load_replay_data(REPO / "fixtures" / name)


def _same(a: ReferenceBook, b: ReferenceBook) -> bool:
    return a.last_update_id == b.last_update_id and a.bids() == b.bids() and a.asks() == b.asks()


@pytest.mark.parametrize("source", ["synth", "real", "two_symbols", "default"])
def test_every_answer_lies_inside_the_next_event_and_the_event_completes_it(
    source: str, two_symbols: ReplayData
) -> None:
    data = {
        "synth": lambda: _fixture("binance_spot_btcusdt_synth"),
        "real": lambda: _fixture("binance_spot_btcusdt_real_60s"),
        "two_symbols": lambda: two_symbols,
        "default": lambda: _fixture("binance_spot_multi_synth"),
    }[source]()
    venue, truth = VenueBooks(data, seed=9), VenueBooks(data, straddle=False)
    inside = 0
    order = sorted(i for indexes in data.depth_indexes.values() for i in indexes)
    for request, index in enumerate(order[:POSITIONS]):
        venue.advance_to(index - 1)
        truth.advance_to(index - 1)
        frame = data.frames[index]
        symbol = frame.stream.split("@")[0].upper()
        served = venue.snapshot(symbol, request)
        assert not is_crossed(served)
        assert frame.first_update_id is not None and frame.last_update_id is not None
        if frame.first_update_id <= served.last_update_id < frame.last_update_id:
            inside += 1
        else:
            assert not can_straddle(frame), index
        before = truth.book(symbol)
        assert before is not None and truth.snapshot(symbol, request).last_update_id == before.last_update_id
        apply_depth(served, frame, ())
        truth.advance_to(index)
        after = truth.book(symbol)
        assert after is not None and _same(served, after), index
    assert inside >= POSITIONS - 5


def test_answers_are_seeded_and_a_given_id_always_holds_the_same_book() -> None:
    data = _fixture("binance_spot_btcusdt_synth")
    venue = VenueBooks(data, seed=4)
    venue.advance_to(data.depth_indexes["BTCUSDT"][30])
    answers = [venue.snapshot("BTCUSDT", request) for request in range(40)]
    by_id: dict[int, ReferenceBook] = {}
    for answer in answers:
        assert _same(by_id.setdefault(answer.last_update_id, answer), answer)
    assert len(by_id) > 3
    again = VenueBooks(data, seed=4)
    again.advance_to(data.depth_indexes["BTCUSDT"][30])
    assert all(_same(again.snapshot("BTCUSDT", r), answers[r]) for r in range(40))
    other = VenueBooks(data, seed=5)
    other.advance_to(data.depth_indexes["BTCUSDT"][30])
    assert [other.snapshot("BTCUSDT", r).last_update_id for r in range(40)] != [a.last_update_id for a in answers]


@pytest.mark.parametrize("shift", [-20, -3, 3, 40])
def test_stale_and_too_new_answers_straddle_the_event_at_their_position(shift: int) -> None:
    data = _fixture("binance_spot_btcusdt_synth")
    depth = data.depth_indexes["BTCUSDT"]
    venue = VenueBooks(data, seed=2)
    venue.advance_to(depth[49])
    served = venue.snapshot("BTCUSDT", 0, shift)
    event = data.frames[depth[50 + shift]]
    assert event.first_update_id is not None and event.last_update_id is not None
    assert event.first_update_id <= served.last_update_id < event.last_update_id


def test_a_barely_stale_answer_predates_the_connection_and_its_join_never_crosses() -> None:
    data = _fixture("binance_spot_btcusdt_synth")
    depth = data.depth_indexes["BTCUSDT"]
    venue = VenueBooks(data, seed=1)
    venue.advance_to(depth[200])
    first = data.frames[depth[190]]
    assert first.first_update_id is not None
    for lag in (1, 3, 8):
        for request in range(2):
            served = venue.snapshot_before("BTCUSDT", first.index, lag, request)
            assert served.last_update_id + 1 < first.first_update_id
            earlier = data.frames[depth[190 - lag]].first_update_id
            assert earlier is not None and earlier - 1 <= served.last_update_id
            assert not is_crossed(served)
            join = served.copy()
            for index in depth[190 : 201 + JOIN_HORIZON]:
                apply_depth(join, data.frames[index], ())
                assert not is_crossed(join)
    nothing_sent = venue.snapshot_before("BTCUSDT", None, 2, 0)
    later = data.frames[depth[201]].first_update_id
    assert later is not None and nothing_sent.last_update_id + 1 < later


def test_books_catch_up_only_when_read_and_answers_from_kept_copies_match_a_replay_from_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _fixture("binance_spot_btcusdt_synth")
    depth = data.depth_indexes["BTCUSDT"]
    store = data.frames
    assert isinstance(store, FrameStore)
    monkeypatch.setattr(replay_data, "CHECKPOINT_EVERY", 16)
    monkeypatch.setattr(replay_data, "CHECKPOINTS_RECENT", 2)
    monkeypatch.setattr(replay_data, "CHECKPOINTS_SPARSE", 4)
    kept = VenueBooks(data, seed=6)
    read = store.blocks_read  # loading read a few
    for index in range(len(store)):
        kept.advance_to(index)  # as the venue does for every frame it sends
    assert store.blocks_read == read  # nothing read until a book is
    book = kept.book("BTCUSDT")
    assert book is not None and book.last_update_id == data.frames[depth[-1]].last_update_id
    monkeypatch.setattr(replay_data, "CHECKPOINT_EVERY", 10**9)  # no copies: every answer from the start book
    replayed = VenueBooks(data, seed=6)
    replayed.advance_all()
    for shift in (-1, -16, -17, -40, -150):
        assert _same(kept.snapshot("BTCUSDT", 3, shift), replayed.snapshot("BTCUSDT", 3, shift)), shift
