"""The bounded priority queue, case by case: ordering, each overflow policy, waiting, counters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.queue import BackpressureQueue, BoundedPriorityQueue, MessagePriority, OverflowPolicy

CRITICAL, HIGH, NORMAL, LOW = MessagePriority


def drain(queue: BoundedPriorityQueue) -> list:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_most_urgent_first_and_fifo_within_a_priority() -> None:
    queue = BoundedPriorityQueue(100)
    for i, priority in enumerate([LOW, NORMAL, LOW, CRITICAL, NORMAL, HIGH, CRITICAL]):
        assert queue.put_nowait((priority.name, i), priority)
    assert drain(queue) == [
        ("CRITICAL", 3),
        ("CRITICAL", 6),
        ("HIGH", 5),
        ("NORMAL", 1),
        ("NORMAL", 4),
        ("LOW", 0),
        ("LOW", 2),
    ]


def test_drop_lowest_evicts_the_oldest_of_the_lowest_level_and_counts_it() -> None:
    queue = BoundedPriorityQueue(3, "DROP_LOWEST")
    queue.put_nowait("low-a", LOW)
    queue.put_nowait("low-b", LOW)
    queue.put_nowait("normal", NORMAL)
    assert queue.put_nowait("high", HIGH)
    assert queue.priority_stats(LOW).dropped == 1
    assert queue.put_nowait("normal-2", NORMAL)
    assert queue.priority_stats(LOW).dropped == 2
    assert drain(queue) == ["high", "normal", "normal-2"]


def test_drop_lowest_drops_the_newcomer_when_nothing_queued_is_less_urgent() -> None:
    queue = BoundedPriorityQueue(2, OverflowPolicy.DROP_LOWEST)
    queue.put_nowait("a", HIGH)
    queue.put_nowait("b", NORMAL)
    assert not queue.put_nowait("c", NORMAL)
    assert not queue.put_nowait("d", LOW)
    assert drain(queue) == ["a", "b"]
    assert queue.priority_stats(NORMAL).dropped == 1
    assert queue.priority_stats(LOW).dropped == 1
    assert queue.get_metrics()["dropped"] == 2


def test_drop_oldest_evicts_the_same_priority_first_then_falls_back_to_lower() -> None:
    queue = BoundedPriorityQueue(3, "DROP_OLDEST")
    for name in ("n1", "n2"):
        queue.put_nowait(name, NORMAL)
    queue.put_nowait("l1", LOW)
    assert queue.put_nowait("n3", NORMAL)
    assert drain(queue) == ["n2", "n3", "l1"]
    queue.put_nowait("l2", LOW)
    queue.put_nowait("l3", LOW)
    queue.put_nowait("n4", NORMAL)
    assert queue.put_nowait("c1", CRITICAL)
    assert drain(queue) == ["c1", "n4", "l3"]
    for name in ("c2", "c3", "c4"):
        queue.put_nowait(name, CRITICAL)
    assert not queue.put_nowait("h1", HIGH)
    assert queue.priority_stats(HIGH).dropped == 1


def test_conflate_keeps_only_the_newest_per_key_in_the_oldest_position() -> None:
    queue = BoundedPriorityQueue(10, "CONFLATE", key_of=lambda item: item[0])
    queue.put_nowait(("BTC", 1))
    queue.put_nowait(("ETH", 1))
    queue.put_nowait(("BTC", 2))
    queue.put_nowait(("BTC", 3))
    assert queue.qsize() == 2
    stats = queue.priority_stats(NORMAL)
    assert (stats.offered, stats.dropped, stats.conflated) == (4, 2, 2)
    assert drain(queue) == [("BTC", 3), ("ETH", 1)]
    queue.put_nowait(("BTC", 4))
    assert drain(queue) == [("BTC", 4)]


def test_conflate_is_per_priority_and_explicit_key_wins_and_keyless_items_queue() -> None:
    queue = BoundedPriorityQueue(10, "CONFLATE")
    queue.put_nowait("a", NORMAL, key="k")
    queue.put_nowait("b", HIGH, key="k")
    queue.put_nowait("c", NORMAL, key="k")
    queue.put_nowait("x", NORMAL)
    queue.put_nowait("y", NORMAL)
    assert drain(queue) == ["b", "c", "x", "y"]


def test_conflate_on_a_full_queue_with_a_new_key_falls_back_to_drop_lowest() -> None:
    queue = BoundedPriorityQueue(2, "CONFLATE")
    queue.put_nowait("old", LOW, key="a")
    queue.put_nowait("keep", NORMAL, key="b")
    assert queue.put_nowait("new", NORMAL, key="c")
    assert queue.put_nowait("keep-2", NORMAL, key="b")
    assert drain(queue) == ["keep-2", "new"]
    queue.put_nowait("after-evict", LOW, key="a")
    assert drain(queue) == ["after-evict"]


def test_block_put_nowait_refuses_and_counts() -> None:
    queue = BoundedPriorityQueue(1, "BLOCK")
    assert queue.put_nowait("a", LOW)
    assert not queue.put_nowait("b", CRITICAL)
    assert queue.priority_stats(CRITICAL).dropped == 1
    assert drain(queue) == ["a"]


def test_block_put_waits_for_room_and_a_get_wakes_it() -> None:
    asyncio.run(_block_put_waits_for_room_and_a_get_wakes_it())


async def _block_put_waits_for_room_and_a_get_wakes_it() -> None:
    queue = BoundedPriorityQueue(1, "BLOCK")
    await queue.put("first")
    putter = asyncio.create_task(queue.put("second", HIGH))
    await asyncio.sleep(0)
    assert not putter.done()
    assert queue.get_nowait() == "first"
    assert await asyncio.wait_for(putter, 5) is True
    assert queue.get_nowait() == "second"


def test_a_waiting_get_returns_when_an_item_is_put() -> None:
    asyncio.run(_a_waiting_get_returns_when_an_item_is_put())


async def _a_waiting_get_returns_when_an_item_is_put() -> None:
    queue = BoundedPriorityQueue(4)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait("hello")
    assert await asyncio.wait_for(getter, 5) == "hello"


def test_a_getter_cancelled_after_its_wake_up_passes_it_on() -> None:
    asyncio.run(_a_getter_cancelled_after_its_wake_up_passes_it_on())


async def _a_getter_cancelled_after_its_wake_up_passes_it_on() -> None:
    queue = BoundedPriorityQueue(4)
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("only")
    first.cancel()
    assert await asyncio.wait_for(second, 5) == "only"
    assert first.cancelled()


def test_a_putter_cancelled_after_its_wake_up_passes_it_on() -> None:
    asyncio.run(_a_putter_cancelled_after_its_wake_up_passes_it_on())


async def _a_putter_cancelled_after_its_wake_up_passes_it_on() -> None:
    queue = BoundedPriorityQueue(1, "BLOCK")
    queue.put_nowait("full")
    first = asyncio.create_task(queue.put("first"))
    second = asyncio.create_task(queue.put("second"))
    await asyncio.sleep(0)
    assert queue.get_nowait() == "full"
    first.cancel()
    assert await asyncio.wait_for(second, 5) is True
    assert first.cancelled()
    assert drain(queue) == ["second"]


def test_get_times_out_with_none_and_leaves_no_waiter_behind() -> None:
    asyncio.run(_get_times_out_with_none_and_leaves_no_waiter_behind())


async def _get_times_out_with_none_and_leaves_no_waiter_behind() -> None:
    queue = BoundedPriorityQueue(4)
    assert await queue.get(timeout=0.001) is None
    assert await queue.get_with_meta(timeout=0.001) is None
    queue.put_nowait("late")
    assert await queue.get(timeout=5) == "late"


def test_queued_time_uses_the_injected_clock() -> None:
    now = [1_000]
    queue = BoundedPriorityQueue(4, clock=lambda: now[0])
    queue.put_nowait("a", HIGH)
    now[0] = 4_500
    queue.put_nowait("b", LOW)
    now[0] = 10_000
    first = queue.get_nowait_with_meta()
    assert (first.item, first.priority, first.queued_ns, first.enqueued_ns) == ("a", HIGH, 9_000, 1_000)
    second = queue.get_nowait_with_meta()
    assert (second.queued_ns, second.enqueued_ns) == (5_500, 4_500)
    assert queue.priority_stats(HIGH).queued.max == 9_000
    assert queue.get_metrics()["by_priority"]["LOW"]["queued_us"]["max"] == 5.5


def test_counters_and_sketch_metrics() -> None:
    queue = BackpressureQueue(max_size=2)
    queue.put_nowait(1, LOW)
    queue.put_nowait(2, LOW)
    queue.put_nowait(3, LOW)
    assert queue.get_nowait() == 1
    metrics = queue.get_metrics()
    assert metrics["queue_size"] == queue.qsize() == 1
    assert metrics["processed"] == 1
    assert metrics["dropped"] == 1
    assert metrics["drop_rate"] == pytest.approx(1 / 3)
    assert metrics["high_water"] == 2
    low = metrics["by_priority"]["LOW"]
    assert (low["offered"], low["enqueued"], low["dequeued"], low["depth"], low["high_water"]) == (3, 2, 1, 1, 2)


def test_empty_get_nowait_raises_queue_empty() -> None:
    with pytest.raises(asyncio.QueueEmpty):
        BoundedPriorityQueue(1).get_nowait()


def test_plain_int_priorities_are_accepted() -> None:
    queue = BoundedPriorityQueue(4)
    queue.put_nowait("low", 3)
    queue.put_nowait("crit", 0)
    assert queue.get_nowait_with_meta().priority is CRITICAL


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: BoundedPriorityQueue(0), "max_size"),
        (lambda: BoundedPriorityQueue(4, "DROP_NEWEST"), "unknown queue policy"),
        (lambda: BoundedPriorityQueue(4).put_nowait("x", 7), "unknown priority"),
    ],
)
def test_bad_arguments_are_user_errors(make, message) -> None:
    with pytest.raises(HarnessError, match=message):
        make()


def test_async_put_and_get_count_and_time_like_the_nowait_calls() -> None:
    """`put`/`get` and `put_nowait`/`get_nowait*` share one fast path below capacity and one general path at it."""
    asyncio.run(_async_put_and_get_count_and_time_like_the_nowait_calls())


async def _async_put_and_get_count_and_time_like_the_nowait_calls() -> None:
    ops: list[tuple[Any, ...]] = [("put", i, p) for i, p in enumerate([LOW, NORMAL, LOW, HIGH, CRITICAL, LOW, NORMAL])]
    ops[3:3] = [("get",), ("get_meta",)]
    now = [0]
    by_async = BoundedPriorityQueue(4, "DROP_LOWEST", clock=lambda: now[0])
    by_nowait = BoundedPriorityQueue(4, "DROP_LOWEST", clock=lambda: now[0])
    for step, op in enumerate(ops):
        now[0] = 1_000 * step
        if op[0] == "put":
            assert await by_async.put(op[1], op[2]) == by_nowait.put_nowait(op[1], op[2])
        elif op[0] == "get":
            assert await by_async.get() == by_nowait.get_nowait()
        else:
            got, want = await by_async.get_with_meta(), by_nowait.get_nowait_with_meta()
            assert got == want and type(got) is type(want) and got.priority is want.priority
            assert got.queued_ns == now[0] - got.enqueued_ns > 0
    assert by_async.get_metrics() == by_nowait.get_metrics()
    assert by_async.get_metrics()["high_water"] == 4 and by_async.get_metrics()["dropped"] == 1
    assert drain(by_async) == drain(by_nowait) == [4, 3, 6, 5]
