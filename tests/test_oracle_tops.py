"""The oracle's compressed tops answer exactly what was stored, in any order, across blocks."""

from __future__ import annotations

import random

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
