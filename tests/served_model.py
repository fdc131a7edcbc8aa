"""A pure model of a slow but correct subject walking a fault plan: which armed units it is served.

The venue counts a fault served when it did something to a client (docs/report-schema.md). Whether a
real subject is there to be hit depends on timing, so a library test of seeds 1-20 over real sockets is
slow; this model walks the same entries in recorded time, with no sockets and no clock, against one
client that is deliberately slow to come back: every reconnect attempt and every snapshot retry waits
`back_s` of wall time (the cap of our subject's backoff, where a real one is usually much quicker), it
notices a silent connection after `watchdog_s`, and it refetches its snapshot on a new connection and
on a gap. A fault that even this client is not served sits where a subject meets it only by luck: the
plan must move it (its window, its trigger), not the expectation.

It mirrors replayer/server.py's rules for what counts as served (a change there belongs here too);
the real replays in tests/test_served.py, a sample in every run and the full matrix on demand, are
the ground truth it stands in for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from replayer.faults import FaultPlan
from replayer.timeline import (
    Disconnect,
    FaultTag,
    HalfOpen,
    RefuseHandshakes,
    RestBehaviour,
    Send,
    Stall,
    Tags,
    Withheld,
)

NEVER = 2**63


@dataclass(slots=True)
class _Countdown:
    """What is left of a refusal or REST behaviour entry, and how many it has served (for `tags[k]`)."""

    tags: Tags
    left: int
    used: int = 0

    def take(self, served: set[FaultTag]) -> bool:
        if self.left <= 0:
            return False
        if self.tags:
            served.add(self.tags[min(self.used, len(self.tags) - 1)])
        self.left -= 1
        self.used += 1
        return True


@dataclass(slots=True)
class SlowClient:
    """The modelled subject; `walk(plan)` returns the tags the venue would record for it."""

    speed: float
    back_s: float = 0.25
    watchdog_s: float = 1.5
    served: set[FaultTag] = field(default_factory=set)
    _connected: bool = True
    _back_at: int = NEVER
    _fetch_at: int = 1  # the first fetch follows the subscription that started the clock
    _refusals: _Countdown | None = None
    _rest: _Countdown | None = None
    _rest_fails: bool = False
    _last: dict[str, int] = field(default_factory=dict)

    def _recorded(self, wall_s: float) -> int:
        return round(wall_s * self.speed * 1e9)

    def walk(self, plan: FaultPlan) -> set[FaultTag]:
        hold_until = 0
        for entry in plan.entries:
            now = max(entry.offset_ns, hold_until)
            self._advance(now)
            if isinstance(entry, Send):
                self._receive(entry, now)
            elif isinstance(entry, Withheld):
                if self._connected:
                    self.served.update(entry.tags)
            elif isinstance(entry, Disconnect | HalfOpen):
                if self._connected:
                    self.served.update(entry.tags)
                    noticed = 0 if isinstance(entry, Disconnect) else self._recorded(self.watchdog_s)
                    self._cut(now + noticed)
            elif isinstance(entry, Stall):
                hold_until = now + entry.duration_ns
                if self._connected:
                    self.served.update(entry.tags)
                    if entry.duration_ns / self.speed / 1e9 > self.watchdog_s:
                        self._cut(now + self._recorded(self.watchdog_s))
            elif isinstance(entry, RefuseHandshakes):
                self._refusals = _Countdown(entry.tags, entry.count)
            elif isinstance(entry, RestBehaviour):
                normal = entry.mode == "normal"
                self._rest = None if normal else _Countdown(entry.tags, entry.count)
                self._rest_fails = entry.mode == "error"
        return self.served

    def _cut(self, at: int) -> None:
        self._connected = False
        self._back_at = at + self._recorded(self.back_s)
        self._fetch_at = NEVER

    def _advance(self, now: int) -> None:
        """Carries out the reconnects and snapshot fetches due by `now`, in time order."""
        while True:
            if not self._connected and self._back_at <= now:
                if self._refusals is not None and self._refusals.take(self.served):
                    self._back_at += self._recorded(self.back_s)
                    continue
                self._connected, self._fetch_at = True, self._back_at
                self._back_at = NEVER
                self._last.clear()
            elif self._connected and self._fetch_at <= now:
                failed = self._rest is not None and self._rest.take(self.served) and self._rest_fails
                self._fetch_at = self._fetch_at + self._recorded(self.back_s) if failed else NEVER
            else:
                return

    def _receive(self, send: Send, now: int) -> None:
        if not self._connected:
            return
        self.served.update(send.tags)
        frame = send.frame
        if frame.first_update_id is None or frame.last_update_id is None or send.payload is not frame.payload:
            return
        last = self._last.get(frame.stream)
        if last is not None and frame.last_update_id <= last:
            return
        if last is not None and frame.first_update_id > last + 1:
            self._fetch_at = min(self._fetch_at, now)
        self._last[frame.stream] = frame.last_update_id


def served_by_fault(plan: FaultPlan, speed: float) -> dict[str, int]:
    """Units the slow client is served, per fault id of the plan."""
    tags = SlowClient(speed).walk(plan)
    return {fault_id: int(row["served"]) for fault_id, row in plan.by_fault(tags).items()}
