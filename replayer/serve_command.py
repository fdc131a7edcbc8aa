"""`harness serve`: a recording served on loopback as a fake of its venue, with that venue's limits, until Ctrl-C.

With `--scenario`, the scenario's faults are injected for whatever client connects, in any language;
what was injected (each fault window, control action, mangled and dropped frame, with its replay offset
and the wall-clock time it was due) is written as JSON on exit, at the end of each session and on
SIGUSR1, so the user can line it up with their client's log. Every connection, subscription and session
is logged to stdout. `--loop` replays again for the next client after the end; `--rebase-time` shifts
recorded event times so they read as now.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from harness.collector import freeze_loaded
from harness.errors import HarnessError
from harness.loopback import exposure_warning
from harness.scenarios import Scenario, load_scenario
from harness.subject import SubjectConfig
from harness.venues.dialect import SubjectParts
from replayer.faults import FaultPlan
from replayer.replay_data import ReplayData, load_replay_data, wire_of
from replayer.server import VENUE, VenueServer
from replayer.timeline import Send, TimelineEntry
from replayer.venue_limits import (
    DEFAULT_HANDSHAKE_TIMEOUT_S,
    DEFAULT_MAX_BACKLOG_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_FRAME_BYTES,
    VenueLimits,
)


@dataclass(frozen=True, slots=True)
class ServeLimits:
    """`harness serve`'s limit options as typed (0 turns a limit off; None keeps the recording's venue's
    own number, docs/venues.md "Limits"); VenueServer takes None for off."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_streams_per_connection: int | None = None
    messages_per_second: int | None = None
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT_S
    """Seconds from connect to a complete request."""
    max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES

    def describe(self, venue: VenueLimits) -> str:
        """The limits in force, `venue`'s numbers (the server's) where the option was left to the venue."""
        shown = replace(
            self,
            max_streams_per_connection=venue.streams_per_connection or 0,
            messages_per_second=venue.messages_per_second or 0,
        )
        return ", ".join(f"{name.replace('_', ' ')} {getattr(shown, name) or 'off'}" for name in self.__slots__)


def run_serve(
    recording: Path,
    speed: float | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    scenario: str | None = None,
    seed: int | None = None,
    loop: bool = False,
    rebase_time: bool = False,
    injected_path: Path | None = None,
    rest_weight_limit: int | None = None,
    limits: ServeLimits | None = None,
) -> None:
    """Blocks until Ctrl-C; prints the WebSocket and REST base URLs as soon as the port listens.
    `rest_weight_limit` and the limits left None are the recording's venue's own."""
    if speed is not None and speed < 0:
        raise HarnessError(f"--speed must be >= 0, got {speed}")
    if seed is not None and scenario is None:
        raise HarnessError("--seed chooses a scenario's fault draws; give --scenario too")
    if injected_path is not None and scenario is None:
        raise HarnessError("--injected writes the faults a scenario injected; give --scenario too")
    loaded = load_scenario(scenario) if scenario is not None else None
    data = load_replay_data(recording)
    for note in data.notes:
        print(f"warning: {note}", file=sys.stderr, flush=True)
    plan = loaded.plan(data.frames, seed, data.dialect) if loaded is not None else None
    pace = speed if speed is not None else (loaded.speed if loaded is not None else 1.0)
    if loaded is not None and injected_path is None:
        injected_path = Path(f"{loaded.name}-seed{loaded.seed if seed is None else seed}.injected.json")
    if injected_path is not None and not injected_path.parent.is_dir():
        raise HarnessError(f"--injected {injected_path}: folder {injected_path.parent} does not exist")
    log = InjectedLog(recording, loaded, seed, pace, plan, data, injected_path)
    freeze_loaded()
    try:
        asyncio.run(
            _serve(
                data,
                recording,
                pace,
                host,
                port,
                log,
                loop=loop,
                rebase_time=rebase_time,
                weight=rest_weight_limit,
                limits=limits or ServeLimits(),
            )
        )
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        log.write()


class InjectedLog:
    """What a scenario injected, in a form to line up with a client's own log."""

    def __init__(
        self,
        recording: Path,
        scenario: Scenario | None,
        seed: int | None,
        speed: float,
        plan: FaultPlan | None,
        data: ReplayData,
        path: Path | None,
    ) -> None:
        self.recording, self.scenario, self.speed, self.plan, self.data, self.path = (
            recording,
            scenario,
            speed,
            plan,
            data,
            path,
        )
        self.seed = seed if seed is not None or scenario is None else scenario.seed
        self.server: VenueServer | None = None

    def document(self) -> dict[str, Any]:
        sessions = self.server.sessions if self.server is not None else []
        start = sessions[-1] if sessions else None
        plan = self.plan
        doc: dict[str, Any] = {
            "scenario": self.scenario.name if self.scenario else None,
            "seed": self.seed,
            "recording": str(self.recording),
            "speed": self.speed,
            "sessions_started": [_wall(t) for t in sessions],
            "times": "offsets are seconds of recorded time from the first frame; `due` is when the last "
            "session's clock meant to act on them (null before a client subscribed, or at speed 0)",
            "injected": dict(plan.injected) if plan else {},
        }
        if plan is None:
            return doc
        doc["windows"] = [
            {
                "kind": w.kind,
                "fault_id": w.fault_id,
                "start_s": _seconds(w.start_ns),
                "stop_s": _seconds(w.stop_ns),
                "heal_s": _seconds(w.heal_ns),
                "start_due": self._due(start, w.start_ns),
                "heal_due": self._due(start, w.heal_ns),
            }
            for w in plan.windows
        ]
        doc["actions"] = [self._action(start, entry) for entry in plan.entries.controls]
        sent = bytearray(len(self.data.frames))
        mangled = []
        for entry in plan.entries:
            if isinstance(entry, Send):
                sent[entry.frame.index] = 1
                if entry.fault is not None:
                    mangled.append({**self._frame(entry.frame), "fault": entry.fault, **self._at(start, entry)})
        doc["frames_faulted"] = mangled
        doc["frames_dropped"] = [self._frame(f) for f in self.data.frames if not sent[f.index]]
        return doc

    def write(self) -> None:
        if self.path is None:
            return
        try:
            self.path.write_bytes(orjson.dumps(self.document(), option=orjson.OPT_INDENT_2))
        except OSError as exc:
            print(f"error: cannot write {self.path}: {exc.strerror or exc}", file=sys.stderr, flush=True)
            return
        print(f"injected faults written to {self.path}", flush=True)

    def _due(self, start_wall_ns: int | None, offset_ns: int) -> str | None:
        if start_wall_ns is None or self.speed == 0:
            return None
        return _wall(start_wall_ns + round(offset_ns / self.speed))

    def _at(self, start: int | None, entry: TimelineEntry) -> dict[str, Any]:
        return {"offset_s": _seconds(entry.offset_ns), "due": self._due(start, entry.offset_ns)}

    def _action(self, start: int | None, entry: TimelineEntry) -> dict[str, Any]:
        fields = {k: v for k, v in _fields(entry).items() if k not in ("offset_ns", "fault")}
        return {
            "action": type(entry).__name__,
            "fault": getattr(entry, "fault", None),
            **self._at(start, entry),
            **fields,
        }

    @staticmethod
    def _frame(frame: Any) -> dict[str, Any]:
        return {
            "frame_index": frame.index,
            "stream": frame.stream,
            "update_ids": [frame.first_update_id, frame.last_update_id] if frame.last_update_id is not None else None,
            "recorded_offset_s": _seconds(frame.offset_ns),
        }


async def _serve(
    data: ReplayData,
    recording: Path,
    speed: float,
    host: str,
    port: int,
    log: InjectedLog,
    *,
    loop: bool,
    rebase_time: bool,
    weight: int | None,
    limits: ServeLimits,
) -> None:
    if (warning := exposure_warning(host)) is not None:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    schedule = log.plan.entries if log.plan is not None else None
    server = VenueServer(
        data,
        schedule=schedule,
        speed=speed,
        host=host,
        port=port,
        log=lambda line: print(f"{datetime.now(UTC).strftime('%H:%M:%S.%f')[:-3]} {line}", flush=True),
        loop=loop,
        rebase_time=rebase_time,
        on_finished=lambda session: _finished(session, loop, log),
        rest_weight_limit=VENUE if weight is None else weight,
        max_connections=limits.max_connections or None,
        max_frame_bytes=limits.max_frame_bytes or None,
        max_streams_per_connection=_venue_or(limits.max_streams_per_connection),
        messages_per_second=_venue_or(limits.messages_per_second),
        handshake_timeout_s=limits.handshake_timeout or None,
        max_backlog_bytes=limits.max_backlog_bytes or None,
        # Nothing here reads the per-frame send log (harness replay's checker does): kept, it would grow by
        # a record per frame and client for as long as the venue serves (docs/reliability.md).
        keep_send_log=False,
        wire=wire_of(data),
    )
    log.server = server
    try:
        await server.start()
    except OSError as exc:
        raise HarnessError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    running = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, AttributeError):
        running.add_signal_handler(signal.SIGUSR1, log.write)
    try:
        skipped = f", {data.skipped_frames} recorded before the REST snapshot skipped" if data.skipped_frames else ""
        print(f"serving {recording}: {len(data.frames)} frames on {', '.join(data.streams)}{skipped}", flush=True)
        for line in _how_to_connect(data, server.ws_url, server.rest_url):
            print(line, flush=True)
        if log.scenario is not None:
            assert log.plan is not None, "a scenario comes with its plan"
            armed = ", ".join(f"{kind} {n}" for kind, n in sorted(log.plan.injected.items())) or "none"
            print(
                f"scenario {log.scenario.name}, seed {log.seed}, speed {speed:g}: {armed}; what was injected goes to "
                f"{log.path} on exit, after each session and on SIGUSR1",
                flush=True,
            )
        used = server.weight.limit
        limit = f"{used} weight a minute per IP (429, then 418 bans)" if used else "off"
        print(f"rest weight limit: {limit}; --rest-weight-limit sets it, 0 turns it off", flush=True)
        print(f"limits: {limits.describe(server.limits)} (docs/fake-venue.md, 'Limits'; 0 turns one off)", flush=True)
        print("the replay clock starts when the first client subscribes; Ctrl-C stops", flush=True)
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(NotImplementedError, AttributeError):
            running.remove_signal_handler(signal.SIGUSR1)
        await server.stop()


def _venue_or(option: int | None) -> int | Literal["venue"] | None:
    """A serve option as VenueServer takes it: None (not given) keeps the venue's number, 0 turns it off."""
    return VENUE if option is None else (option or None)


def _finished(session: int, loop: bool, log: InjectedLog) -> None:
    if loop:
        print(f"session {session} finished; the next client to subscribe starts the replay again", flush=True)
    else:
        print("replay finished; connections stay open, Ctrl-C stops", flush=True)
    log.write()


def _fields(entry: TimelineEntry) -> dict[str, Any]:
    names = getattr(entry, "__slots__", ())
    return {name: _plain(getattr(entry, name)) for name in names}


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def _seconds(ns: int) -> float:
    return round(ns / 1e9, 6)


def _wall(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _how_to_connect(data: ReplayData, ws_base: str, rest_base: str) -> list[str]:
    """Where a client connects, in the recording's venue's own terms (as our default subject would); the
    second word of each line stays the bare base URL, which scripts and `harness record --ws-url` take."""
    dialect = data.dialect
    symbols = sorted({s for s in (dialect.symbol_of(x) for x in data.streams if dialect.is_book_stream(x)) if s})
    if not symbols:
        return [f"websocket: {ws_base}", f"rest:      {rest_base}"]
    parts = dialect.subject_parts()
    pieces: list[tuple[list[str], SubjectParts]] = [(symbols, parts)]
    if parts.connections is not None:  # one connection per market where the venue serves markets apart (Bybit)
        books = tuple(x for x in data.streams if dialect.is_book_stream(x))
        config = SubjectConfig(dialect.name, tuple(symbols), ws_base, rest_base, streams=books)
        pieces = [(list(share.symbols), share_parts) for share, share_parts in parts.connections(config)]
    lines = []
    for n, (share, share_parts) in enumerate(pieces):
        ws = share_parts.ws_url(ws_base, share)
        then = "" if share_parts.subscribe is None else f", then send {share_parts.subscribe(share).messages()[0]}"
        head, example = ("websocket:", "e.g.") if n == 0 else (" " * 10, "and")
        lines.append(f"{head} {ws_base}  ({example} {ws}{then})")
    if parts.snapshot_url is None:
        lines.append(f"rest:      {rest_base}  (snapshots come on the stream)")
    else:
        lines.append(f"rest:      {rest_base}  (e.g. {parts.snapshot_url(rest_base, symbols[0], 100)})")
    return lines
