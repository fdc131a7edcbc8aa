"""BookSync driven by hand-written frame sequences, one protocol situation per test, plus decoders."""

from __future__ import annotations

import orjson
import pytest

from harness.book import OrderBook
from harness.book_events import DecodeError, DepthDelta, DepthSnapshot, TopOfBook, Trade
from harness.sync import (
    Applied,
    BookSync,
    Buffered,
    Dropped,
    GapDetected,
    NeedSnapshot,
    Resync,
    SnapshotIgnored,
    StaleSnapshot,
    Step,
    Synced,
    SyncState,
)
from harness.venues.binance_spot import decoder as spot
from harness.venues.binance_spot.sequencing import BinanceSpotSequencing
from harness.venues.binance_usdm import decoder as usdm
from harness.venues.binance_usdm.sequencing import BinanceUsdmSequencing


def d(first: int, last: int, bids=(), asks=(), prev: int | None = None) -> DepthDelta:
    return DepthDelta("X", first, last, [list(b) for b in bids], [list(a) for a in asks], prev)


def snap(last: int, bids=(("10", "1"),), asks=(("11", "1"),)) -> DepthSnapshot:
    return DepthSnapshot("X", last, [list(b) for b in bids], [list(a) for a in asks])


def kinds(events) -> list[type]:
    return [type(e) for e in events]


def spot_sync() -> BookSync:
    return BookSync(BinanceSpotSequencing())


def test_first_delta_asks_for_one_snapshot_and_buffers() -> None:
    sync = spot_sync()
    assert sync.state is SyncState.UNSYNCED
    assert kinds(sync.on_delta(d(101, 105))) == [Buffered, NeedSnapshot]
    assert kinds(sync.on_delta(d(106, 110))) == [Buffered]
    # mypy keeps sync.state narrowed to UNSYNCED from above; on_delta changed it.
    assert sync.state is SyncState.BUFFERING and not sync.synced and sync.buffered == 2  # type: ignore[comparison-overlap]


def test_a_snapshot_asked_for_early_is_not_asked_for_again_and_bridges_or_fails_as_any() -> None:
    sync = spot_sync()
    sync.snapshot_requested()  # the caller fetches it as the first update arrives
    assert kinds(sync.on_delta(d(101, 105))) == [Buffered]  # no second request
    assert kinds(sync.on_snapshot(snap(107))) == []  # newer than the buffer: waits for its bridge
    assert kinds(sync.on_delta(d(106, 110))) == [Synced] and sync.last_update_id == 110
    failed = spot_sync()
    failed.snapshot_requested()
    assert kinds(failed.on_delta(d(101, 105))) == [Buffered]
    assert kinds(failed.on_snapshot_failed()) == [NeedSnapshot]  # asked for again after a failure


def test_snapshot_older_than_first_buffered_is_refetched() -> None:
    sync = spot_sync()
    sync.on_delta(d(101, 105))
    events = sync.on_snapshot(snap(99))
    assert events == (StaleSnapshot(99, 101), NeedSnapshot("stale snapshot"))
    assert not sync.synced


def test_bridge_drops_old_events_and_applies_from_the_bracketing_one() -> None:
    sync = spot_sync()
    sync.on_delta(d(101, 105, bids=[("9", "5")]))
    sync.on_delta(d(106, 110, bids=[("10", "0")]))
    sync.on_delta(d(111, 112, asks=[("11", "7")]))
    events = sync.on_snapshot(snap(107))
    assert events == (Synced(112, 2),)
    assert sync.synced and sync.last_update_id == 112
    # 101..105 was dropped (u <= 107): its bid at 9 must not be in the book.
    assert sync.book.top_n(5) == ([], [("11", "7")])
    assert sync.stats.dropped == 1


def test_snapshot_exactly_at_an_event_boundary_bridges() -> None:
    sync = spot_sync()
    sync.on_delta(d(101, 105))
    sync.on_delta(d(106, 110, asks=[("12", "1")]))
    assert sync.on_snapshot(snap(105)) == (Synced(110, 1),)
    assert sync.book.asks() == [("11", "1"), ("12", "1")]


def test_buffer_with_a_hole_before_the_snapshot_is_not_bridged() -> None:
    sync = spot_sync()
    sync.on_delta(d(101, 105))
    events = sync.on_delta(d(108, 110))
    assert kinds(events) == [GapDetected, Buffered]
    events = sync.on_snapshot(snap(104))
    assert kinds(events) == [StaleSnapshot, NeedSnapshot]
    assert sync.on_snapshot(snap(109)) == (Synced(110, 1),)


def test_live_duplicate_is_dropped_and_gap_resyncs() -> None:
    sync = spot_sync()
    sync.on_delta(d(101, 105))
    sync.on_snapshot(snap(103))
    assert sync.on_delta(d(106, 107, bids=[("10", "3")])) == (Applied(106, 107),)
    assert sync.on_delta(d(106, 107, bids=[("10", "99")])) == (Dropped(106, 107, "already applied"),)
    assert sync.book.best_bid() == ("10", "3")
    events = sync.on_delta(d(109, 111))
    assert events == (GapDetected(107, 109, None), Resync("gap"), NeedSnapshot("gap"))
    assert not sync.synced and sync.state is SyncState.RESYNCING
    assert sync.book.top_n(5) == ([], [])
    # The delta that showed the gap starts the new buffer, so a snapshot at 110 bridges it.
    assert sync.on_snapshot(snap(110)) == (Synced(111, 1),)


def test_overlapping_event_is_a_gap_not_a_partial_apply() -> None:
    sync = spot_sync()
    sync.on_delta(d(101, 105))
    sync.on_snapshot(snap(103))
    assert kinds(sync.on_delta(d(104, 108))) == [GapDetected, Resync, NeedSnapshot]


def test_connection_reset_starts_over_and_asks_again_on_the_next_delta() -> None:
    sync = spot_sync()
    sync.on_delta(d(101, 105))
    sync.on_snapshot(snap(103))
    assert sync.on_connection_reset() == (Resync("connection reset"),)
    assert sync.state is SyncState.UNSYNCED and not sync.synced and sync.buffered == 0
    assert kinds(sync.on_delta(d(500, 501))) == [Buffered, NeedSnapshot]
    assert sync.on_connection_reset() == (Resync("connection reset"),)
    assert sync.on_connection_reset() == ()


def test_snapshot_failure_asks_again_and_snapshot_while_synced_is_ignored() -> None:
    sync = spot_sync()
    sync.on_delta(d(101, 105))
    assert sync.on_snapshot_failed() == (NeedSnapshot("snapshot failed"),)
    sync.on_snapshot(snap(104))
    assert sync.synced
    assert sync.on_snapshot(snap(200)) == (SnapshotIgnored(200, "already synced"),)
    assert sync.on_snapshot_failed() == ()


def test_snapshot_before_any_delta_waits_for_a_bridging_delta() -> None:
    sync = spot_sync()
    assert sync.on_snapshot(snap(100)) == ()
    assert sync.on_delta(d(95, 100)) == (Dropped(95, 100, "older than snapshot"),)
    assert sync.on_delta(d(101, 102)) == (Synced(102, 1),)
    late = spot_sync()
    late.on_snapshot(snap(100))
    assert kinds(late.on_delta(d(103, 104))) == [StaleSnapshot, Buffered, NeedSnapshot]


def test_crossed_and_malformed_books_are_never_reported_synced() -> None:
    sync = spot_sync()
    sync.on_delta(d(101, 105))
    sync.on_snapshot(snap(104))
    assert sync.on_delta(d(106, 106, bids=[("11.5", "1")])) == (Resync("crossed book"), NeedSnapshot("crossed book"))
    assert not sync.synced
    sync.on_delta(d(107, 108))
    sync.on_snapshot(snap(107))
    assert sync.synced
    assert sync.on_delta(d(109, 109, bids=[("ten", "1")]))[0] == Resync("malformed levels")
    assert not sync.synced


class _ChecksumRule(BinanceSpotSequencing):
    """A rule with a verify hook, as a checksum venue would have: here, bid sizes must be '1'."""

    def verify(self, book: OrderBook, delta: DepthDelta) -> bool:
        return all(size == "1" for _, size in book.bids())


def test_rule_verify_hook_forces_resync() -> None:
    sync = BookSync(_ChecksumRule())
    sync.on_delta(d(101, 105))
    sync.on_snapshot(snap(104))
    assert sync.on_delta(d(106, 106, bids=[("9", "1")])) == (Applied(106, 106),)
    assert sync.on_delta(d(107, 107, bids=[("9", "2")]))[0] == Resync("verify failed")


def test_usdm_pu_chain() -> None:
    rule = BinanceUsdmSequencing()
    assert rule.bridge(d(90, 99, prev=80), 100) is Step.DROP
    assert rule.bridge(d(95, 100, prev=80), 100) is Step.APPLY
    assert rule.bridge(d(101, 105, prev=100), 100) is Step.GAP
    sync = BookSync(rule)
    sync.on_delta(d(90, 99, prev=80))
    sync.on_delta(d(95, 100, prev=99, asks=[("12", "2")]))
    sync.on_delta(d(104, 110, prev=100))
    assert sync.on_snapshot(snap(100)) == (Synced(110, 2),)
    assert sync.on_delta(d(111, 120, prev=110)) == (Applied(111, 120),)
    assert sync.on_delta(d(111, 120, prev=110))[0] == Dropped(111, 120, "already applied")
    assert kinds(sync.on_delta(d(125, 130, prev=121))) == [GapDetected, Resync, NeedSnapshot]


def test_spot_decoder_shapes() -> None:
    combined = b'{"stream":"x@depth","data":{"e":"depthUpdate","E":7,"s":"X","U":1,"u":2,"b":[["1.0","2"]],"a":[]}}'
    delta = spot.decode_frame(combined)
    assert delta == DepthDelta("X", 1, 2, [["1.0", "2"]], [], None, 7)
    raw = orjson.dumps(orjson.loads(combined)["data"])
    assert spot.decode_frame(raw) == delta
    ticker = spot.decode_frame(b'{"u":5,"s":"X","b":"1.0","B":"2","a":"1.1","A":"3"}')
    assert ticker == TopOfBook("X", 5, "1.0", "2", "1.1", "3")
    trade = spot.decode_frame(b'{"e":"trade","E":1,"s":"X","t":9,"p":"1","q":"2","T":3,"m":true,"M":true}')
    assert trade == Trade("X", 9, "1", "2", True, 3)
    assert spot.decode_frame(b'{"result":null,"id":1}') is None
    for bad in (
        b"{",
        b"[1]",
        b'{"e":"depthUpdate","s":"X","U":1}',
        b'{"e":"depthUpdate","s":"X","U":"1","u":2,"b":[],"a":[]}',
        b'{"x":1}',
    ):
        with pytest.raises(DecodeError):
            spot.decode_frame(bad)
    with pytest.raises(DecodeError, match="-1121"):
        spot.decode_snapshot(b'{"code":-1121,"msg":"Invalid symbol."}', "X")
    assert spot.decode_snapshot(b'{"lastUpdateId":5,"bids":[],"asks":[["1","2"]]}', "X") == DepthSnapshot(
        "X", 5, [], [["1", "2"]]
    )


def test_usdm_decoder_requires_pu() -> None:
    frame = b'{"e":"depthUpdate","E":1,"T":1,"s":"X","U":1,"u":2,"pu":0,"b":[],"a":[]}'
    delta = usdm.decode_frame(frame)
    assert isinstance(delta, DepthDelta) and delta.prev_last_update_id == 0
    with pytest.raises(DecodeError):
        usdm.decode_frame(b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}')
    ticker = usdm.decode_frame(b'{"e":"bookTicker","u":5,"s":"X","b":"1","B":"2","a":"3","A":"4","T":1,"E":1}')
    assert ticker == TopOfBook("X", 5, "1", "2", "3", "4")


class _LinkedRule:
    """A prevSeqId-linked rule, as venues with snapshots on the stream use (OKX)."""

    def snapshot_is_stale(self, snapshot_id: int, first: DepthDelta) -> bool:
        return False

    def bridge(self, delta: DepthDelta, snapshot_id: int) -> Step:
        return self.follow(delta, snapshot_id)

    def follow(self, delta: DepthDelta, last_update_id: int) -> Step:
        return Step.APPLY if delta.prev_last_update_id == last_update_id else Step.GAP

    def verify(self, book: OrderBook, delta: DepthDelta) -> bool:
        return True


def test_stream_snapshot_syncs_at_once_and_the_next_delta_must_follow_it() -> None:
    sync = BookSync(_LinkedRule())
    assert sync.on_stream_snapshot(snap(10)) == (Synced(10, 0),)
    assert sync.synced and sync.last_update_id == 10
    assert sync.on_delta(d(15, 15, bids=[("10", "2")], prev=10)) == (Applied(15, 15),)
    assert sync.book.best_bid() == ("10", "2")
    assert kinds(sync.on_delta(d(30, 30, prev=20))) == [GapDetected, Resync, NeedSnapshot]


def test_stream_snapshot_replaces_the_book_and_the_buffer_whatever_its_id() -> None:
    sync = BookSync(_LinkedRule())
    assert kinds(sync.on_delta(d(7, 7, prev=5))) == [Buffered, NeedSnapshot]
    assert sync.on_stream_snapshot(snap(3, bids=[("9", "1")])) == (Synced(3, 0),)
    assert sync.buffered == 0 and sync.book.bids() == [("9", "1")]
    # Already synced: a lower id (a venue's ids restart after maintenance) still replaces the book.
    assert sync.on_stream_snapshot(snap(1, bids=[("8", "4")])) == (Applied(1, 1),)
    assert sync.book.bids() == [("8", "4")] and sync.last_update_id == 1
    assert sync.stats.syncs == 1 and sync.stats.snapshots == 2


def test_stream_snapshot_that_is_crossed_or_malformed_is_a_resync() -> None:
    sync = BookSync(_LinkedRule())
    assert kinds(sync.on_stream_snapshot(snap(3, bids=[("12", "1")]))) == [Resync, NeedSnapshot]
    assert not sync.synced
    assert kinds(sync.on_stream_snapshot(snap(4, bids=[("x", "1")]))) == [Resync, NeedSnapshot]
    assert sync.stats.reasons == {"crossed book": 1, "malformed levels": 1}
