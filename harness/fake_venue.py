"""A fake venue for a test's own code: a scenario's faults served on loopback, and the truth to check against.

`harness replay` runs a subject process and judges it; a test that drives a client itself (in-process,
with its own assertions) needs the pieces instead: the venue's URLs, what the fault plan injected and
when, and the oracle's book at any update id. `FakeVenue` gives those, running the server on a thread
of its own (replayer/server.py `ServerThread`) so the test's event loop, or none, stays the caller's.
The pytest plugin's `fake_venue` fixture is this with cleanup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.oracle import Oracle
from harness.replay import BUNDLED_FIXTURE, SLOW_READER_SNDBUF, oracle_for
from harness.scenarios import load_scenario
from replayer.faults import FaultPlan
from replayer.faults.work import FaultWindow
from replayer.replay_data import ReplayData, load_replay_data, wire_of
from replayer.server import VENUE, ServerStats, ServerThread, VenueServer
from replayer.timeline import (
    ClientBufferLimit,
    Disconnect,
    HalfOpen,
    RefuseHandshakes,
    RestBehaviour,
    Send,
    Stall,
    Withheld,
)

Side = tuple[tuple[str, str], ...]
LOSS_KINDS = ("drop", "gap")
"""Faults that take frames off the wire altogether, so the log names them at the frames that are missing."""


class FakeVenue:
    """The fake venue for (recording, scenario, seed), started by `start()` or `with`.

    Nothing listens until `start()`; the replay clock starts when the first client subscribes, as in
    `harness replay`, so what a client sees does not depend on how long the test took to connect.
    """

    def __init__(
        self,
        scenario: str | Path = "clean",
        recording: str | Path | None = None,
        seed: int | None = None,
        speed: float | None = None,
        rest_weight_limit: int | None = None,
    ) -> None:
        """`rest_weight_limit`: REST weight per IP and minute before 429 and 418; None: the recording's
        venue's own (docs/venues.md, "Limits"); 0 is off."""
        loaded = load_scenario(scenario)
        self.scenario = loaded.name
        self.seed = loaded.seed if seed is None else seed
        self.speed = loaded.speed if speed is None else speed
        if not self.speed >= 0:
            raise HarnessError(f"speed must be >= 0, not {self.speed}")
        if rest_weight_limit is not None and rest_weight_limit < 0:
            raise HarnessError(f"the REST weight limit must be >= 0 (0 turns it off), not {rest_weight_limit}")
        self.rest_weight_limit = rest_weight_limit
        self.recording = Path(recording) if recording is not None else BUNDLED_FIXTURE
        self.data: ReplayData = load_replay_data(self.recording)
        self.plan: FaultPlan = loaded.plan(self.data.frames, self.seed, self.data.dialect)
        self.oracle: Oracle = oracle_for(self.data)
        self._thread: ServerThread | None = None
        self._server: VenueServer | None = None

    def start(self) -> FakeVenue:
        if self._thread is not None:
            raise RuntimeError("this FakeVenue has already been started")
        limits = any(type(entry) is ClientBufferLimit for entry in self.plan.entries.controls)
        self._thread = ServerThread(
            self.data,
            schedule=self.plan.entries,
            speed=self.speed,
            socket_send_buffer=SLOW_READER_SNDBUF if limits else None,
            rest_weight_limit=VENUE if self.rest_weight_limit is None else self.rest_weight_limit,
            wire=wire_of(self.data),
        )
        try:
            self._server = self._thread.start()
        except OSError as exc:
            self._thread.stop()
            raise HarnessError(f"cannot start the fake venue on 127.0.0.1: {exc.strerror or exc}") from None
        return self

    def stop(self) -> None:
        """Closes every connection and the server thread; safe to call twice."""
        if self._thread is not None:
            self._thread.stop()
            self._thread = None

    def __enter__(self) -> FakeVenue:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def server(self) -> VenueServer:
        if self._server is None:
            raise RuntimeError("the fake venue is not running: call start()")
        return self._server

    @property
    def ws_url(self) -> str:
        """Base WebSocket URL: append `/ws/<stream>` or `/stream?streams=...` as on the live venue."""
        return self.server.ws_url

    @property
    def rest_url(self) -> str:
        """Base REST URL: `/api/v3/depth`, `/api/v3/exchangeInfo`, ..."""
        return self.server.rest_url

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.data.symbols

    @property
    def stats(self) -> ServerStats:
        """What the venue has done so far: connections, frames sent, REST answers, faults served."""
        return self.server.stats

    @property
    def injected(self) -> dict[str, int]:
        """Faults injected per kind, as the report's `faults` counts them."""
        return dict(self.plan.injected)

    def fault_log(self) -> list[dict[str, Any]]:
        """Every fault action the plan holds, in replay order; see `fault_log`."""
        return fault_log(self.plan, self.data)

    def wait_finished(self, timeout: float) -> bool:
        """Blocks until the whole schedule has been sent (True) or `timeout` seconds pass (False)."""
        assert self._thread is not None
        return self._thread.wait_finished(timeout)

    def oracle_book(self, update_id: int, symbol: str | None = None) -> tuple[Side, Side] | None:
        """The true full book (bids, asks) right after the clean update `update_id`, None where the
        recording does not know it (not a frame boundary, or before the first snapshot)."""
        return self.oracle.full_book(self._symbol(symbol), update_id)

    def last_update_id(self, symbol: str | None = None) -> int | None:
        """The clean recording's last update id: a client that kept up ends here."""
        return self.oracle.last_update_id(self._symbol(symbol))

    def _symbol(self, symbol: str | None) -> str:
        if symbol is None:
            if len(self.oracle.symbols) != 1:
                raise ValueError(f"the recording has symbols {self.oracle.symbols}; name one")
            return self.oracle.symbols[0]
        if symbol not in self.oracle.symbols:
            raise ValueError(f"{symbol!r} is not in the recording (it has {self.oracle.symbols})")
        return symbol


def fault_log(plan: FaultPlan, data: ReplayData) -> list[dict[str, Any]]:
    """The plan as a log, in replay order: `{offset_ms, fault, fault_id, action, ...}` for each entry a
    fault touched, and a `drop` for each clean frame no Send carries. `fault` is the kind; `fault_id` the
    fault whose window holds the entry's recorded time (None if none does). Offsets are recorded time
    from the replay start; divide by the speed for wall time."""

    def owner(kinds: tuple[str, ...], at_ns: int) -> FaultWindow | None:
        return next((w for w in plan.windows if w.kind in kinds and w.start_ns <= at_ns <= w.heal_ns), None)

    log: list[dict[str, Any]] = []
    sent: set[int] = set()
    for entry in plan.entries:
        if type(entry) is Send:
            sent.add(entry.frame.index)
        if entry.fault is None or type(entry) is Withheld:  # a withheld frame is logged below as a drop
            continue
        at_ns = entry.frame.offset_ns if type(entry) is Send else entry.offset_ns
        window = owner((entry.fault,), at_ns)
        row: dict[str, Any] = {"offset_ms": entry.offset_ns / 1e6, "fault": entry.fault}
        row["fault_id"] = None if window is None else window.fault_id
        match entry:
            case Send():
                mangled = entry.payload != entry.frame.payload
                row |= {"action": "corrupt" if mangled else "send", "frame": entry.frame.index}
                row |= {"stream": entry.frame.stream, "late_ms": (entry.offset_ns - entry.frame.offset_ns) / 1e6}
            case Disconnect():
                row |= {"action": "disconnect", "mode": entry.mode, "code": entry.code}
            case Stall():
                row |= {"action": "stall", "duration_ms": entry.duration_ns / 1e6, "answer_pings": entry.answer_pings}
            case HalfOpen():
                row |= {"action": "half_open"}
            case RefuseHandshakes():
                row |= {"action": "refuse_handshakes", "status": entry.status, "count": entry.count}
            case RestBehaviour():
                row |= {"action": "rest", "mode": entry.mode, "count": entry.count, "status": entry.status}
            case ClientBufferLimit():
                row |= {"action": "buffer_limit", "max_bytes": entry.max_bytes}
        log.append(row)
    for frame in data.frames:
        if frame.index not in sent:
            window = owner(LOSS_KINDS, frame.offset_ns)
            log.append(
                {
                    "offset_ms": frame.offset_ns / 1e6,
                    "fault": None if window is None else window.kind,
                    "fault_id": None if window is None else window.fault_id,
                    "action": "drop",
                    "frame": frame.index,
                }
            )
    log.sort(key=lambda row: row["offset_ms"])
    return log
