"""The oracle rebuilds the book from clean frames and a snapshot, independently of the subject's code."""

from __future__ import annotations

import random
from types import SimpleNamespace

import orjson
import pytest

from harness.book_events import DepthSnapshot
from harness.errors import HarnessError
from harness.oracle import DepthSnapshotLike, Oracle, decode_depth, oracle_rule, snapshot_from_rest
from replayer.timeline import Frame

SYMBOL = "BTCUSDT"
STREAM = "btcusdt@depth@100ms"


def depth(index: int, first: int, last: int, bids=(), asks=(), pu: int | None = None) -> Frame:
    data = {"e": "depthUpdate", "E": 1, "s": SYMBOL, "U": first, "u": last, "b": list(bids), "a": list(asks)}
    if pu is not None:
        data["pu"] = pu
    payload = orjson.dumps({"stream": STREAM, "data": data})
    return Frame(index, index * 1_000_000, STREAM, payload, first, last)


def ticker(index: int) -> Frame:
    payload = orjson.dumps({"stream": "btcusdt@bookTicker", "data": {"u": 1, "s": SYMBOL, "b": "1", "a": "2"}})
    return Frame(index, index * 1_000_000, "btcusdt@bookTicker", payload)


SNAP = DepthSnapshot(SYMBOL, 100, [["100.0", "1"], ["99.0", "2"]], [["101.0", "1"], ["102.0", "3"]])


def model(snapshot: DepthSnapshot, frames: list[Frame], upto: int) -> tuple[list, list]:
    """A dict book, written for this test: the state after update `upto`."""
    bids = {p: q for p, q in snapshot.bids}
    asks = {p: q for p, q in snapshot.asks}
    for frame in frames:
        data = orjson.loads(frame.payload)["data"]
        if data.get("e") != "depthUpdate" or data["u"] <= snapshot.last_update_id or data["u"] > upto:
            continue
        for side, levels in ((bids, data["b"]), (asks, data["a"])):
            for p, q in levels:
                if float(q) == 0:
                    side.pop(p, None)
                else:
                    side[p] = q
    return (
        sorted(bids.items(), key=lambda kv: -float(kv[0])),
        sorted(asks.items(), key=lambda kv: float(kv[0])),
    )


def random_frames(seed: int, count: int) -> list[Frame]:
    rng = random.Random(seed)
    frames = [depth(0, 90, 99, [["98.0", "5"]])]
    u = 100
    for i in range(1, count):
        if i % 7 == 0:
            frames.append(ticker(i))
            continue
        first = u + 1 if i > 1 else 99
        u = first + rng.randrange(0, 3)
        bids = [[f"{rng.randrange(60, 101)}.0", str(rng.choice([0, 0, 1, 2, 5]))] for _ in range(rng.randrange(0, 4))]
        asks = [[f"{rng.randrange(101, 140)}.0", str(rng.choice([0, 1, 3]))] for _ in range(rng.randrange(0, 4))]
        frames.append(depth(i, first, u, bids, asks))
    return frames


def test_top_matches_an_independent_model_at_every_frame_boundary() -> None:
    frames = random_frames(seed=7, count=300)
    oracle = Oracle(frames, SNAP)
    ids = [f.last_update_id for f in frames if f.last_update_id is not None and f.last_update_id > 100]
    assert len(ids) > 200
    for u in [100, *ids]:
        bids, asks = model(SNAP, frames, u)
        assert oracle.top(SYMBOL, u) == (tuple(bids[:20]), tuple(asks[:20])), u
    last = ids[-1]
    assert oracle.last_update_id(SYMBOL) == last
    bids, asks = model(SNAP, frames, last)
    assert oracle.full_book(SYMBOL, last) == (tuple(bids), tuple(asks))
    middle = ids[len(ids) // 2]
    bids, asks = model(SNAP, frames, middle)
    assert oracle.full_book(SYMBOL, middle) == (tuple(bids), tuple(asks))


def touched_by_model(frames: list[Frame], after: int, upto: int) -> tuple[set[str], set[str]]:
    """Prices the depth frames ending after `after`, up to the first starting after `upto`, name."""
    bids: set[str] = set()
    asks: set[str] = set()
    for frame in frames:
        data = orjson.loads(frame.payload)["data"]
        if data.get("e") != "depthUpdate" or data["u"] <= after:
            continue
        if data["U"] > upto:
            break
        bids.update(p for p, _ in data["b"])
        asks.update(p for p, _ in data["a"])
    return bids, asks


def test_touched_prices_up_to_the_last_frame_and_before_it_match_a_replay_of_the_frames() -> None:
    frames = random_frames(seed=11, count=400)
    oracle = Oracle(frames, SNAP)
    ids = [f.last_update_id for f in frames if f.last_update_id is not None and f.last_update_id > 100]
    last = ids[-1]
    for after in [0, 100, ids[10], ids[len(ids) // 2], ids[-3], last]:
        assert oracle.touched_prices(SYMBOL, after, last) == touched_by_model(frames, after, last), after  # kept
        middle = ids[len(ids) * 3 // 4]
        expected = touched_by_model(frames, after, middle)
        assert oracle.touched_prices(SYMBOL, after, middle) == expected, after  # decoded again
    assert oracle.touched_prices("ETHUSDT", 100, last) == (set(), set())
    back = [depth(0, 90, 99), depth(1, 101, 105, [["97.0", "1"]]), depth(2, 50, 60, [["97.0", "2"], ["96.0", "1"]])]
    oracle = Oracle(back, SNAP)  # ids going back (a venue's reset): each price's latest touch, not its last
    for after in (55, 100):
        assert oracle.touched_prices(SYMBOL, after, 105) == touched_by_model(back, after, 105), after


def test_frames_before_the_snapshot_and_between_boundaries_are_unknown() -> None:
    frames = [depth(0, 90, 99), depth(1, 100, 103, [["100.0", "0"]]), depth(2, 104, 104)]
    oracle = Oracle(frames, SNAP)
    assert oracle.top(SYMBOL, 99) is None
    assert oracle.top(SYMBOL, 101) is None
    assert oracle.top(SYMBOL, 100) is not None
    assert oracle.top(SYMBOL, 103) == ((("99.0", "2"),), (("101.0", "1"), ("102.0", "3")))
    frame = oracle.frame(1)
    assert frame is not None and frame.last_update_id == 103
    assert oracle.depth_frames == 3


def test_a_break_in_the_recording_leaves_the_book_unknown_until_a_later_snapshot_bridges_it() -> None:
    later = DepthSnapshot(SYMBOL, 120, [["90.0", "1"]], [["110.0", "1"]])
    frames = [depth(1, 101, 102), depth(2, 110, 111), depth(3, 112, 119), depth(4, 120, 121, [["91.0", "4"]])]
    oracle = Oracle(frames, [later, SNAP])
    assert oracle.recording_gaps == 1
    assert oracle.knows(SYMBOL, 102)
    assert not oracle.knows(SYMBOL, 111)
    assert not oracle.knows(SYMBOL, 119)
    assert oracle.top(SYMBOL, 121) == ((("91.0", "4"), ("90.0", "1")), (("110.0", "1"),))


def test_usdm_frames_chain_on_pu() -> None:
    frames = [depth(1, 95, 105, [["100.0", "7"]], pu=90), depth(2, 106, 110, pu=105), depth(3, 112, 115, pu=110)]
    oracle = Oracle(frames, SNAP, venue="binance-usdm")
    assert oracle.recording_gaps == 0
    assert oracle.top(SYMBOL, 115) is not None
    top = oracle.top(SYMBOL, 105)
    assert top is not None and top[0][0] == ("100.0", "7")


def test_snapshot_from_rest_and_bad_input_are_one_line_errors() -> None:
    snap = snapshot_from_rest(SYMBOL, b'{"lastUpdateId": 5, "bids": [["1.0", "2"]], "asks": []}')
    assert snap.last_update_id == 5 and snap.bids == [["1.0", "2"]]
    with pytest.raises(HarnessError, match="not a depth body"):
        snapshot_from_rest(SYMBOL, b'{"code": -1121}')
    with pytest.raises(HarnessError, match="not JSON"):
        decode_depth(Frame(3, 0, STREAM, b"{nope"), oracle_rule("binance-spot"))
    assert decode_depth(Frame(4, 0, STREAM, b'{"result": null, "id": 1}'), oracle_rule("binance-spot")) is None
    for level in (["100.0", "x"], ["100.0"], 7):  # found when the oracle is made, not when the run needs the tops
        with pytest.raises(HarnessError, match="clean frame 2 has book levels that are not prices and sizes"):
            Oracle([depth(1, 101, 102), depth(2, 103, 104, [level])], SNAP)


@pytest.mark.parametrize("venue", ["binance-spot", "binance-usdm"])
def test_oracle_agrees_with_the_venue_books_on_a_synth_recording(venue: str) -> None:
    """Two copies of each venue's rule, the venue side's and the oracle's own, give the same books."""
    from harness.synth.run import generate_events
    from harness.venues.registry import dialect
    from replayer.replay_data import VenueBooks, build_replay_data

    events = generate_events("BTCUSDT", seconds=3.0, seed=11, venue=venue)
    data = build_replay_data(events, ["BTCUSDT"], dialect=dialect(venue))
    snapshots: list[DepthSnapshotLike] = [s for recorded in data.snapshots.values() for s in recorded]
    snapshots += [DepthSnapshot(s, b.last_update_id, b.bids(), b.asks()) for s, b in data.start_books.items()]
    oracle = Oracle(data.frames, snapshots, venue=venue)
    books = VenueBooks(data)
    depth_indexes = data.depth_indexes["BTCUSDT"]
    assert len(depth_indexes) > 10
    for index in depth_indexes[:: max(1, len(depth_indexes) // 10)]:
        books.advance_to(index)
        book = books.book("BTCUSDT")
        assert book is not None
        assert oracle.top("BTCUSDT", book.last_update_id) == (tuple(book.bids(20)), tuple(book.asks(20)))
    books.advance_all()
    book = books.book("BTCUSDT")
    assert book is not None
    assert oracle.last_update_id("BTCUSDT") == book.last_update_id
    assert oracle.full_book("BTCUSDT", book.last_update_id) == (tuple(book.bids()), tuple(book.asks()))
    assert oracle.recording_gaps == 0


def use_stream_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle reads `stream_frame`s: a venue whose snapshots travel on the stream (Bybit's shape)."""

    def decode(frame: Frame) -> tuple[str, int, int, None, list, list] | None:
        doc = orjson.loads(frame.payload)
        return doc["s"], doc["u"], doc["u"], None, doc["b"], doc["a"]

    rule = SimpleNamespace(
        decode=decode,
        snapshot=lambda frame: orjson.loads(frame.payload)["snap"],
        bridges=lambda ids, snapshot_id: ids.first_update_id == snapshot_id + 1,
    )
    monkeypatch.setattr("harness.oracle.oracle_rule", lambda venue: rule)


def stream_frame(index: int, u: int, snap: bool, bids: list, asks: list) -> Frame:
    payload = orjson.dumps({"s": SYMBOL, "u": u, "snap": snap, "b": bids, "a": asks})
    return Frame(index, index, "orderbook.50.BTCUSDT", payload, u, u)


def test_an_in_stream_snapshot_replaces_the_book_whatever_its_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """For venues whose snapshots travel on the stream (Bybit, OKX) the rule says which frames are
    snapshots; one replaces the book even at a lower id (a venue's ids reset after a restart)."""
    use_stream_rule(monkeypatch)
    frame = stream_frame
    frames = [
        frame(0, 10, True, [["100", "1"]], [["101", "1"]]),
        frame(1, 11, False, [["100", "2"]], []),
        frame(2, 1, True, [["99", "5"]], [["102", "1"]]),
        frame(3, 2, False, [], [["102", "0"], ["103", "4"]]),
    ]
    oracle = Oracle(frames, [], venue="stream-venue")
    assert oracle.recording_gaps == 0
    assert oracle.top(SYMBOL, 11) == ((("100", "2"),), (("101", "1"),))
    assert oracle.top(SYMBOL, 1) == ((("99", "5"),), (("102", "1"),))
    assert oracle.last_update_id(SYMBOL) == 2
    assert oracle.full_book(SYMBOL, 2) == ((("99", "5"),), (("103", "4"),))


def test_an_answer_is_the_same_whatever_order_it_is_asked_in_and_however_far_the_tops_went(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tops are computed as far as each question asks; the ids pass already placed every state,
    so a state that comes again later (ids reset by an in-stream snapshot, or duplicated, or after a
    break) answers with its latest top even when asked before the tops pass got there."""
    use_stream_rule(monkeypatch)
    rng = random.Random(3)
    frames: list[Frame] = []
    u = 0
    for i in range(400):
        snap = i == 0 or rng.random() < 0.08
        u = rng.randrange(1, 30) if snap else u + rng.choice([1, 1, 1, 1, 2, 0])  # 2: a break, 0: a duplicate
        side = [[f"{rng.randrange(90, 100)}", str(rng.choice([0, 1, 2]))] for _ in range(rng.randrange(0, 4))]
        frames.append(stream_frame(i, u, snap, side if not snap else [*side, ["89", "1"]], [["101", str(i % 5 + 1)]]))
    keys = [(SYMBOL, u) for u in range(0, 60)]
    finished = Oracle(frames, [], venue="stream-venue")
    finished.complete()  # the tops pass goes to the end
    expected = {key: finished.top(*key) for key in keys}
    assert sum(top is not None for top in expected.values()) > 20 and finished.recording_gaps > 0
    for order in range(3):
        lazy = Oracle(frames, [], venue="stream-venue")
        asked = list(keys)
        random.Random(order).shuffle(asked)
        for n, key in enumerate(asked):
            lazy.frame(n * 5)  # the venue's writes take the tops pass along too
            assert lazy.top(*key) == expected[key], key
            assert lazy.knows(*key) == (expected[key] is not None)
