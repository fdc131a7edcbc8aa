"""A typed event bus: one bounded queue and one consumer task per subscriber.

Events are dataclass instances, and a subscriber names the class it wants (subclasses included).
`publish` is a plain call that never waits: it offers the event to each matching subscriber's
`BoundedPriorityQueue` under that subscriber's own overflow policy, so a slow or stuck subscriber
loses its own events (counted in its queue metrics) and never delays the publisher or the other
subscribers. Handlers may be plain functions or return awaitables; an exception from a handler is
counted on its subscription (`errors`, `last_error`) and the next event is delivered as usual.

Call `await start()` to run the consumers and `await stop()` to end them: by default `stop` lets
each consumer finish what is queued (up to a timeout), then cancels and awaits every task, so no
task outlives the bus.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from harness.errors import HarnessError
from harness.queue import BoundedPriorityQueue, MessagePriority, OverflowPolicy

E = TypeVar("E")


class Subscription:
    """One subscriber: its handler, its queue and its counters. Returned by `EventBus.subscribe`."""

    def __init__(
        self,
        event_type: type,
        handler: Callable[[Any], Any],
        name: str,
        queue: BoundedPriorityQueue,
    ) -> None:
        self.event_type = event_type
        self.handler = handler
        self.name = name
        self.queue = queue
        self.delivered = 0
        self.errors = 0
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._waiting = False

    def stats(self) -> dict[str, Any]:
        return {
            "event_type": self.event_type.__qualname__,
            "delivered": self.delivered,
            "errors": self.errors,
            "last_error": self.last_error,
            "queue": self.queue.get_metrics(),
        }

    async def _consume(self) -> None:
        queue = self.queue
        while not (self._closing and queue.empty()):
            self._waiting = True
            try:
                event = await queue.get()
            finally:
                self._waiting = False
            try:
                result = self.handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            else:
                self.delivered += 1


class EventBus:
    """See the module docstring. Use from one event loop."""

    def __init__(self, *, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._subscriptions: list[Subscription] = []
        self._routes: dict[type, tuple[Subscription, ...]] = {}
        self._running = False
        self._names = itertools.count(1)

    @property
    def running(self) -> bool:
        return self._running

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subscriptions)

    def subscribe(
        self,
        event_type: type[E],
        handler: Callable[[E], Any],
        *,
        name: str | None = None,
        max_size: int = 1024,
        policy: OverflowPolicy | str = OverflowPolicy.DROP_OLDEST,
        key_of: Callable[[E], Hashable] | None = None,
    ) -> Subscription:
        """Deliver every published `event_type` (or subclass) to `handler`, through a queue of `max_size`.

        `policy` is the subscriber's overflow policy; BLOCK is refused because `publish` never
        waits. Under CONFLATE only the newest event per `key_of(event)` (default: its class) waits.
        """
        if not isinstance(event_type, type):
            raise HarnessError(f"subscribe to an event class, not {event_type!r}")
        if not callable(handler):
            raise HarnessError(f"event handler {handler!r} is not callable")
        queue = BoundedPriorityQueue(max_size, policy, clock=self._clock, key_of=key_of or type)
        if queue.policy is OverflowPolicy.BLOCK:
            raise HarnessError("a bus subscriber cannot use BLOCK: publish never waits; choose a dropping policy")
        label = name or f"{getattr(handler, '__qualname__', type(handler).__qualname__)}#{next(self._names)}"
        subscription = Subscription(event_type, handler, label, queue)
        self._subscriptions.append(subscription)
        self._routes.clear()
        if self._running:
            self._spawn(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to `subscription` now; events still in its queue are not delivered."""
        if subscription not in self._subscriptions:
            return
        self._subscriptions.remove(subscription)
        self._routes.clear()
        task, subscription._task = subscription._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def publish(self, event: Any, priority: MessagePriority = MessagePriority.NORMAL) -> int:
        """Offer `event` to every matching subscriber without waiting; returns how many accepted it."""
        cls = type(event)
        targets = self._routes.get(cls)
        if targets is None:
            targets = self._route(cls)
        accepted = 0
        for subscription in targets:
            accepted += subscription.queue.put_nowait(event, priority)
        return accepted

    async def start(self) -> None:
        """Run a consumer task for every subscriber (and for each one added later, until `stop`)."""
        self._running = True
        for subscription in self._subscriptions:
            if subscription._task is None:
                self._spawn(subscription)

    async def stop(self, *, drain: bool = True, timeout: float = 5.0) -> None:
        """End every consumer task and await it.

        With `drain`, each consumer first delivers what its queue holds; a consumer still busy after
        `timeout` seconds is cancelled. Events published after `stop` wait in their queues for the
        next `start`.
        """
        self._running = False
        tasks = []
        for subscription in self._subscriptions:
            task = subscription._task
            if task is None:
                continue
            subscription._closing = True
            if not drain or (subscription._waiting and subscription.queue.empty()):
                task.cancel()
            tasks.append(task)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for subscription in self._subscriptions:
            subscription._task = None
            subscription._closing = False

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per subscriber: delivered, handler errors, last error, and its queue's metrics."""
        return {subscription.name: subscription.stats() for subscription in self._subscriptions}

    def _route(self, cls: type) -> tuple[Subscription, ...]:
        if not dataclasses.is_dataclass(cls):
            raise HarnessError(f"events are dataclass instances; got a {cls.__qualname__}")
        targets = tuple(s for s in self._subscriptions if issubclass(cls, s.event_type))
        self._routes[cls] = targets
        return targets

    def _spawn(self, subscription: Subscription) -> None:
        subscription._closing = False
        subscription._task = asyncio.get_running_loop().create_task(
            subscription._consume(), name=f"bus:{subscription.name}"
        )
