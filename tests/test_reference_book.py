"""The reference book (the oracle's and the fake venue's truth) against a dict sorted on demand."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.reference_book import ReferenceBook

prices = st.integers(1, 60).map(lambda p: f"{p / 4:.2f}")
sizes = st.sampled_from(["0", "0.000", "1", "2.5", "0.001"])
sides = st.lists(st.tuples(prices, sizes), max_size=8)


def apply_to_model(model: list[dict[str, str]], sides: tuple[list, list]) -> None:
    for side, levels in zip(model, sides, strict=True):
        for price, size in levels:
            if float(size) == 0:
                side.pop(price, None)
            else:
                side[price] = size


def model_side(levels: dict[str, str], best_high: bool) -> list[tuple[str, str]]:
    return sorted(levels.items(), key=lambda kv: -float(kv[0]) if best_high else float(kv[0]))


@settings(max_examples=120, deadline=None)
@given(st.tuples(sides, sides), st.lists(st.tuples(sides, sides), max_size=30), st.integers(0, 9))
def test_levels_best_first_after_any_updates_and_a_copy_goes_its_own_way(
    snapshot: tuple[list, list], updates: list[tuple[list, list]], depth: int
) -> None:
    book = ReferenceBook()
    book.load(1, *snapshot)
    model: list[dict[str, str]] = [{}, {}]
    apply_to_model(model, snapshot)
    copy = book.copy()
    at_snapshot = (model_side(model[0], True), model_side(model[1], False))
    for n, update in enumerate(updates, start=2):
        book.apply(n, *update)
        apply_to_model(model, update)
        assert book.bids() == model_side(model[0], True) and book.asks() == model_side(model[1], False)
        assert book.bids(depth) == model_side(model[0], True)[:depth]
        assert book.asks(depth) == model_side(model[1], False)[:depth]
        assert len(book) == len(model[0]) + len(model[1])
        assert all(book.has_level(True, p) for p in model[0]) and all(book.has_level(False, p) for p in model[1])
    assert copy.last_update_id == 1 and (copy.bids(), copy.asks()) == at_snapshot
