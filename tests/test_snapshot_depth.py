"""The default subject's snapshot depth: the whole book at the lowest request weight."""

from __future__ import annotations

from harness.snapshot_depth import snapshot_limit, whole_book_levels
from harness.venues.binance_spot.rest import DEPTH_PATH, request_weight


def _weight(limit: int) -> int:
    return request_weight(DEPTH_PATH, {"limit": [str(limit)]})


def test_an_unknown_or_deep_book_asks_for_5000_levels_and_a_thin_one_for_less() -> None:
    assert snapshot_limit(None) == snapshot_limit(2600) == 5000
    assert (snapshot_limit(300), snapshot_limit(40), snapshot_limit(501)) == (1000, 100, 5000)
    assert _weight(snapshot_limit(300)) * 5 == _weight(snapshot_limit(None))  # 50 against 250


def test_an_answer_that_filled_its_limit_proves_no_depth() -> None:
    assert whole_book_levels(5000, 301, 296) == 301
    assert whole_book_levels(1000, 1000, 12) is None
    assert snapshot_limit(whole_book_levels(1000, 1000, 12)) == 5000
