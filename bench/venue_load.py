"""The fake venue under load: many clients at once, faults on, one client that stops reading.

`python -m bench.venue_load --clients 50 --seconds 60` (`make bench-load`). The venue (the server API,
walking a scenario's fault plan, `slow_consumer` by default) runs in a child process of its own, so
what is counted there (descriptors, asyncio tasks, RSS, live Python objects, sampled every second) is
the venue's alone. The clients run in other child processes, each one asyncio loop of plain
websockets clients that only timestamp what arrives: one process for 50 clients keeps its loop lag
well under the latencies measured (the figures report its CPU share and loop lag, so a run where the
clients were the bottleneck shows it), and `--client-procs` spreads them wider.

One client stops reading `--stall-at` seconds in and never reads again. The others' end-to-end
latency (the venue's write, and the time the schedule meant the frame to leave, to the client's
receive; one monotonic clock, as both run on this machine) is compared before it stalled and while
the venue holds its backlog, in the same run, leaving out frames due inside a fault window. The
scenario's slow-consumer rule must then drop the stalled client and nobody else, every other client
must receive every frame the venue wrote to it, and once the clients are gone the venue's tasks and
descriptors must be back to their count before any client came.

`tests/test_venue_load.py` runs the same pieces in one process for a few seconds in `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from harness.replay import BUNDLED_FIXTURE, SLOW_READER_SNDBUF
from harness.scenarios import load_scenario
from replayer.faults import FaultPlan
from replayer.replay_data import load_replay_data
from replayer.server import VenueServer
from replayer.timeline import ClientBufferLimit, Send

PAGE = os.sysconf("SC_PAGE_SIZE")
SETTLE_NS = 500_000_000
"""Frames due this long after a fault window heals still count as inside it (a released burst drains)."""


# The venue side.


@dataclass(slots=True)
class VenueSample:
    at_s: float
    rss_mib: float
    fds: int
    tasks: int
    py_objects: int
    open_clients: int
    max_backlog: int


def resource_counts() -> tuple[int, int]:
    """Open descriptors and asyncio tasks of this process, the venue's replay walker left out (it ends
    with its schedule, which is no leak)."""
    tasks = sum(t.get_name() != "venue-replay" for t in asyncio.all_tasks())
    return len(os.listdir("/proc/self/fd")), tasks


async def counts_settled(before: tuple[int, int], timeout_s: float = 10.0) -> tuple[int, int]:
    """`resource_counts()` once they are back to `before`, or when `timeout_s` has passed: a connection's
    handler task ends a few loop steps after its socket closes, so a leak shows as counts that stay
    above `before`, never as a race."""
    deadline = time.monotonic() + timeout_s
    while True:
        gc.collect()
        now = resource_counts()
        if (now[0] <= before[0] and now[1] <= before[1]) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.05)


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


class LoadVenue:
    """A VenueServer on `recording` walking `scenario`'s plan, with its writes timed and its process sampled.

    Each write is kept as (client id, intended ns, write ns) in an array that `flush()` moves to
    `timings_path`, so the venue's memory holds no per-frame record of its own (the server's send log
    is off, as a long `harness serve` would want it).
    """

    def __init__(
        self,
        recording: Path,
        scenario: str,
        seed: int | None,
        speed: float | None,
        timings_path: Path,
        keep_send_log: bool = False,
    ) -> None:
        loaded = load_scenario(scenario)
        self.data = load_replay_data(recording)
        self.plan: FaultPlan = loaded.plan(self.data.frames, seed)
        self.speed = loaded.speed if speed is None else speed
        self._timings = array("q")
        self._timings_file = timings_path.open("wb")
        limits = any(type(entry) is ClientBufferLimit for entry in self.plan.entries.controls)
        self.server = VenueServer(
            self.data,
            schedule=self.plan.entries,
            speed=self.speed,
            socket_send_buffer=SLOW_READER_SNDBUF if limits else None,
            on_send=self._on_send,
            keep_send_log=keep_send_log,
        )
        self._started = time.monotonic()

    def _on_send(self, client_id: int, entry: Send, intended: int, write: int) -> None:
        self._timings.extend((client_id, intended, write))

    def flush(self) -> None:
        self._timings.tofile(self._timings_file)
        del self._timings[:]

    def sample(self) -> VenueSample:
        """The venue process now; the backlog is the largest one the venue holds for a single client (its
        outbox plus what the transport buffers), what the slow-consumer rule measures."""
        backlogs = [
            client.queued_bytes + client.connection.transport.get_write_buffer_size()
            for client in self.server._clients.values()  # the bench reads the shell's private books on purpose
        ]
        fds, tasks = resource_counts()
        return VenueSample(
            time.monotonic() - self._started,
            _rss_mib(),
            fds,
            tasks,
            len(gc.get_objects()),
            self.server.stats.clients_open,
            max(backlogs, default=0),
        )

    def close(self) -> None:
        self.flush()
        self._timings_file.close()

    def windows_mono_ns(self) -> list[tuple[int, int]]:
        """Each fault window as monotonic (start, heal + settle) on this session's clock."""
        start = self.server.clock_start_mono_ns
        if start is None:
            return []
        speed = self.speed or 1.0
        return [
            (start + round(w.start_ns / speed), start + round(w.heal_ns / speed) + SETTLE_NS) for w in self.plan.windows
        ]

    def summary(self) -> dict[str, Any]:
        stats = self.server.stats
        return {
            "clock_start_mono_ns": self.server.clock_start_mono_ns,
            "windows": self.windows_mono_ns(),
            "frames_sent": stats.frames_sent,
            "slow_consumers_dropped": stats.slow_consumers_dropped,
            "disconnects": dict(stats.disconnects),
            "clients": [
                {
                    "id": r.client_id,
                    "port": r.peer[1] if r.peer else None,
                    "cause": r.close_cause,
                    "opened": r.opened_mono_ns,
                    "closed": r.closed_mono_ns,
                }
                for r in self.server.clients.values()
            ],
        }


async def sample_until(venue: LoadVenue, stop: asyncio.Event, every_s: float, samples: list[VenueSample]) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        venue.flush()
        samples.append(venue.sample())


async def settled(venue: LoadVenue, before: VenueSample) -> VenueSample:
    """The venue's sample once its clients have gone (see `counts_settled`)."""
    deadline = time.monotonic() + 10.0
    while venue.server.stats.clients_open and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await counts_settled((before.fds, before.tasks), max(0.0, deadline - time.monotonic()))
    return venue.sample()


# The client side.


@dataclass(slots=True)
class ConnectionLog:
    """One client connection: its local port (the venue's peer port), receive times, and how it ended."""

    client: int
    port: int
    received: array = field(default_factory=lambda: array("q"))
    close_code: int | None = None
    close_frame: bool = False


@dataclass(slots=True)
class ClientsResult:
    connections: list[ConnectionLog]
    stalled_at_ns: int | None
    cpu_s: float
    wall_s: float
    loop_lag_p99_ms: float
    loop_lag_max_ms: float
    lag_spikes: list[tuple[int, int]] = field(default_factory=list)
    """(monotonic ns, lag ns) of each loop lag over LAG_SPIKE_NS: when the clients' own process stalled."""


async def _timed_client(
    index: int, url: str, logs: list[ConnectionLog], until: float, stall: asyncio.Event | None, rcvbuf: int | None
) -> None:
    """Receives and timestamps until `until` (monotonic s), reconnecting after a venue-side close; the
    stalled client (`stall` given) stops reading once `stall` is set and never reconnects."""
    while time.monotonic() < until:
        sock = socket.socket()
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            sock.connect(urlport(url))
            ws = await connect(url, sock=sock, compression=None, max_queue=4 if stall else 16, open_timeout=10)
        except (OSError, InvalidHandshake, TimeoutError):  # refused by a fault, or the venue is down: again
            sock.close()
            await asyncio.sleep(0.05)
            continue
        log = ConnectionLog(index, ws.local_address[1])
        logs.append(log)
        await _receive(ws, log, until, stall)
        if stall is not None:
            return
        await asyncio.sleep(0.02)


async def _receive(ws: ClientConnection, log: ConnectionLog, until: float, stall: asyncio.Event | None) -> None:
    received = log.received
    with contextlib.suppress(ConnectionClosed):
        while True:
            remaining = until - time.monotonic()
            if remaining <= 0:
                break
            if stall is not None and stall.is_set():
                await asyncio.sleep(remaining)  # reads nothing more until the run is over
                break
            try:
                async with asyncio.timeout(min(remaining, 0.5)):
                    await ws.recv(decode=False)
            except TimeoutError:
                continue
            received.append(time.monotonic_ns())
        # Time is up: close, and read what the venue wrote before it saw the close, so that a healthy
        # client's count is comparable with the venue's writes to it (and the stalled one learns how
        # it ended).
        closing = asyncio.create_task(ws.close())
        with contextlib.suppress(ConnectionClosed):
            while True:
                await ws.recv(decode=False)
                received.append(time.monotonic_ns())
        await closing
    log.close_frame = ws.protocol.close_rcvd is not None
    log.close_code = ws.close_code  # 1006 when the venue dropped the connection without a close frame


def urlport(url: str) -> tuple[str, int]:
    host, _, port = url.split("://", 1)[1].split("/", 1)[0].rpartition(":")
    return host, int(port)


LAG_SPIKE_NS = 20_000_000


async def _loop_lag(stop: asyncio.Event, lags: array, spikes: list[tuple[int, int]]) -> None:
    """How late a 10 ms timer fires on the clients' loop: a loop too busy to read shows here first."""
    while not stop.is_set():
        before = time.monotonic_ns()
        await asyncio.sleep(0.01)
        now = time.monotonic_ns()
        lags.append(now - before - 10_000_000)
        if lags[-1] > LAG_SPIKE_NS:
            spikes.append((now, lags[-1]))


async def run_clients(
    url: str,
    clients: int,
    seconds: float,
    *,
    stalled: bool,
    stall_at_s: float,
    stall_rcvbuf: int | None = None,
    first_index: int = 0,
) -> ClientsResult:
    """`clients` clients on `url` for `seconds`; with `stalled`, the first one stops reading at `stall_at_s`."""
    logs: list[ConnectionLog] = []
    until = time.monotonic() + seconds
    stall = asyncio.Event() if stalled else None
    stop = asyncio.Event()
    lags = array("q")
    spikes: list[tuple[int, int]] = []
    lag_task = asyncio.create_task(_loop_lag(stop, lags, spikes))
    cpu0, wall0 = time.process_time(), time.monotonic()
    stalled_at: list[int] = []

    def stop_reading() -> None:
        assert stall is not None
        stall.set()
        stalled_at.append(time.monotonic_ns())

    if stall is not None:
        asyncio.get_running_loop().call_later(stall_at_s, stop_reading)
    tasks = [
        asyncio.create_task(
            _timed_client(
                first_index + i,
                url,
                logs,
                until,
                stall if (stalled and i == 0) else None,
                stall_rcvbuf if (stalled and i == 0) else None,
            )
        )
        for i in range(clients)
    ]
    await asyncio.gather(*tasks)
    stop.set()
    await lag_task
    ordered = sorted(lags)
    return ClientsResult(
        logs,
        stalled_at[0] if stalled_at else None,
        time.process_time() - cpu0,
        time.monotonic() - wall0,
        ordered[int(0.99 * (len(ordered) - 1))] / 1e6 if ordered else 0.0,
        ordered[-1] / 1e6 if ordered else 0.0,
        spikes,
    )


# Putting the two sides together.


@dataclass(slots=True)
class Latency:
    """Pooled percentiles, and the median over the phase's seconds of each second's p99: on a machine
    shared with other work, one second in which the whole box stalled moves the pooled p99 of a
    phase, while the median of per-second p99s shows what the phase's typical second looked like."""

    frames: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    p99_median_per_s_ms: float
    p99_by_second: dict[int, float] = field(default_factory=dict)
    """Each second's p99 in ms, keyed by the monotonic second the frames were due in (shared by the arms)."""

    def worst_seconds(self) -> list[tuple[int, float]]:
        """The three seconds with the highest p99, and that p99."""
        return sorted(self.p99_by_second.items(), key=lambda item: -item[1])[:3]


def _quantile(ordered: list[int], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def latency(samples: list[tuple[int, int]]) -> Latency:
    """`samples`: (monotonic second of the intended send time, latency ns)."""
    if not samples:
        return Latency(0, 0.0, 0.0, 0.0, 0.0)
    ordered = sorted(value for _, value in samples)
    seconds: dict[int, list[int]] = {}
    for second, value in samples:
        seconds.setdefault(second, []).append(value)
    by_second = {second: _quantile(sorted(values), 0.99) for second, values in seconds.items()}
    per_second = sorted(by_second.values())
    return Latency(
        len(ordered),
        _quantile(ordered, 0.5),
        _quantile(ordered, 0.99),
        ordered[-1] / 1e6,
        per_second[len(per_second) // 2],
        by_second,
    )


@dataclass(slots=True)
class LoadFigures:
    clients: int
    seconds: float
    frames_written: int
    frames_received: int
    healthy_short: list[str]
    stalled_cause: str | None
    stalled_close_code: int | None
    """What the stalled client saw at the end: 1006 when the venue dropped it without a close frame."""
    stall_window: tuple[int, int | None] | None
    dropped_causes: dict[str, int]
    without_stalled: dict[str, Latency]
    with_stalled: dict[str, Latency]
    largest_backlog: int
    """The most the venue held for one client at a sample (the stalled one, where there is one)."""
    before: VenueSample
    after: VenueSample
    samples: list[VenueSample]
    client_cpu_share: float
    client_loop_lag_p99_ms: float
    client_loop_lag_max_ms: float
    client_lag_by_second: dict[int, float] = field(default_factory=dict)
    """The clients' worst loop lag (ms) in each monotonic second where it passed LAG_SPIKE_NS."""
    start_second: int = 0
    """The monotonic second the venue's clock started in: seconds are shown from it."""

    def ratio(self, key: str, per_second: bool = False) -> float:
        def p99(lat: Latency) -> float:
            return lat.p99_median_per_s_ms if per_second else lat.p99_ms

        base = p99(self.without_stalled[key])
        return p99(self.with_stalled[key]) / base if base else float("nan")


def analyse(
    summary: dict[str, Any],
    timings: array,
    clients: list[ClientsResult],
    *,
    warm_up_s: float,
    samples: list[VenueSample],
    before: VenueSample,
    after: VenueSample,
    seconds: float,
    stall_window: tuple[int, int | None] | None = None,
) -> LoadFigures:
    """Matches each client's k-th receive to the venue's k-th write to it (one TCP stream keeps order).

    Frames due from the stall until the stalled client was dropped are the "with" phase, the ones
    before it "without". `stall_window` gives those times for a control venue with no stalled client of
    its own (the same seconds of the same run, so both see the same machine)."""
    records = {c["id"]: c for c in summary["clients"]}
    writes: dict[int, list[tuple[int, int]]] = {}
    for k in range(0, len(timings), 3):
        writes.setdefault(timings[k], []).append((timings[k + 1], timings[k + 2]))
    by_port = {c["port"]: c["id"] for c in summary["clients"]}
    stalled_at = next((c.stalled_at_ns for c in clients if c.stalled_at_ns is not None), None)
    stalled_ids = {
        by_port[log.port] for c in clients for log in c.connections if log.client == 0 and log.port in by_port
    }
    stalled_ids = stalled_ids if stalled_at is not None else set()
    stalled_record = next((records[i] for i in stalled_ids), None)
    drop_ns = stalled_record["closed"] if stalled_record and stalled_record["closed"] else None
    if stall_window is not None:
        stalled_at, drop_ns = stall_window
    start = summary["clock_start_mono_ns"] or 0
    warm = start + round(warm_up_s * 1e9)
    windows = summary["windows"]

    def in_window(t: int) -> bool:
        return any(a <= t <= b for a, b in windows)

    phases: dict[str, dict[str, list[tuple[int, int]]]] = {
        "without": {"intended": [], "write": [], "venue": []},
        "with": {"intended": [], "write": [], "venue": []},
    }
    short: list[str] = []
    written = received = 0
    for result in clients:
        for log in result.connections:
            cid = by_port.get(log.port)
            if cid is None or cid in stalled_ids:
                continue
            sent = writes.get(cid, [])
            written += len(sent)
            received += len(log.received)
            if len(log.received) != len(sent) and records[cid]["cause"] not in _LOSSY_CAUSES:
                short.append(f"client {log.client} conn {cid}: {len(sent)} written, {len(log.received)} received")
            for (intended, write), got in zip(sent, log.received, strict=False):
                if intended < warm or in_window(intended):
                    continue
                if stalled_at is not None and intended >= stalled_at:
                    if drop_ns is not None and intended >= drop_ns:
                        continue
                    phase = phases["with"]
                else:
                    phase = phases["without"]
                second = intended // 1_000_000_000
                phase["intended"].append((second, got - intended))
                phase["write"].append((second, got - write))
                phase["venue"].append((second, write - intended))
    causes: dict[str, int] = {}
    for record in summary["clients"]:
        if record["id"] not in stalled_ids and record["cause"] == "slow_consumer":
            causes["slow_consumer"] = causes.get("slow_consumer", 0) + 1
    cpu = sum(c.cpu_s for c in clients)
    wall = max((c.wall_s for c in clients), default=1.0)
    return LoadFigures(
        clients=sum(len({log.client for log in c.connections}) for c in clients),
        seconds=seconds,
        frames_written=written,
        frames_received=received,
        healthy_short=short,
        stalled_cause=stalled_record["cause"] if stalled_record else None,
        stalled_close_code=next(
            (log.close_code for c in clients for log in c.connections if by_port.get(log.port) in stalled_ids), None
        ),
        stall_window=(stalled_at, drop_ns) if stalled_at is not None else None,
        dropped_causes=causes,
        without_stalled={k: latency(v) for k, v in phases["without"].items()},
        with_stalled={k: latency(v) for k, v in phases["with"].items()},
        largest_backlog=max((s.max_backlog for s in samples), default=0),
        before=before,
        after=after,
        samples=samples,
        client_cpu_share=cpu / wall,
        client_loop_lag_p99_ms=max((c.loop_lag_p99_ms for c in clients), default=0.0),
        client_loop_lag_max_ms=max((c.loop_lag_max_ms for c in clients), default=0.0),
        client_lag_by_second=_lag_by_second(clients),
        start_second=start // 1_000_000_000,
    )


def _lag_by_second(clients: list[ClientsResult]) -> dict[int, float]:
    worst: dict[int, float] = {}
    for result in clients:
        for at, lag in result.lag_spikes:
            second = at // 1_000_000_000
            worst[second] = max(worst.get(second, 0.0), lag / 1e6)
    return worst


_LOSSY_CAUSES = ("disconnect:abort", "disconnect:reset", "slow_consumer", "half_open")
"""A connection the venue aborted may lose what was in flight; every other one receives all it was written."""


async def run_in_process(
    *,
    recording: Path,
    scenario: str,
    clients: int,
    seconds: float,
    stall_at_s: float,
    speed: float | None,
    folder: Path,
    seed: int | None = None,
    warm_up_s: float = 0.0,
    stall_rcvbuf: int | None = None,
    sample_every_s: float = 0.5,
) -> LoadFigures:
    """The short version: venue and clients on this loop (what `make test` runs)."""
    timings_path = folder / "timings.bin"
    venue = LoadVenue(recording, scenario, seed, speed, timings_path)
    await venue.server.start()
    gc.collect()
    before = venue.sample()
    stop = asyncio.Event()
    samples: list[VenueSample] = []
    sampler = asyncio.create_task(sample_until(venue, stop, sample_every_s, samples))
    result = await run_clients(
        venue.server.ws_url + "/stream?streams=" + "/".join(venue.data.streams),
        clients,
        seconds,
        stalled=True,
        stall_at_s=stall_at_s,
        stall_rcvbuf=stall_rcvbuf,
    )
    stop.set()
    await sampler
    after = await settled(venue, before)
    summary = venue.summary()
    await venue.server.stop()
    venue.close()
    timings = array("q", timings_path.read_bytes())
    return analyse(
        summary, timings, [result], warm_up_s=warm_up_s, samples=samples, before=before, after=after, seconds=seconds
    )


# Processes: the bench proper.


async def serve_child(args: argparse.Namespace) -> None:
    """The venue process: prints `port N`, serves until stdin says `done`, then writes its results."""
    folder = Path(args.folder)
    venue = LoadVenue(
        Path(args.recording), args.scenario, args.seed, args.speed, folder / "timings.bin", args.keep_send_log
    )
    await venue.server.start()
    gc.collect()
    before = venue.sample()
    print(f"port {venue.server.port}", flush=True)
    stop = asyncio.Event()
    samples: list[VenueSample] = []
    sampler = asyncio.create_task(sample_until(venue, stop, args.sample_every, samples))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    stop.set()
    await sampler
    after = await settled(venue, before)
    summary = venue.summary()
    await venue.server.stop()
    venue.close()
    stopped = venue.sample()
    doc = {
        "cpu_s": time.process_time(),
        "summary": summary,
        "before": asdict(before),
        "after": asdict(after),
        "stopped": asdict(stopped),
        "samples": [asdict(s) for s in samples],
    }
    (folder / "venue.json").write_bytes(orjson.dumps(doc))


async def clients_child(args: argparse.Namespace) -> None:
    result = await run_clients(
        args.url,
        args.clients,
        args.seconds,
        stalled=args.stalled,
        stall_at_s=args.stall_at,
        first_index=args.first_index,
    )
    doc = {
        "connections": [
            {**{k: v for k, v in asdict(log).items() if k != "received"}, "received": list(log.received)}
            for log in result.connections
        ],
        "stalled_at_ns": result.stalled_at_ns,
        "cpu_s": result.cpu_s,
        "wall_s": result.wall_s,
        "loop_lag_p99_ms": result.loop_lag_p99_ms,
        "loop_lag_max_ms": result.loop_lag_max_ms,
        "lag_spikes": result.lag_spikes,
    }
    Path(args.output).write_bytes(orjson.dumps(doc))


def _clients_from(doc: dict[str, Any]) -> ClientsResult:
    logs = [
        ConnectionLog(c["client"], c["port"], array("q", c["received"]), c["close_code"], c["close_frame"])
        for c in doc["connections"]
    ]
    return ClientsResult(
        logs,
        doc["stalled_at_ns"],
        doc["cpu_s"],
        doc["wall_s"],
        doc["loop_lag_p99_ms"],
        doc["loop_lag_max_ms"],
        [tuple(spike) for spike in doc["lag_spikes"]],
    )


@dataclass(slots=True)
class Arm:
    """One venue process and its client processes; the control arm has no stalled client."""

    name: str
    stalled: bool
    folder: Path
    venue: subprocess.Popen[bytes] | None = None
    clients: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)


def _start_venue(args: argparse.Namespace, arm: Arm) -> str:
    arm.folder.mkdir()
    arm.venue = _spawn(
        [sys.executable, "-m", "bench.venue_load", "--serve", "--folder", str(arm.folder),
         "--recording", str(args.recording), "--scenario", args.scenario, "--sample-every", str(args.sample_every)]
        + (["--speed", str(args.speed)] if args.speed is not None else [])
        + (["--seed", str(args.seed)] if args.seed is not None else [])
        + (["--keep-send-log"] if args.keep_send_log else [])
    )  # fmt: skip
    assert arm.venue.stdout is not None, "spawned with a pipe"
    port = int(arm.venue.stdout.readline().split()[1])
    data = load_replay_data(Path(args.recording))
    return f"ws://127.0.0.1:{port}/stream?streams={'/'.join(data.streams)}"


def _start_clients(args: argparse.Namespace, arm: Arm, url: str) -> None:
    procs = args.client_procs
    share = [args.clients // procs + (i < args.clients % procs) for i in range(procs)]
    first = 0
    for i, n in enumerate(share):
        out = arm.folder / f"clients-{i}.json"
        child = _spawn(
            [sys.executable, "-m", "bench.venue_load", "--clients-worker", "--url", url, "--clients", str(n),
             "--seconds", str(args.seconds), "--stall-at", str(args.stall_at), "--output", str(out),
             "--first-index", str(first)] + (["--stalled"] if arm.stalled and i == 0 else [])
        )  # fmt: skip
        arm.clients.append((child, out))
        first += n


def _finish(args: argparse.Namespace, arm: Arm, stall_window: tuple[int, int | None] | None) -> RunFigures:
    assert arm.venue is not None and arm.venue.stdin is not None, "started by _start_venue"
    arm.venue.stdin.write(b"done\n")
    arm.venue.stdin.flush()
    arm.venue.wait()
    doc = orjson.loads((arm.folder / "venue.json").read_bytes())
    clients = [_clients_from(orjson.loads(out.read_bytes())) for _, out in arm.clients]
    figures = analyse(
        doc["summary"],
        array("q", (arm.folder / "timings.bin").read_bytes()),
        clients,
        warm_up_s=args.warm_up,
        samples=[VenueSample(**s) for s in doc["samples"]],
        before=VenueSample(**doc["before"]),
        after=VenueSample(**doc["after"]),
        seconds=args.seconds,
        stall_window=stall_window,
    )
    return RunFigures(figures, VenueSample(**doc["stopped"]), doc["cpu_s"])


@dataclass(slots=True)
class RunFigures:
    figures: LoadFigures
    stopped: VenueSample
    venue_cpu_s: float


def run_processes(args: argparse.Namespace, folder: Path) -> tuple[RunFigures, RunFigures | None]:
    """The stalled arm, and beside it (unless `--no-control`) the control arm, started together so
    both see the same seconds of the same machine."""
    arms = [Arm("stalled", True, folder / "stalled")]
    if args.control:
        arms.append(Arm("control", False, folder / "control"))
    urls = [_start_venue(args, arm) for arm in arms]
    for arm, url in zip(arms, urls, strict=True):
        _start_clients(args, arm, url)
    for arm in arms:
        for child, _ in arm.clients:
            child.wait()
    stalled = _finish(args, arms[0], None)
    control = _finish(args, arms[1], stalled.figures.stall_window) if args.control else None
    return stalled, control


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def paired_ratio(stalled: Latency, control: Latency) -> float:
    """The median over the seconds both venues sent in of stalled p99 / control p99 in that second: the
    machine's load in a second hits both, so it cancels where a pooled p99 would carry it."""
    ratios = sorted(
        stalled.p99_by_second[second] / control.p99_by_second[second]
        for second in stalled.p99_by_second.keys() & control.p99_by_second.keys()
        if control.p99_by_second[second] > 0
    )
    return ratios[len(ratios) // 2] if ratios else float("nan")


def slope_mib_per_min(samples: list[VenueSample]) -> float:
    if len(samples) < 2:
        return 0.0
    xs = [s.at_s / 60 for s in samples]
    ys = [s.rss_mib for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def report(figures: LoadFigures, warm_up_s: float, stopped: VenueSample | None = None) -> list[str]:
    f = figures
    warm = [s for s in f.samples if s.at_s >= warm_up_s] or f.samples
    lines = [
        f"clients {f.clients} for {f.seconds:g} s: {f.frames_written} frames written to the healthy clients, "
        f"{f.frames_received} received; short: {'; '.join(f.healthy_short) or 'none'}",
        f"  stalled client: ended {f.stalled_cause} (it saw {f.stalled_close_code}); largest backlog the venue "
        f"held for one client "
        f"{f.largest_backlog} B; "
        f"healthy clients dropped as slow: {f.dropped_causes.get('slow_consumer', 0)}",
    ]
    for key in ("intended", "write", "venue"):
        a, b = f.without_stalled[key], f.with_stalled[key]
        lines.append(
            f"  e2e from {key}: without the stalled client p50 {a.p50_ms:.2f} p99 {a.p99_ms:.2f} "
            f"max {a.max_ms:.1f} ms, "
            f"median second's p99 {a.p99_median_per_s_ms:.2f} ({a.frames} frames); with it p50 {b.p50_ms:.2f} "
            f"p99 {b.p99_ms:.2f} max {b.max_ms:.1f} ms, median second's p99 {b.p99_median_per_s_ms:.2f} ({b.frames}); "
            f"p99 ratio {f.ratio(key):.2f}, median second's p99 ratio {f.ratio(key, per_second=True):.2f}"
        )
        for name, lat in (("without", a), ("with", b)):
            worst = ", ".join(
                f"{second - f.start_second} s: {p99:.1f} ms "
                f"(clients' loop lag {f.client_lag_by_second.get(second, 0.0):.0f} ms)"
                for second, p99 in lat.worst_seconds()
            )
            lines.append(f"    worst seconds {name} it: {worst}")
    if warm:
        rss = [s.rss_mib for s in warm]
        lines.append(
            f"  venue RSS after {warm_up_s:g} s: first {rss[0]:.1f} MiB, last {rss[-1]:.1f}, max {max(rss):.1f}, "
            f"slope {slope_mib_per_min(warm):+.2f} MiB/min over {len(warm)} samples; Python objects first "
            f"{warm[0].py_objects}, last {warm[-1].py_objects}, max {max(s.py_objects for s in warm)}"
        )
        lines.append(
            f"  venue while serving: fds {min(s.fds for s in warm)}..{max(s.fds for s in warm)}, "
            f"tasks {min(s.tasks for s in warm)}..{max(s.tasks for s in warm)}, "
            f"open clients {min(s.open_clients for s in warm)}..{max(s.open_clients for s in warm)}"
        )
    first, last = f.before, f.after
    tail = f"; after stop: fds {stopped.fds}, tasks {stopped.tasks}" if stopped is not None else ""
    lines.append(
        f"  venue before -> after the clients: fds {first.fds} -> {last.fds}, tasks {first.tasks} -> {last.tasks}{tail}"
    )
    lines.append(
        f"  clients' process: CPU {f.client_cpu_share:.0%} of one core, loop lag p99 {f.client_loop_lag_p99_ms:.2f} "
        f"max {f.client_loop_lag_max_ms:.1f} ms"
    )
    return lines


def problems(figures: LoadFigures) -> list[str]:
    found = list(figures.healthy_short)
    if figures.stalled_cause != "slow_consumer":
        found.append(f"the stalled client ended {figures.stalled_cause}, not slow_consumer")
    if figures.dropped_causes:
        found.append(f"healthy clients dropped: {figures.dropped_causes}")
    b, a = figures.before, figures.after
    if (a.fds, a.tasks) != (b.fds, b.tasks):
        found.append(f"leak: fds {b.fds} -> {a.fds}, tasks {b.tasks} -> {a.tasks}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.venue_load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scenario", default="slow_consumer")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--speed", type=float, default=1.0, help="replay speed (the fixture is 60 s of recording)")
    parser.add_argument("--recording", default=str(BUNDLED_FIXTURE))
    parser.add_argument("--stall-at", type=float, default=8.0, help="seconds before one client stops reading")
    parser.add_argument("--warm-up", type=float, default=3.0)
    parser.add_argument("--sample-every", type=float, default=1.0)
    parser.add_argument("--client-procs", type=int, default=1)
    parser.add_argument(
        "--keep-send-log",
        action="store_true",
        help="keep the server's per-frame send log, as `harness serve` does today (`harness replay` needs it)",
    )
    parser.add_argument(
        "--no-control", dest="control", action="store_false", help="no control venue (one without a stalled client)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--clients-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--first-index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--stalled", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve_child(args))
        return 0
    if args.clients_worker:
        asyncio.run(clients_child(args))
        return 0
    with tempfile.TemporaryDirectory(prefix="venue-load-") as folder:
        stalled, control = run_processes(args, Path(folder))
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the end of the run"
    )
    print(
        f"venue load: {args.clients} clients in {args.client_procs} process(es), {args.seconds:g} s, scenario "
        f"{args.scenario} at speed {args.speed:g}, one client stops reading at {args.stall_at:g} s"
        + ("; a control venue with no stalled client runs beside it" if control else "")
    )
    print("venue with the stalled client:")
    for line in report(stalled.figures, args.warm_up, stalled.stopped):
        print(line)
    print(f"  venue process CPU {stalled.venue_cpu_s / args.seconds:.0%} of one core")
    found = problems(stalled.figures)
    if control is not None:
        print("control venue, same seconds:")
        for line in report(control.figures, args.warm_up, control.stopped):
            print(line)
        print(f"  venue process CPU {control.venue_cpu_s / args.seconds:.0%} of one core")
        for key in ("intended", "write"):
            a, b = stalled.figures.with_stalled[key], control.figures.with_stalled[key]
            ratio = a.p99_ms / b.p99_ms if b.p99_ms else float("nan")
            print(
                f"stalled against control while the stall lasted, e2e from {key}: p99 {a.p99_ms:.2f} against "
                f"{b.p99_ms:.2f} ms, ratio {ratio:.2f}; median second's p99 {a.p99_median_per_s_ms:.2f} against "
                f"{b.p99_median_per_s_ms:.2f} ms; second by second, median ratio {paired_ratio(a, b):.2f}"
            )
        b_found = [p for p in problems(control.figures) if "stalled client ended" not in p]
        found += [f"control: {p}" for p in b_found]
    for line in found:
        print(f"  problem: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
