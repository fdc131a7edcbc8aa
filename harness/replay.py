"""`harness replay`: recording + scenario + seed in, verdict and latency out.

The run: load the recording and the scenario, build the fault plan (pure, seeded), start the fake
venue on loopback walking that plan, start the subject in its own process pointed at the venue,
collect everything the subject reports until the plan has been walked and the subject has caught
up (or gone quiet), stop both (the subject first: connections a half-open fault silenced stay silent
until it has given its final books), and judge the subject's reports against the oracle. The judging is
pure: each synced observation's top 20 is compared with the oracle as it arrives (so its levels are
parsed once and never kept), and each write the venue makes is digested as it happens
(harness/send_digest.py); the rest is judged after the run, from the reports kept and that digest.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from harness.book_events import DepthSnapshot
from harness.checker import TopJudge, check, replay_clock
from harness.collector import freeze_loaded
from harness.errors import HarnessError
from harness.message_log import MessageLog
from harness.observations import BookObservation, loads
from harness.oracle import Oracle
from harness.report import apply_expectations, build_report
from harness.scenarios import load_scenario
from harness.send_digest import SendDigest
from harness.subject import DEFAULT_SUBJECT, check_factory_spec
from replayer.replay_data import ReplayData, load_replay_data, wire_of
from replayer.server import VenueServer
from replayer.timeline import ClientBufferLimit, TimelineEntry, control_entries

BUNDLED_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "binance_spot_multi_synth"
SUBSCRIBE_TIMEOUT_S = 20.0
CATCH_UP_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 10.0
SLOWEST_WALK_FPS = 1_000
"""The slowest walk of the schedule a replay waits for before calling the venue stuck: at speed 0 the
recording takes as long as the subject reads, so a fixed limit would fail every long recording."""
SLOW_READER_SNDBUF = 16 * 1024
"""The venue's socket send buffer when a plan limits client buffers: on loopback the kernel would
otherwise autotune it to megabytes, more than a whole recording, and no reader would ever be slow."""
REPORT_READ_BYTES = 1 << 18
"""The most of the subject's output read at once (a few hundred report lines)."""
REPORT_LINE_LIMIT = 2**24
"""The longest report line kept (a final book of a deep market is a few megabytes)."""

Progress = Callable[[int, int], None]


@dataclass(slots=True)
class ReplayRequest:
    """What the user asked for; None means the scenario's (or the bundled fixture's) default."""

    scenario: str
    recording: Path | None = None
    seed: int | None = None
    speed: float | None = None
    subject: str = DEFAULT_SUBJECT
    stderr_path: Path | None = None
    """Where the subject's stderr goes; None: a temporary file, kept (and named in the report) only
    when the subject failed."""
    rest_weight_limit: int | None = None
    """REST weight per IP and minute the venue serves; None: the recording's venue's own (Binance spot's
    6,000, USD-M's 2,400; docs/venues.md, "Limits"); 0 refuses nothing."""
    owns_process: bool = False
    """True where the caller gives the run its process (the command line): what was loaded is then frozen
    out of the garbage collector before serving (harness/collector.py); never in a caller's own process."""
    subject_busy_poll_us: int = 0
    """The subject host's event loop polls the kernel this long before it blocks (harness/busy_poll.py):
    lower latency for a core's worth of CPU; 0 blocks at once, as asyncio does."""


@dataclass(slots=True)
class SubjectRun:
    """What came back from the subject process."""

    messages: MessageLog = field(default_factory=MessageLog)
    """Every well-formed report, kept on disk (harness/message_log.py) until the checker reads it."""
    stats: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    stderr: str = ""
    protocol_error: str | None = None
    crash: str | None = None
    """The subject's own traceback, when its factory or `run` raised."""
    stopped: str | None = None
    """Why the runner had to stop the subject (it never subscribed, or would not stop), with what it had done."""


@dataclass(frozen=True, slots=True)
class _Setup:
    """Everything the live part of a run needs, decided before any socket opens."""

    data: ReplayData
    schedule: Sequence[TimelineEntry]
    speed: float
    seed: int
    venue: str
    subject: str
    final_ids: dict[str, int | None]
    rest_weight_limit: int
    judge: TopJudge
    """Compares each synced observation with the oracle as it arrives (harness/message_log.py)."""
    sends: SendDigest
    """Takes each write the venue makes, for the check after the run (harness/send_digest.py)."""
    busy_poll_us: int


def run_replay(request: ReplayRequest, progress: Progress | None = None) -> dict[str, Any]:
    """Runs one replay and returns the JSON report (with `passed`); raises HarnessError for bad input."""
    scenario = load_scenario(request.scenario)
    check_factory_spec(request.subject)
    seed = scenario.seed if request.seed is None else request.seed
    speed = scenario.speed if request.speed is None else request.speed
    if not (speed >= 0 and math.isfinite(speed)):
        raise HarnessError(f"speed must be a finite number >= 0 (0 is as fast as the subject reads), not {speed}")
    recording_path = request.recording or BUNDLED_FIXTURE
    data = load_replay_data(recording_path)
    try:
        wire_of(data)
    except HarnessError as exc:
        raise HarnessError(f"{recording_path}: {exc}") from None
    venue = data.dialect.name
    for note in data.notes:
        print(f"warning: {note}", file=sys.stderr)
    plan = scenario.plan(data.frames, seed, data.dialect)
    oracle = oracle_for(data, all_tops=speed > 0)
    final_ids = {symbol: oracle.last_update_id(symbol) for symbol in oracle.symbols}
    if not final_ids:
        raise HarnessError(
            f"{recording_path}: no depth update frames continuing a recorded REST snapshot, so there is no "
            "book to judge; record the symbols' @depth streams (harness record does by default)"
        )
    weight = request.rest_weight_limit
    if weight is None:
        weight = wire_of(data).limits.rest_weight_per_minute
    elif weight < 0:
        raise HarnessError(f"the REST weight limit must be >= 0 (0 turns it off), not {weight}")
    # The speed-0 clock is the writes' own: which write batch first carried each frame.
    sends = SendDigest(oracle, len(data.frames) if speed == 0 else None)
    if request.subject_busy_poll_us < 0:
        raise HarnessError(f"the subject's busy-poll time must be >= 0 us, not {request.subject_busy_poll_us}")
    setup = _Setup(
        data, plan.entries, speed, seed, venue, request.subject, final_ids, weight, TopJudge(oracle), sends,
        request.subject_busy_poll_us,
    )  # fmt: skip
    stderr_path = request.stderr_path or _temporary_log()
    try:
        stderr_file = open(stderr_path, "wb")  # noqa: SIM115 (closed below, before it is read back)
    except OSError as exc:
        raise HarnessError(f"cannot write the subject's stderr to {stderr_path}: {exc.strerror or exc}") from None
    keep = request.stderr_path is not None
    if request.owns_process:
        freeze_loaded()
    try:
        with stderr_file:
            run, server = asyncio.run(_run(setup, progress, stderr_file))
        ended_mono_ns = time.monotonic_ns()
        run.stderr = _read_tail(stderr_path)
        if run.exit_code == 2 and run.stderr.startswith("error: "):
            raise HarnessError(run.stderr.splitlines()[0].removeprefix("error: "))
        failed = bool(run.exit_code != 0 or run.protocol_error or run.crash or run.stopped)
        keep = keep or failed
    finally:
        if not keep:
            stderr_path.unlink(missing_ok=True)
    clients = list(server.clients.values())
    start = server.clock_start_mono_ns
    # No clock start: nothing was ever sent (the subject never subscribed), so the empty send log places windows.
    if speed > 0 and start is not None:
        to_mono = replay_clock(start, speed)
    else:
        offsets = getattr(data.frames, "offsets", None) or (lambda: (frame.offset_ns for frame in data.frames))
        to_mono = sends.clock(offsets)
    try:
        findings = check(
            oracle,
            run.messages,
            clients,
            plan.windows,
            to_mono,
            start_mono_ns=start,
            snapshots=server.snapshots_served,
            snapshot_reach=server.depths_served,
            requested=data.symbols,
            frames=data.frames,
            # At speed 0 nothing is ever due before it is sent, so no silence can be told from a quiet market.
            stale_limit_ns=round(scenario.stale_limit_s * 1e9) if speed > 0 and start is not None else None,
            end_mono_ns=ended_mono_ns,
            sends=sends,
        )
    finally:  # what the judge kept on disk goes now, not when the collector finds it
        run.messages.close()
        oracle.close()
        for client in clients:
            client.sends.close()
    report = build_report(
        findings,
        scenario=scenario.name,
        seed=seed,
        recording=str(recording_path),
        faults=plan.served(server.served),
        faults_armed=plan.injected,
        faults_by_id=plan.by_fault(server.served),
        queue=run.stats.get("queue"),
        speed=speed,
    )
    report["faults_not_applicable"] = dict(plan.not_applicable)
    venue_stats = server.stats
    report["venue"] = {
        "connections": venue_stats.clients_connected,
        "handshakes_refused": venue_stats.handshakes_refused,
        "half_open_connections": venue_stats.half_open_connections,
        "slow_consumers_dropped": venue_stats.slow_consumers_dropped,
        "too_many_requests": venue_stats.too_many_requests,
        "disconnects": dict(venue_stats.disconnects),
        "rest_requests": dict(venue_stats.rest_requests),
        "rest_faults": dict(venue_stats.rest_faults),
        "rest_weight": {
            "limit": server.weight.limit,
            "peak_per_minute": server.weight.peak_per_minute,
            "refused_429": server.weight.refused_429,
            "refused_418": server.weight.refused_418,
            "bans": server.weight.bans,
        },
    }
    report["subject"] = {
        "factory": request.subject,
        "busy_poll_us": request.subject_busy_poll_us,
        "exit_code": run.exit_code,
        "protocol_error": run.protocol_error,
        "traceback": run.crash,
        "stopped": run.stopped,
        "stderr_file": str(stderr_path) if keep else None,
        "stats": {k: v for k, v in run.stats.items() if k != "queue"},
    }
    results: list[Any] = []
    if run.crash:
        last = run.crash.strip().splitlines()[-1]
        results.append(
            {"name": "subject ran without raising", "threshold": "no exception", "value": last, "passed": False}
        )
    if run.stopped:
        results.append(_failed("subject subscribed, ran and stopped when asked", "", run.stopped))
    results += scenario.evaluate(report)
    if (run.exit_code != 0 and not run.crash) or run.protocol_error:
        detail = run.protocol_error or _tail(run.stderr)
        results.append(_failed("subject exited cleanly", "exit code 0", detail))
    return apply_expectations(report, results)


def oracle_for(data: ReplayData, *, all_tops: bool = False) -> Oracle:
    """The independent truth: the clean frames over the recorded snapshots and the replay's start books.
    Its tops are computed as the venue writes and the checker asks (harness/oracle.py), over a run at
    speed 0, which no pace binds; `all_tops` computes them all first, for a paced run, whose venue
    must not pay them between two frames due."""
    snapshots: list[Any] = [snap for snaps in data.snapshots.values() for snap in snaps]
    snapshots += [
        DepthSnapshot(symbol, book.last_update_id, book.bids(), book.asks())
        for symbol, book in data.start_books.items()
    ]
    oracle = Oracle(data.frames, snapshots, venue=data.dialect.name)
    if all_tops:
        oracle.complete()
    return oracle


async def _run(setup: _Setup, progress: Progress | None, stderr_file: Any) -> tuple[SubjectRun, VenueServer]:
    server = VenueServer(
        setup.data,
        schedule=setup.schedule,
        speed=setup.speed,
        seed=setup.seed,
        socket_send_buffer=SLOW_READER_SNDBUF if _limits_client_buffers(setup.schedule) else None,
        rest_weight_limit=setup.rest_weight_limit,
        wire=wire_of(setup.data),
        on_written=setup.sends.on_written,
    )
    try:
        await server.start()
    except OSError as exc:
        raise HarnessError(f"cannot start the fake venue on 127.0.0.1: {exc.strerror or exc}") from None
    try:
        run = await _drive_subject(server, setup, progress, stderr_file)
    finally:
        await server.stop()
    return run, server


async def _drive_subject(server: VenueServer, setup: _Setup, progress: Progress | None, stderr_file: Any) -> SubjectRun:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "harness.subject_host",
        "--factory",
        setup.subject,
        "--venue",
        setup.venue,
        "--symbols",
        ",".join(setup.data.symbols),
        "--ws-url",
        server.ws_url,
        "--rest-url",
        server.rest_url,
        "--seed",
        str(setup.seed),
        "--streams",
        ",".join(s for s in setup.data.streams if setup.data.dialect.is_book_stream(s)),
        "--busy-poll-us",
        str(setup.busy_poll_us),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr_file,
        limit=REPORT_LINE_LIMIT,
        env=_env_importing_cwd(),
    )
    run = SubjectRun(messages=MessageLog(setup.judge.agrees))
    caught_up = asyncio.Event()
    stats_in = asyncio.Event()
    reader = asyncio.create_task(_read_reports(process, run, setup.final_ids, caught_up, stats_in))
    exited = asyncio.create_task(process.wait())
    ticker = asyncio.create_task(_report_progress(server, progress)) if progress else None
    try:
        await _wait_any(server.wait_clock_started(), exited, timeout=SUBSCRIBE_TIMEOUT_S)
        if exited.done():
            pass
        elif server.clock_start_mono_ns is None:
            waited = f"{SUBSCRIBE_TIMEOUT_S:.0f} s"
            run.stopped = f"stopped after {waited} without subscribing to any stream ({_activity(server, run)})"
        else:
            duration_s = setup.data.duration_ns / 1e9 / setup.speed if setup.speed > 0 else 0.0
            limit_s = duration_s * 1.5 + 30 + len(setup.data.frames) / SLOWEST_WALK_FPS
            await _wait_any(server.finished.wait(), exited, timeout=limit_s)
            if not exited.done() and not server.finished.is_set():
                run.stopped = f"stopped after {limit_s:.0f} s: the replay never finished ({_activity(server, run)})"
            elif not exited.done():
                await _wait_any(caught_up.wait(), exited, timeout=CATCH_UP_TIMEOUT_S)
    finally:
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        if process.stdin is not None and not process.stdin.is_closing():
            process.stdin.close()
        await _wait_any(stats_in.wait(), exited, timeout=STOP_TIMEOUT_S)
        server.release_half_open()
        try:
            await asyncio.wait_for(asyncio.shield(exited), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await exited
            killed = f"did not return within {STOP_TIMEOUT_S:.0f} s of being asked to stop, so it was killed"
            run.stopped = f"{run.stopped}; {killed}" if run.stopped else f"{killed} ({_activity(server, run)})"
        await reader
    run.exit_code = process.returncode
    if progress is not None:
        progress(server.stats.entries_walked, len(server.schedule))
    return run


def _limits_client_buffers(schedule: Sequence[TimelineEntry]) -> bool:
    return any(type(entry) is ClientBufferLimit for entry in control_entries(schedule))


async def _wait_any(awaitable: Any, task: asyncio.Task, timeout: float) -> None:
    """Waits for `awaitable`, but no longer than `task` (the subject process) lives, nor `timeout`."""
    waiter = asyncio.ensure_future(awaitable)
    await asyncio.wait({waiter, task}, timeout=timeout, return_when="FIRST_COMPLETED")
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)


async def _read_reports(
    process: asyncio.subprocess.Process,
    run: SubjectRun,
    final_ids: dict[str, int | None],
    caught_up: asyncio.Event,
    stats_in: asyncio.Event,
) -> None:
    """Collects every line; sets `caught_up` once each symbol has a synced book at its last update, and
    `stats_in` at the stats line, which the subject writes after its final books."""
    pending = dict(final_ids)
    assert process.stdout is not None
    async for lines in _report_lines(process.stdout, run):
        for line in lines:
            if not line:
                continue
            if line.startswith(b"{"):
                try:
                    doc = orjson.loads(line)
                except orjson.JSONDecodeError:
                    doc = None
                if isinstance(doc, dict) and isinstance(doc.get("crash"), str):
                    run.crash = doc["crash"]
                    continue
                stats = doc.get("stats", {}) if isinstance(doc, dict) else None
                if isinstance(stats, dict) and isinstance(stats.get("queue", {}), dict):
                    run.stats = stats
                else:
                    run.protocol_error = f"unreadable stats line (stats and its queue must be objects): {line[:80]!r}"
                stats_in.set()
                continue
            try:
                message = loads(line)
            except HarnessError as exc:
                run.protocol_error = str(exc)
                continue
            run.messages.append(line, message)
            if (
                pending
                and type(message) is BookObservation
                and message.synced
                and pending.get(message.symbol) == message.update_id
            ):
                del pending[message.symbol]
                if not pending:
                    caught_up.set()


async def _report_lines(stdout: asyncio.StreamReader, run: SubjectRun) -> AsyncIterator[list[bytes]]:
    """The subject's lines without their newlines, as many as each read brings (REPORT_READ_BYTES at
    most): a read per few hundred lines, where a `readline` each cost the harness more than judging
    the line. A line longer than REPORT_LINE_LIMIT is dropped, as a protocol error."""
    held: list[bytes] = []
    size = 0
    dropping = False
    while chunk := await stdout.read(REPORT_READ_BYTES):
        end = chunk.rfind(b"\n")
        if dropping:
            if end < 0:
                continue
            chunk, dropping = chunk[chunk.index(b"\n") + 1 :], False
            end = chunk.rfind(b"\n")
        if end < 0:
            held.append(chunk)
            size += len(chunk)
            if size > REPORT_LINE_LIMIT:
                run.protocol_error = f"a report line longer than {REPORT_LINE_LIMIT} bytes: {held[0][:80]!r}"
                held, size, dropping = [], 0, True
            continue
        head = chunk[:end]
        if held:
            held.append(head)
            head = b"".join(held)
        rest = chunk[end + 1 :]
        held, size = ([rest], len(rest)) if rest else ([], 0)
        yield head.split(b"\n")
    if held:
        yield [b"".join(held)]


async def _report_progress(server: VenueServer, progress: Progress) -> None:
    total = len(server.schedule)
    while True:
        progress(server.stats.entries_walked, total)
        await asyncio.sleep(0.1)


def _failed(name: str, threshold: str, value: str) -> dict[str, Any]:
    return {"name": name, "threshold": threshold, "value": value, "passed": False}


def _activity(server: VenueServer, run: SubjectRun) -> str:
    """What the subject had done, as the venue and its reports show it: connected, subscribed, any book."""
    books = synced = 0
    last: BookObservation | None = None
    for message in run.messages:  # read from disk once, counted, never gathered
        if isinstance(message, BookObservation):
            books += 1
            synced += message.synced
            last = message
    parts = [
        f"connections: {server.stats.clients_connected}",
        f"subscribed: {'yes' if server.clock_start_mono_ns is not None else 'no'}",
        f"REST depth requests: {sum(n for key, n in server.stats.rest_requests.items() if key.startswith('depth:'))}",
        f"books reported: {books}, {synced} synced",
    ]
    if last is not None:
        parts.append(f"last at update {last.update_id}")
    return "; ".join(parts)


def _temporary_log() -> Path:
    handle, name = tempfile.mkstemp(prefix="harness-subject-", suffix=".stderr.log")
    os.close(handle)
    return Path(name)


def _read_tail(path: Path, limit: int = 256 * 1024) -> str:
    """The end of the subject's stderr (enough for the messages and tracebacks the report shows)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - limit))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


def _env_importing_cwd() -> dict[str, str]:
    """The subject process imports from the current directory first, as uvicorn and pytest do."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH", "")) if p)
    return env


def _tail(text: str, lines: int = 5) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) if kept else "no output"
