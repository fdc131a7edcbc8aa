"""A seeded market: one symbol's limit order book, changed by adds, cancels and trades over time.

Pure and venue-neutral: prices are integer ticks, sizes integer lots, times nanoseconds from the
start of the simulation, and the only randomness is the seeded generator, so a seed is a market.
The model is small on purpose. A hidden fair price wanders (a random walk, plus a steady drift for
a trending symbol); orders arrive as a Poisson process, most near the touch and some deep in the
book; takers lean towards the fair price, which drags the touch after it; now and then a burst
multiplies the arrival rate for a moment.
The book is never crossed and never thinner than `min_levels` a side.

Every book change takes the next venue update id (Binance counts individual changes); a trade
prints first and then the level change it caused, at the same instant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from sortedcontainers import SortedDict

from harness.errors import HarnessError


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Rates are per second of simulated time; distances are ticks; shares are probabilities.

    Distances are in ticks, so a symbol whose tick is a large share of its price (a coin quoted in
    satoshi-like ticks) needs its own, smaller ones. `drift_ticks_per_s` adds a steady trend to the
    fair price's random walk: it is how a symbol is made to cross a round price during a recording.
    """

    order_rate: float = 160.0
    add_share: float = 0.52
    cancel_share: float = 0.38
    burst_every_s: float = 12.0
    burst_mean_s: float = 0.6
    burst_multiplier: float = 6.0
    move_rate: float = 5.0
    move_sigma_ticks: float = 30.0
    taker_pressure_ticks: float = 6.0
    near_share: float = 0.6
    near_mean_ticks: float = 4.0
    deep_range_ticks: int = 3_000
    max_depth_ticks: int = 3_600
    initial_levels: int = 300
    target_levels: int = 320
    min_levels: int = 50
    near_cancel_share: float = 0.5
    near_cancel_mean_levels: float = 6.0
    full_cancel_share: float = 0.6
    order_size_sigma: float = 1.2
    trade_size_sigma: float = 2.0
    drift_ticks_per_s: float = 0.0
    foreign_ids_per_change: float = 0.0
    """Mean update ids the venue's other books use between two changes of this one: 0 where each
    symbol counts its own (Binance spot), more where one counter serves every book (USD-M), so
    consecutive events of a symbol skip ids (`U > previous u + 1`)."""


@dataclass(frozen=True, slots=True)
class SynthSymbol:
    """A symbol's exchange rules and a plausible market for it.

    Tick and lot are in 1e-8 units (Binance's fixed point). `size_decimals` is how many decimals
    Binance writes the symbol's sizes with (its base asset's precision: 8 for most, 2 for coins with
    a huge supply); prices are always written with 8.
    """

    symbol: str
    base_asset: str
    quote_asset: str
    tick_units: int
    lot_units: int
    start_price_ticks: int
    order_size_units: int
    trade_size_units: int
    size_decimals: int = 8
    market: MarketParams = MarketParams()


ETH_MARKET = MarketParams(order_rate=100.0)
"""Busy, but less so than BTCUSDT."""

SOL_MARKET = MarketParams(
    order_rate=70.0,
    move_sigma_ticks=2.0,
    drift_ticks_per_s=3.0,
    deep_range_ticks=800,
    max_depth_ticks=1_000,
    initial_levels=250,
    target_levels=270,
)
"""Trending: the fair price starts 90 ticks under 100.00 and drifts 3 ticks a second, so the touch
crosses 100.00 within a 60 s recording (at 16 to 47 s over seeds 1-20) while the book holds levels on
both sides ("99.98000000" next to "100.02000000": price strings change length)."""

SHIB_MARKET = MarketParams(
    order_rate=60.0,
    move_rate=2.0,
    move_sigma_ticks=0.7,
    taker_pressure_ticks=1.0,
    near_mean_ticks=1.5,
    deep_range_ticks=150,
    max_depth_ticks=180,
    initial_levels=150,
    target_levels=160,
    min_levels=40,
    trade_size_sigma=1.0,
)
"""A tick is 0.1% of the price here, so every tick near the touch is a level, the walk moves by
single ticks, and market orders have thinner tails (one would otherwise sweep dozens of levels)."""

SYMBOLS: dict[str, SynthSymbol] = {
    spec.symbol: spec
    for spec in (
        # Binance spot's rules for each: BTCUSDT tick 0.01, step 0.00001; ETHUSDT tick 0.01, step 0.0001;
        # SOLUSDT tick 0.01, step 0.001; SHIBUSDT tick 0.00000001, step 1.00 (base precision 2).
        SynthSymbol("BTCUSDT", "BTC", "USDT", 1_000_000, 1_000, 4_200_000, 2_000_000, 60_000),
        SynthSymbol("ETHUSDT", "ETH", "USDT", 1_000_000, 10_000, 230_000, 30_000_000, 1_000_000, market=ETH_MARKET),
        SynthSymbol("SOLUSDT", "SOL", "USDT", 1_000_000, 100_000, 9_910, 500_000_000, 50_000_000, market=SOL_MARKET),
        SynthSymbol("SHIBUSDT", "SHIB", "USDT", 1, 10**8, 985, 2 * 10**15, 10**14, size_decimals=2, market=SHIB_MARKET),
    )
}


def symbol_spec(symbol: str) -> SynthSymbol:
    try:
        return SYMBOLS[symbol.upper()]
    except KeyError:
        known = ", ".join(sorted(SYMBOLS))
        raise HarnessError(f"no synthetic market for symbol {symbol!r}; known symbols: {known}") from None


@dataclass(frozen=True, slots=True)
class BookChange:
    """Level `price` on one side now holds `size` lots (0: the level is gone)."""

    time_ns: int
    update_id: int
    is_bid: bool
    price: int
    size: int


@dataclass(frozen=True, slots=True)
class Trade:
    """A fill of `quantity` lots at `price`; `buyer_is_maker` when a seller took a resting bid."""

    time_ns: int
    trade_id: int
    price: int
    quantity: int
    buyer_is_maker: bool


MarketEvent = BookChange | Trade


class MarketSimulator:
    """Builds the initial book on construction; `run(until_ns)` then yields the market's events."""

    def __init__(self, spec: SynthSymbol, seed: int, params: MarketParams | None = None) -> None:
        self.spec = spec
        self.params = params or spec.market
        self._rng = random.Random(f"harness.synth.market:{spec.symbol}:{seed}")
        self._id_rng = random.Random(f"harness.synth.ids:{spec.symbol}:{seed}")
        """Its own stream, so that skipping ids does not change the market."""
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()
        self.last_update_id = self._rng.randrange(10**10, 9 * 10**10)
        self.last_trade_id = self._rng.randrange(10**9, 4 * 10**9)
        self._walk = self._fair = spec.start_price_ticks
        self._order_lots = max(1, spec.order_size_units // spec.lot_units)
        self._trade_lots = max(1, spec.trade_size_units // spec.lot_units)
        self._build_book()

    def book(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The current levels as `(price, size)`: bids best first, asks best first."""
        return list(reversed(self.bids.items())), list(self.asks.items())

    def run(self, until_ns: int) -> Iterator[MarketEvent]:
        """Yields events with `time_ns < until_ns` in time order; call once per simulator."""
        rng = self._rng
        p = self.params
        t = 0
        in_burst = False
        while True:
            order_rate = p.order_rate * (p.burst_multiplier if in_burst else 1.0)
            toggle_rate = 1.0 / (p.burst_mean_s if in_burst else p.burst_every_s)
            total = order_rate + p.move_rate + toggle_rate
            t += int(rng.expovariate(total) * 1e9)
            if t >= until_ns:
                return
            pick = rng.random() * total
            if pick < toggle_rate:
                in_burst = not in_burst
            elif pick < toggle_rate + p.move_rate:
                self._walk += round(rng.gauss(0.0, p.move_sigma_ticks))
                self._fair = self._walk + round(p.drift_ticks_per_s * t / 1e9)
            else:
                kind = rng.random()
                if kind < p.add_share:
                    yield self._add(t)
                elif kind < p.add_share + p.cancel_share:
                    yield self._cancel(t)
                else:
                    yield from self._take(t)

    def _build_book(self) -> None:
        rng = self._rng
        p = self.params
        mean_gap = max(1.0, p.deep_range_ticks / p.initial_levels)
        for is_bid, side in ((True, self.bids), (False, self.asks)):
            price = self._fair if is_bid else self._fair + 1
            for i in range(p.initial_levels):
                side[price] = self._size(self._order_lots, p.order_size_sigma)
                gap = 1 + (int(rng.expovariate(1.0 / (mean_gap - 1))) if i >= 10 and mean_gap > 1 else 0)
                price = price - gap if is_bid else price + gap
                if price <= 0:
                    break

    def _change(self, t: int, is_bid: bool, price: int, size: int) -> BookChange:
        side = self.bids if is_bid else self.asks
        if size:
            side[price] = size
        else:
            del side[price]
        self.last_update_id += 1
        if self.params.foreign_ids_per_change:
            self.last_update_id += int(self._id_rng.expovariate(1.0 / self.params.foreign_ids_per_change))
        return BookChange(t, self.last_update_id, is_bid, price, size)

    def _size(self, median_lots: int, sigma: float) -> int:
        return max(1, int(median_lots * math.exp(self._rng.gauss(0.0, sigma))))

    def _add(self, t: int) -> BookChange:
        """A resting order near the fair price, or deep; deep orders join existing levels once the side is full."""
        rng = self._rng
        p = self.params
        is_bid = rng.random() < 0.5
        side = self.bids if is_bid else self.asks
        if rng.random() < p.near_share:
            distance = int(rng.expovariate(1.0 / p.near_mean_ticks))
        elif len(side) >= p.target_levels:
            keys = side.keys()
            index = rng.randrange(len(keys))
            price = keys[-1 - index] if is_bid else keys[index]
            return self._change(t, is_bid, price, side[price] + self._size(self._order_lots, p.order_size_sigma))
        else:
            distance = int(rng.random() * p.deep_range_ticks)
        if is_bid:
            price = max(1, min(self._fair - distance, self.asks.keys()[0] - 1))
        else:
            price = max(self._fair + 1 + distance, self.bids.keys()[-1] + 1)
        return self._change(t, is_bid, price, side.get(price, 0) + self._size(self._order_lots, p.order_size_sigma))

    def _cancel(self, t: int) -> BookChange:
        rng = self._rng
        p = self.params
        is_bid = rng.random() < 0.5
        side = self.bids if is_bid else self.asks
        levels = len(side)
        if levels <= p.min_levels:
            return self._add(t)
        keys = side.keys()
        touch, far = (keys[-1], keys[0]) if is_bid else (keys[0], keys[-1])
        stale = touch > self._fair if is_bid else touch <= self._fair
        if stale:
            return self._change(t, is_bid, touch, 0)
        if abs(far - touch) > p.max_depth_ticks:
            return self._change(t, is_bid, far, 0)
        if rng.random() < p.near_cancel_share:
            index = min(levels - 1, int(rng.expovariate(1.0 / p.near_cancel_mean_levels)))
        else:
            index = rng.randrange(levels)
        price = keys[-1 - index] if is_bid else keys[index]
        size = side[price]
        if rng.random() < p.full_cancel_share:
            return self._change(t, is_bid, price, 0)
        return self._change(t, is_bid, price, size - max(1, int(size * rng.random())))

    def _take(self, t: int) -> Iterator[MarketEvent]:
        """A market order: walks the opposite side from the touch, one trade per level it hits."""
        rng = self._rng
        p = self.params
        mid_twice = self.bids.keys()[-1] + self.asks.keys()[0]
        lean = (2 * self._fair + 1 - mid_twice) / (2 * p.taker_pressure_ticks)
        buy = rng.random() < 0.5 + 0.45 * math.tanh(lean)
        side = self.asks if buy else self.bids
        remaining = self._size(self._trade_lots, p.trade_size_sigma)
        while remaining > 0 and len(side) > p.min_levels:
            price, size = side.peekitem(0 if buy else -1)
            fill = min(remaining, size)
            remaining -= fill
            self.last_trade_id += 1
            yield Trade(t, self.last_trade_id, price, fill, buyer_is_maker=not buy)
            yield self._change(t, not buy, price, size - fill)
