"""How deep a REST snapshot the subject asks for: deep enough for the whole book, no deeper.

Binance charges request weight by depth: 250 for 5,000 levels, 50 for 1,000, 25 for 500, against
6,000 a minute per IP. A client that always asks for 5,000 levels can afford 24 snapshots a minute,
which a reorder-heavy feed or a few reconnects with several symbols use up (then 429, then a ban).
An answer with fewer levels than asked for is the whole book, so once a symbol's depth is known the
next snapshot asks for the cheapest limit with room for the book to double; an unknown depth, or an
answer that filled its limit (maybe cut short), asks for the deepest.
"""

from __future__ import annotations

from harness.venues.binance_spot.rest import DEPTH_MAX_LIMIT

DEPTH_CHOICES = (100, 500, 1000, DEPTH_MAX_LIMIT)
"""The limits where Binance's weight steps (5, 25, 50, 250), cheapest first."""
HEADROOM = 2


def snapshot_limit(levels: int | None, deepest: int = DEPTH_MAX_LIMIT) -> int:
    """The limit to ask for, given the most levels a side held in the last whole answer (None: unknown),
    on a venue whose deepest answer is `deepest` (USD-M: 1,000, one of its weight steps too)."""
    if levels is None:
        return deepest
    for limit in DEPTH_CHOICES:
        if limit <= deepest and levels * HEADROOM <= limit:
            return limit
    return deepest


def whole_book_levels(limit: int, bid_levels: int, ask_levels: int) -> int | None:
    """The book's depth an answer proves (its deeper side), or None when a side filled `limit` and may be cut."""
    deepest = max(bid_levels, ask_levels)
    return None if deepest >= limit else deepest
