"""Queue invariants under any sequence and any interleaving of puts and gets (hypothesis).

1. Against a naive model (a plain list scanned on every call): the same put results, the same
   items out in the same order, the same per-priority counters, for every policy.
2. Under asyncio interleavings of waiting getters, blocked putters, non-blocking calls, yields and
   cancellations: nothing offered is lost without being counted as dropped, nothing is delivered
   twice, and no waiter stays stuck once it could proceed (a lost wake-up shows up as a task that
   never finishes while the loop is stepped).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.queue import BoundedPriorityQueue, MessagePriority, OverflowPolicy

PRIORITIES = list(MessagePriority)
POLICIES = list(OverflowPolicy)
KEYS = st.one_of(st.none(), st.sampled_from("abc"))


@dataclass
class _Item:
    priority: int
    value: int
    key: str | None


@dataclass
class Model:
    """The queue's contract written the slow, obvious way."""

    capacity: int
    policy: OverflowPolicy
    items: list[_Item] = field(default_factory=list)
    offered: list[int] = field(default_factory=lambda: [0] * 4)
    dropped: list[int] = field(default_factory=lambda: [0] * 4)
    dequeued: list[int] = field(default_factory=lambda: [0] * 4)

    def put(self, value: int, priority: int, key: str | None) -> bool:
        self.offered[priority] += 1
        if self.policy is OverflowPolicy.CONFLATE and key is not None:
            for item in self.items:
                if item.priority == priority and item.key == key:
                    item.value = value
                    self.dropped[priority] += 1
                    return True
        if len(self.items) >= self.capacity:
            victim = None
            if self.policy is OverflowPolicy.DROP_OLDEST:
                victim = next((i for i in self.items if i.priority == priority), None)
            if victim is None and self.policy is not OverflowPolicy.BLOCK:
                lower = [i for i in self.items if i.priority > priority]
                if lower:
                    lowest = max(i.priority for i in lower)
                    victim = next(i for i in self.items if i.priority == lowest)
            if victim is None:
                self.dropped[priority] += 1
                return False
            self.items.remove(victim)
            self.dropped[victim.priority] += 1
        self.items.append(_Item(priority, value, key if self.policy is OverflowPolicy.CONFLATE else None))
        return True

    def get(self) -> tuple[int, int] | None:
        if not self.items:
            return None
        best = min(i.priority for i in self.items)
        item = next(i for i in self.items if i.priority == best)
        self.items.remove(item)
        self.dequeued[best] += 1
        return item.value, best


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(PRIORITIES), KEYS),
        st.tuples(st.just("get")),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(policy=st.sampled_from(POLICIES), capacity=st.integers(1, 6), ops=OPS)
def test_queue_matches_the_model_for_any_sequence(policy: OverflowPolicy, capacity: int, ops: list) -> None:
    queue = BoundedPriorityQueue(capacity, policy, clock=lambda: 0)
    model = Model(capacity, policy)
    for value, op in enumerate(ops):
        if op[0] == "put":
            _, priority, key = op
            assert queue.put_nowait(value, priority, key) == model.put(value, priority, key)
        else:
            expected = model.get()
            if expected is None:
                assert queue.empty()
                continue
            delivery = queue.get_nowait_with_meta()
            assert (delivery.item, delivery.priority) == expected
            assert all(delivery.priority <= i.priority for i in model.items), "a more urgent item was waiting"
        assert queue.qsize() == len(model.items) <= capacity
        for p in PRIORITIES:
            stats = queue.priority_stats(p)
            depth = sum(1 for i in model.items if i.priority == p)
            assert (stats.offered, stats.dropped, stats.dequeued, stats.depth) == (
                model.offered[p],
                model.dropped[p],
                model.dequeued[p],
                depth,
            )
            assert stats.offered == stats.dequeued + stats.dropped + stats.depth
            assert stats.high_water >= depth
    if policy is OverflowPolicy.CONFLATE:
        keyed = [(i.priority, i.key) for i in model.items if i.key is not None]
        assert len(keyed) == len(set(keyed)), "two items of one key queued under CONFLATE"


ASYNC_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("spawn_get")),
        st.tuples(st.just("spawn_put"), st.sampled_from(PRIORITIES), KEYS),
        st.tuples(st.just("put_nowait"), st.sampled_from(PRIORITIES), KEYS),
        st.tuples(st.just("get_nowait")),
        st.tuples(st.just("yield")),
        st.tuples(st.just("cancel"), st.integers(0, 3)),
    ),
    max_size=40,
)

MAX_STEPS = 10_000


async def _interleave(policy: OverflowPolicy, capacity: int, ops: list) -> None:
    queue = BoundedPriorityQueue(capacity, policy, clock=lambda: 0)
    getters: list[asyncio.Task] = []
    putters: dict[asyncio.Task, int] = {}
    offered_now: list[int] = []
    received: list[int] = []
    values = iter(range(10**9))

    def take_nowait() -> None:
        if not queue.empty():
            received.append(queue.get_nowait())

    for op in ops:
        kind = op[0]
        if kind == "spawn_get":
            getters.append(asyncio.create_task(queue.get()))
        elif kind == "spawn_put":
            value = next(values)
            putters[asyncio.create_task(queue.put(value, op[1], op[2]))] = value
        elif kind == "put_nowait":
            value = next(values)
            offered_now.append(value)
            queue.put_nowait(value, op[1], op[2])
        elif kind == "get_nowait":
            take_nowait()
        elif kind == "yield":
            await asyncio.sleep(0)
        else:
            tasks = [t for t in getters + list(putters) if not t.done()]
            if tasks:
                tasks[op[1] % len(tasks)].cancel()

    # Step the loop until every task has finished, feeding getters and draining for putters only
    # when nothing else can make progress. A lost wake-up leaves a task pending with its condition
    # met (an item queued, or room free), which this loop detects as running out of steps.
    for _ in range(MAX_STEPS):
        pending_getters = [t for t in getters if not t.done()]
        pending_putters = [t for t in putters if not t.done()]
        if not pending_getters and not pending_putters:
            break
        if pending_getters and queue.empty():
            value = next(values)
            offered_now.append(value)
            queue.put_nowait(value, MessagePriority.LOW)
        elif pending_putters and queue.full():
            take_nowait()
        await asyncio.sleep(0)
    else:
        raise AssertionError(f"stuck: {queue.qsize()} queued, tasks never finished")
    while not queue.empty():
        take_nowait()

    received += [t.result() for t in getters if not t.cancelled()]
    offered = offered_now + [value for task, value in putters.items() if not task.cancelled()]
    stats = [queue.priority_stats(p) for p in PRIORITIES]
    assert len(received) == len(set(received)), "an item was delivered twice"
    assert set(received) <= set(offered)
    assert sum(s.offered for s in stats) == len(offered)
    assert sum(s.dequeued for s in stats) == len(received)
    assert len(offered) - len(received) == sum(s.dropped for s in stats), "an item vanished uncounted"
    if policy is OverflowPolicy.BLOCK:
        blocked_offers = [v for t, v in putters.items() if not t.cancelled()]
        assert set(blocked_offers) <= set(received), "BLOCK lost an item a blocking put offered"


N = MessagePriority.NORMAL
WOKEN_GETTER_CANCELLED = [("spawn_get",), ("spawn_get",), ("yield",), ("put_nowait", N, None), ("cancel", 0)]
WOKEN_PUTTER_CANCELLED = [
    ("put_nowait", N, None),
    ("spawn_put", N, None),
    ("spawn_put", N, None),
    ("yield",),
    ("get_nowait",),
    ("cancel", 0),
]


@settings(max_examples=300, deadline=None)
@given(policy=st.sampled_from(POLICIES), capacity=st.integers(1, 4), ops=ASYNC_OPS)
@example(policy=OverflowPolicy.DROP_LOWEST, capacity=2, ops=WOKEN_GETTER_CANCELLED)
@example(policy=OverflowPolicy.BLOCK, capacity=1, ops=WOKEN_PUTTER_CANCELLED)
def test_no_loss_and_no_stuck_waiter_under_any_interleaving(policy: OverflowPolicy, capacity: int, ops: list) -> None:
    asyncio.run(_interleave(policy, capacity, ops))
