"""The typed event bus: routing by class, isolation of slow and failing subscribers, clean stop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from harness.bus import EventBus
from harness.errors import HarnessError
from harness.queue import MessagePriority


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    price: str


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    bid: str


@dataclass(frozen=True)
class ConnectionEvent:
    venue: str


@dataclass(frozen=True)
class Reconnected(ConnectionEvent):
    attempt: int


def other_tasks() -> set[asyncio.Task]:
    return asyncio.all_tasks() - {asyncio.current_task()}


class Collector:
    """A handler that remembers what it saw and signals once `expect` events arrived."""

    def __init__(self, expect: int) -> None:
        self.seen: list = []
        self.expect = expect
        self.done = asyncio.Event()

    def __call__(self, event) -> None:
        self.seen.append(event)
        if len(self.seen) >= self.expect:
            self.done.set()


def test_events_route_by_class_including_subclasses_to_sync_and_async_handlers() -> None:
    async def body() -> None:
        bus = EventBus()
        trades = Collector(2)
        connections = Collector(2)
        async_seen: list = []
        async_done = asyncio.Event()

        async def on_ticker(event: Ticker) -> None:
            async_seen.append(event)
            async_done.set()

        bus.subscribe(Trade, trades)
        bus.subscribe(ConnectionEvent, connections)
        bus.subscribe(Ticker, on_ticker)
        await bus.start()
        assert bus.publish(Trade("BTCUSDT", "1")) == 1
        assert bus.publish(Reconnected("binance", 3)) == 1
        assert bus.publish(Ticker("BTCUSDT", "0.9")) == 1
        assert bus.publish(Trade("ETHUSDT", "2")) == 1
        assert bus.publish(ConnectionEvent("binance")) == 1
        await asyncio.wait_for(asyncio.gather(trades.done.wait(), connections.done.wait(), async_done.wait()), 5)
        await bus.stop()
        assert trades.seen == [Trade("BTCUSDT", "1"), Trade("ETHUSDT", "2")]
        assert connections.seen == [Reconnected("binance", 3), ConnectionEvent("binance")]
        assert async_seen == [Ticker("BTCUSDT", "0.9")]

    asyncio.run(body())


def test_a_failing_handler_is_counted_not_printed_and_the_rest_keep_flowing(capsys) -> None:
    async def body() -> None:
        bus = EventBus()
        healthy = Collector(3)

        def broken(event: Trade) -> None:
            if event.price == "2":
                raise ValueError("bad price")

        failing = bus.subscribe(Trade, broken, name="broken")
        bus.subscribe(Trade, healthy, name="healthy")
        await bus.start()
        for price in ("1", "2", "3"):
            bus.publish(Trade("BTCUSDT", price))
        await asyncio.wait_for(healthy.done.wait(), 5)
        await bus.stop()
        assert (failing.errors, failing.delivered) == (1, 2)
        assert failing.last_error == "ValueError: bad price"
        stats = bus.stats()
        assert stats["broken"]["errors"] == 1
        assert stats["healthy"]["delivered"] == 3

    asyncio.run(body())
    assert capsys.readouterr() == ("", "")


def test_a_stuck_subscriber_drops_its_own_events_and_never_blocks_publish_or_others() -> None:
    async def body() -> None:
        bus = EventBus()
        release = asyncio.Event()
        fast = Collector(100)

        async def stuck(event: Trade) -> None:
            await release.wait()

        slow = bus.subscribe(Trade, stuck, max_size=5, policy="DROP_OLDEST")
        bus.subscribe(Trade, fast, max_size=1000)
        await bus.start()
        for i in range(100):
            bus.publish(Trade("BTCUSDT", str(i)))
        await asyncio.wait_for(fast.done.wait(), 5)
        assert len(fast.seen) == 100
        metrics = slow.queue.get_metrics()
        assert metrics["offered"] == 100
        assert metrics["dropped"] == 95
        assert metrics["processed"] + metrics["queue_size"] == 5
        release.set()
        await bus.stop()
        assert slow.delivered == 5
        assert slow.errors == 0

    asyncio.run(body())


def test_conflating_subscriber_sees_only_the_newest_per_key() -> None:
    async def body() -> None:
        bus = EventBus()
        seen = Collector(2)
        sub = bus.subscribe(Ticker, seen, policy="CONFLATE", key_of=lambda e: e.symbol)
        for bid in ("1", "2", "3"):
            bus.publish(Ticker("BTCUSDT", bid))
            bus.publish(Ticker("ETHUSDT", bid))
        assert sub.queue.qsize() == 2
        await bus.start()
        await asyncio.wait_for(seen.done.wait(), 5)
        await bus.stop()
        assert seen.seen == [Ticker("BTCUSDT", "3"), Ticker("ETHUSDT", "3")]

    asyncio.run(body())


def test_publish_priority_orders_delivery_within_a_subscriber() -> None:
    async def body() -> None:
        bus = EventBus()
        seen = Collector(3)
        bus.subscribe(Trade, seen)
        bus.publish(Trade("A", "low"), MessagePriority.LOW)
        bus.publish(Trade("A", "normal"))
        bus.publish(Trade("A", "critical"), MessagePriority.CRITICAL)
        await bus.start()
        await asyncio.wait_for(seen.done.wait(), 5)
        await bus.stop()
        assert [e.price for e in seen.seen] == ["critical", "normal", "low"]

    asyncio.run(body())


def test_stop_drains_queued_events_and_leaves_no_task_behind() -> None:
    async def body() -> None:
        bus = EventBus()
        gate = asyncio.Event()
        seen: list = []

        async def handler(event: Trade) -> None:
            await gate.wait()
            seen.append(event.price)

        idle = Collector(1)
        bus.subscribe(Trade, handler)
        bus.subscribe(Ticker, idle)
        await bus.start()
        for i in range(5):
            bus.publish(Trade("A", str(i)))
        gate.set()
        await bus.stop()
        assert seen == ["0", "1", "2", "3", "4"]
        assert idle.seen == []
        assert other_tasks() == set()
        assert not bus.running

    asyncio.run(body())


def test_stop_without_drain_cancels_at_once_and_start_resumes_the_rest() -> None:
    async def body() -> None:
        bus = EventBus()
        seen = Collector(3)
        sub = bus.subscribe(Trade, seen)
        for i in range(3):
            bus.publish(Trade("A", str(i)))
        await bus.start()
        await bus.stop(drain=False)
        assert other_tasks() == set()
        remaining = sub.queue.qsize()
        assert len(seen.seen) + remaining == 3
        await bus.start()
        await asyncio.wait_for(seen.done.wait(), 5)
        await bus.stop()
        assert [e.price for e in seen.seen] == ["0", "1", "2"]

    asyncio.run(body())


def test_stop_cancels_a_handler_that_outlives_the_timeout() -> None:
    async def body() -> None:
        bus = EventBus()
        entered = asyncio.Event()

        async def hangs(event: Trade) -> None:
            entered.set()
            await asyncio.Event().wait()

        bus.subscribe(Trade, hangs)
        await bus.start()
        bus.publish(Trade("A", "1"))
        await asyncio.wait_for(entered.wait(), 5)
        await bus.stop(timeout=0.01)
        assert other_tasks() == set()

    asyncio.run(body())


def test_subscribe_while_running_and_unsubscribe() -> None:
    async def body() -> None:
        bus = EventBus()
        await bus.start()
        first = Collector(1)
        sub = bus.subscribe(Trade, first)
        bus.publish(Trade("A", "1"))
        await asyncio.wait_for(first.done.wait(), 5)
        await bus.unsubscribe(sub)
        assert bus.publish(Trade("A", "2")) == 0
        assert first.seen == [Trade("A", "1")]
        await bus.stop()
        assert other_tasks() == set()

    asyncio.run(body())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda bus: bus.subscribe(Trade, print, policy="BLOCK"), "cannot use BLOCK"),
        (lambda bus: bus.subscribe("Trade", print), "event class"),
        (lambda bus: bus.subscribe(Trade, "print"), "not callable"),
        (lambda bus: bus.publish({"type": "trade"}), "dataclass"),
        (lambda bus: bus.subscribe(Trade, print, policy="SOMETIMES"), "unknown queue policy"),
    ],
)
def test_misuse_is_a_clear_error(call, message) -> None:
    with pytest.raises(HarnessError, match=message):
        call(EventBus())
