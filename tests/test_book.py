"""OrderBook: against a plain dict model, through trims and refills of the sorted region."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.book import OrderBook, SequenceGap


def _model_apply(model: dict[str, dict[Decimal, tuple[str, str]]], bids, asks) -> None:
    for side, levels in (("b", bids), ("a", asks)):
        for price, size in levels:
            if Decimal(size) == 0:
                model[side].pop(Decimal(price), None)
            else:
                model[side][Decimal(price)] = (price, size)


def _model_sides(model) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    bids = [model["b"][p] for p in sorted(model["b"], reverse=True)]
    asks = [model["a"][p] for p in sorted(model["a"])]
    return bids, asks


prices = st.integers(min_value=1, max_value=600).map(lambda i: f"{i / 4:.2f}")
sizes = st.sampled_from(["0", "0.000", "0.00000000", "1", "0.5", "2.25000", "10.0"])
levels = st.lists(st.tuples(prices, sizes), max_size=40)


@settings(max_examples=60, deadline=None)
@given(snapshot=st.tuples(levels, levels), deltas=st.lists(st.tuples(levels, levels), max_size=30))
def test_book_equals_plain_model_after_any_updates(snapshot, deltas) -> None:
    book = OrderBook()
    model: dict[str, dict[Decimal, tuple[str, str]]] = {"b": {}, "a": {}}
    book.load(1, [list(lv) for lv in snapshot[0]], [list(lv) for lv in snapshot[1]])
    _model_apply(model, *snapshot)
    for i, (bids, asks) in enumerate(deltas, start=2):
        book.apply(i, [list(lv) for lv in bids], [list(lv) for lv in asks])
        _model_apply(model, bids, asks)
        want_bids, want_asks = _model_sides(model)
        assert book.top_n(20) == (want_bids[:20], want_asks[:20])
    assert book.depth() == _model_sides(model)


def test_deep_book_survives_trims_and_refills() -> None:
    """Thousands of levels, churn at every depth: the sorted region is trimmed and refilled often."""
    rng = random.Random(7)
    book = OrderBook()
    model: dict[str, dict[Decimal, tuple[str, str]]] = {"b": {}, "a": {}}
    snap_b = [[f"{1000 - i * 0.5:.2f}", "1.0"] for i in range(1500)]
    snap_a = [[f"{1001 + i * 0.5:.2f}", "1.0"] for i in range(1500)]
    book.load(1, snap_b, snap_a)
    _model_apply(model, snap_b, snap_a)
    for step in range(2, 400):
        bids = [[f"{rng.uniform(200, 1000):.2f}", rng.choice(["0", "0", "2.5", "0.1"])] for _ in range(30)]
        asks = [[f"{rng.uniform(1001, 1800):.2f}", rng.choice(["0", "0", "2.5", "0.1"])] for _ in range(30)]
        # Eat the top of one side now and then, so the sorted region drains and must be refilled.
        if step % 50 == 0:
            bids += [[price, "0"] for price, _ in book.bids(200)]
        book.apply(step, bids, asks)
        _model_apply(model, bids, asks)
        want_bids, want_asks = _model_sides(model)
        assert book.top_n(25) == (want_bids[:25], want_asks[:25])
        assert book.bids(300) == want_bids[:300]
    assert book.depth() == _model_sides(model)
    assert book.bid_count == len(model["b"]) and book.ask_count == len(model["a"])


def test_venue_strings_survive_and_one_price_spelled_two_ways_is_one_level() -> None:
    book = OrderBook()
    book.load(10, [["100.10000000", "1.50000000"]], [["100.20", "0.001"]])
    assert book.best_bid() == ("100.10000000", "1.50000000")
    book.apply(11, [["100.1", "2"]], [])
    assert book.bids() == [("100.1", "2")]
    book.apply(12, [["100.100", "0.000"]], [])
    assert book.bids() == []
    assert book.last_update_id == 12


def test_reads_on_an_empty_and_a_crossed_book() -> None:
    book = OrderBook()
    assert book.best_bid() is None and book.best_ask() is None
    assert book.mid() is None and book.spread() is None and book.get_mid_price() is None
    assert book.top_n(5) == ([], [])
    assert not book.is_crossed()
    book.load(1, [["10.00", "1"]], [["10.50", "1"]])
    assert not book.is_crossed()
    assert book.spread() == Decimal("0.50") and book.mid() == Decimal("10.25")
    book.apply(2, [["10.50", "3"]], [])
    assert book.is_crossed()


def test_sketch_api_on_generic_dicts() -> None:
    book = OrderBook("BTCUSDT")
    with pytest.raises(SequenceGap):
        book.process_delta({"update_id": 1, "bids": [], "asks": []})
    book.process_snapshot({"update_id": 5, "bids": [[100.5, 2.0], [100.0, 1.0]], "asks": [["101.0", "3"]]})
    assert book.get_best_bid() == (100.5, 2.0)
    assert book.get_best_ask() == (101.0, 3.0)
    assert book.get_mid_price() == 100.75
    assert book.get_spread() == 0.5
    assert book.process_delta({"update_id": 5, "bids": [["100.5", "0"]]}) is False
    assert book.get_best_bid() == (100.5, 2.0)
    assert book.process_delta({"update_id": 6, "bids": [["100.5", "0"]], "asks": []}) is True
    assert book.get_best_bid() == (100.0, 1.0)
    with pytest.raises(SequenceGap):
        book.process_delta({"update_id": 8, "prev_update_id": 7, "bids": [], "asks": []})
    assert book.last_update_id == 6


def test_every_zero_spelling_removes_after_the_book_learned_another() -> None:
    """The loop compares sizes with the last zero it saw before the strip test; no spelling may slip past."""
    book = OrderBook()
    prices = [f"{100 + i}.00" for i in range(8)]
    book.load(1, [[p, "1"] for p in prices], [[f"{200 + i}.00", "1"] for i in range(8)])
    spellings = ["0", "0.00000000", "0.", ".0", "000.000", "0.0", "00", "0"]
    for step, (price, zero) in enumerate(zip(prices, spellings, strict=True), start=2):
        book.apply(step, [[price, zero], ["99.00", "00.5"]], [[f"{200 + step - 2}.00", zero]])
    assert book.bids() == [("99.00", "00.5")]
    assert book.asks() == []
    book.apply(20, [["98.00", "0.00100000"]], [["201.00", "0.00000001"]])
    assert book.bids() == [("99.00", "00.5"), ("98.00", "0.00100000")]
    assert book.asks() == [("201.00", "0.00000001")]


@pytest.mark.parametrize("price", [False, True, 1, 1.5, "nan", "inf"])
def test_a_price_that_is_not_a_finite_number_in_a_string_is_refused(price: Any) -> None:
    # float() takes a JSON `false` or `1` as a number, so without the type test a decoded frame's
    # non-string price became a key no venue sends (found by test_malformed_input's sync property).
    book = OrderBook()
    with pytest.raises(ValueError, match="not a finite number"):
        book.apply(1, [[price, "1.5"]], [])
    with pytest.raises(ValueError, match="not a finite number"):
        book.load(1, [], [[price, "1.5"]])
