"""The oracle's compressed tops answer exactly what was stored, in any order, across blocks."""

from __future__ import annotations

import random

import pytest

from harness.oracle_tops import TOPS_PER_BLOCK, TopsStore


def _top(i: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    return [(f"{100 - j}.{i}", f"{j}.5") for j in range(20)], [(f"{101 + j}.{i}", "1") for j in range(i % 21)]


def test_tops_come_back_as_stored_in_any_order_and_a_key_stored_again_answers_its_latest() -> None:
    store = TopsStore()
    count = TOPS_PER_BLOCK * 3 + 5  # three sealed blocks and an open one
    for i in range(count):
        store.put(("BTCUSDT", i), *_top(i))
    store.put(("BTCUSDT", 7), *_top(1000))
    keys = list(range(count))
    random.Random(1).shuffle(keys)
    for i in keys:
        bids, asks = _top(1000 if i == 7 else i)
        assert store.get(("BTCUSDT", i)) == (tuple(bids), tuple(asks))
    assert len(store) == count
    assert ("BTCUSDT", 3) in store and ("ETHUSDT", 3) not in store
    assert store.get(("BTCUSDT", count)) is None


def test_a_symbol_that_goes_back_keeps_every_key_and_each_symbol_its_own() -> None:
    store = TopsStore()
    order = [("BTCUSDT", 10), ("ETHUSDT", 10), ("BTCUSDT", 12), ("BTCUSDT", 11), ("BTCUSDT", 10), ("BTCUSDT", 13)]
    for n, key in enumerate(order):
        store.put(key, *_top(n))
    assert len(store) == 5
    assert store.get(("BTCUSDT", 10)) == (tuple(_top(4)[0]), tuple(_top(4)[1])), "stored again: the latest"
    assert store.get(("BTCUSDT", 11)) == (tuple(_top(3)[0]), tuple(_top(3)[1]))
    assert store.get(("ETHUSDT", 10)) == (tuple(_top(1)[0]), tuple(_top(1)[1]))
    assert ("ETHUSDT", 11) not in store and ("BTCUSDT", 13) in store
    store.close()
    assert len(store) == 0 and store.get(("BTCUSDT", 13)) is None


def test_keys_planned_first_are_answered_once_filled_in_the_same_order() -> None:
    store = TopsStore()
    count = TOPS_PER_BLOCK + 3
    places = [store.plan(("BTCUSDT", i % (count - 2))) for i in range(count)]  # the last two come again
    assert places == list(range(count)) and len(store) == count - 2
    assert ("BTCUSDT", 1) in store and store.place(("BTCUSDT", 1)) == count - 1
    for i in range(count - 1):
        store.fill(*_top(i))
    assert store.get(("BTCUSDT", 5)) == (tuple(_top(5)[0]), tuple(_top(5)[1]))
    with pytest.raises(ValueError, match="not filled yet"):
        store.get(("BTCUSDT", 1))  # planned again at the last place
    store.fill(*_top(99))
    assert store.get(("BTCUSDT", 1)) == (tuple(_top(99)[0]), tuple(_top(99)[1]))
    assert store.get(("BTCUSDT", 3)) == (tuple(_top(3)[0]), tuple(_top(3)[1]))  # from a sealed block
    with pytest.raises(ValueError, match="only 67 were planned"):
        store.fill(*_top(0))
