"""The reconnecting client against real websockets servers on 127.0.0.1, plus its pure core.

Every wait is on a future resolved by the client's own callbacks; `asyncio.timeout` is only a
safety net so a broken client fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
from collections.abc import Callable
from http import HTTPStatus

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve

from harness.client import ReconnectingClient
from harness.client_state import (
    BackoffPolicy,
    ClientCore,
    ConnectFailed,
    ConnectionOpened,
    ConnectionState,
    DisconnectCause,
    Disconnected,
    GaveUp,
    GiveUp,
    JsonRpcSubscribe,
    ReconnectScheduled,
    Retry,
    StateChanged,
    StepReply,
    Stopped,
    WatchdogFired,
)
from harness.errors import HarnessError
from tests.client_probe import SAFETY_S, CallbackProbe, aio

TINY_BACKOFF = BackoffPolicy(base_s=0.001, multiplier=2.0, cap_s=0.01)
ACK = b'{"result":null,"id":1}'
FULL_STATES = [
    ConnectionState.CONNECTING,
    ConnectionState.CONNECTED,
    ConnectionState.AUTHENTICATED,
    ConnectionState.SUBSCRIBED,
    ConnectionState.ACTIVE,
]


class Probe(CallbackProbe):
    """Also reads the client's events: states per connection, and a predicate for ACTIVE."""

    def states(self, conn_id: int) -> list[ConnectionState]:
        return [
            e.new for e in self.of(StateChanged) if e.conn_id == conn_id and e.new is not ConnectionState.CONNECTING
        ]

    def active(self, conn_id: int) -> Callable[[], bool]:
        return lambda: any(e.new is ConnectionState.ACTIVE and e.conn_id == conn_id for e in self.of(StateChanged))


def port_of(server) -> int:
    return server.sockets[0].getsockname()[1]


def client_tasks(client_task: asyncio.Task) -> list[asyncio.Task]:
    """Tasks the client could have left: its own, and its application-level pinger."""
    return [
        task
        for task in asyncio.all_tasks()
        if task is client_task or getattr(task.get_coro(), "__qualname__", "").endswith("._app_pings")
    ]


def make_client(url: str, probe: Probe, **kwargs) -> ReconnectingClient:
    kwargs.setdefault("backoff", TINY_BACKOFF)
    kwargs.setdefault("rng", random.Random(7))
    kwargs.setdefault("ping_interval_s", None)
    return ReconnectingClient(url, probe.on_message, on_event=probe.on_event, **kwargs)


@aio
async def test_combined_stream_url_reaches_active_and_delivers_raw_bytes() -> None:
    sent = [b'{"stream":"btcusdt@depth","data":{"u":%d}}' % i for i in range(3)]

    async def handler(ws: ServerConnection) -> None:
        for payload in sent:
            await ws.send(payload.decode())  # text frames: the client must still hand over bytes
        await ws.wait_closed()

    probe = Probe()
    async with serve(handler, "127.0.0.1", 0) as server:
        client = make_client(f"ws://127.0.0.1:{port_of(server)}/stream?streams=btcusdt@depth", probe)
        client.start()
        await probe.until(lambda: len(probe.frames) == 3)
        assert client.state is ConnectionState.ACTIVE
        await client.stop()

    assert [f[0] for f in probe.frames] == sent
    assert all(type(f[0]) is bytes and f[3] == 1 for f in probe.frames)
    assert probe.states(1)[:4] == FULL_STATES[1:]
    opened = probe.of(ConnectionOpened)
    assert [o.conn_id for o in opened] == [1]
    assert probe.log.index(opened[0]) < probe.log.index(probe.frames[0])
    monos = [f[1] for f in probe.frames]
    assert monos == sorted(monos) and monos[0] >= opened[0].mono_ns


@aio
async def test_server_close_1001_is_reported_and_client_resubscribes() -> None:
    subscribes: list[bytes] = []
    data = b'{"e":"depthUpdate","U":1,"u":2}'

    async def handler(ws: ServerConnection) -> None:
        subscribes.append(await ws.recv(decode=False))
        await ws.send(ACK, text=True)
        await ws.send(data, text=True)
        if len(subscribes) == 1:
            await ws.close(1001, "server restart")
        else:
            await ws.wait_closed()

    probe = Probe()
    step = JsonRpcSubscribe(("btcusdt@depth@100ms", "btcusdt@bookTicker"), request_id=1, timeout_s=5)
    async with serve(handler, "127.0.0.1", 0) as server:
        client = make_client(f"ws://127.0.0.1:{port_of(server)}/ws", probe, subscribe=step)
        client.start()
        await probe.until(probe.active(2))
        await client.stop()

    expected = {"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms", "btcusdt@bookTicker"], "id": 1}
    assert [orjson.loads(s) for s in subscribes] == [expected, expected]
    first = probe.of(Disconnected)[0]
    assert (first.conn_id, first.code, first.reason, first.cause) == (
        1,
        1001,
        "server restart",
        DisconnectCause.SERVER_CLOSE,
    )
    assert first.frames == 2
    assert probe.states(1) == [*FULL_STATES[1:], ConnectionState.DISCONNECTED]
    assert probe.states(2)[:4] == FULL_STATES[1:]
    assert [f[0] for f in probe.frames if f[3] == 2] == [ACK, data]
    assert [o.conn_id for o in probe.of(ConnectionOpened)] == [1, 2]


@aio
async def test_abort_without_close_frame_reconnects() -> None:
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        await ws.send(b"frame-%d" % connections)
        if connections == 1:
            ws.transport.abort()
        else:
            await ws.wait_closed()

    probe = Probe()
    async with serve(handler, "127.0.0.1", 0) as server:
        client = make_client(f"ws://127.0.0.1:{port_of(server)}/ws", probe)
        client.start()
        await probe.until(lambda: any(f[3] == 2 for f in probe.frames))
        await client.stop()

    lost = probe.of(Disconnected)[0]
    assert (lost.conn_id, lost.code, lost.reason, lost.cause) == (1, 1006, "", DisconnectCause.CONNECTION_LOST)
    assert [f[0] for f in probe.frames] == [b"frame-1", b"frame-2"]
    assert probe.of(ReconnectScheduled)[0].attempt == 0


@pytest.mark.parametrize("status", [HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS])
@aio
async def test_refused_handshake_is_reported_and_backed_off(status: HTTPStatus) -> None:
    requests = 0

    def process_request(connection: ServerConnection, request):
        nonlocal requests
        requests += 1
        return connection.respond(status, "busy\n") if requests <= 2 else None

    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"hello")
        await ws.wait_closed()

    probe = Probe()
    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        client = make_client(f"ws://127.0.0.1:{port_of(server)}/ws", probe)
        client.start()
        await probe.until(probe.active(1))
        await client.stop()

    failed = probe.of(ConnectFailed)
    assert [(f.attempt, f.status_code) for f in failed] == [(0, int(status)), (1, int(status))]
    assert [r.attempt for r in probe.of(ReconnectScheduled)] == [0, 1]
    assert probe.of(ConnectionOpened)[0].attempt == 2


@aio
async def test_connection_refused_gives_up_after_max_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    probe = Probe()
    client = make_client(f"ws://127.0.0.1:{port}/ws", probe, max_retries=2)
    async with asyncio.timeout(SAFETY_S):
        await client.run()

    failed = probe.of(ConnectFailed)
    assert len(failed) == 3
    assert all(f.status_code is None and "ConnectionRefused" in f.error for f in failed)
    assert probe.of(GaveUp) == [GaveUp(2, probe.of(GaveUp)[0].mono_ns)]
    assert isinstance(probe.log[-1], Stopped)
    assert client.state is ConnectionState.DISCONNECTED
    assert probe.of(ConnectionOpened) == []


@aio
async def test_watchdog_aborts_a_silent_half_open_connection() -> None:
    release = asyncio.Event()
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        await ws.send(b"tick")
        if connections == 1:
            ws.transport.pause_reading()  # neither sends nor reads: client pings go unanswered
            await release.wait()
            ws.transport.abort()
        else:
            await ws.wait_closed()

    probe = Probe()
    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        try:
            client = make_client(
                f"ws://127.0.0.1:{port_of(server)}/ws", probe, watchdog_s=0.2, ping_interval_s=0.05, ping_timeout_s=30
            )
            client.start()
            await probe.until(probe.active(2))
            await client.stop()
        finally:
            release.set()  # let the paused handler end, or the server would wait for it forever

    fired = probe.of(WatchdogFired)
    assert [w.conn_id for w in fired] == [1]
    assert fired[0].silence_ns >= 200_000_000
    dead = probe.of(Disconnected)[0]
    assert (dead.conn_id, dead.code, dead.cause) == (1, 1006, DisconnectCause.WATCHDOG)
    assert probe.log.index(fired[0]) < probe.log.index(dead)


@aio
async def test_flapping_server_still_backs_off() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"x")
        await ws.close(1001, "flap")

    probe = Probe()
    async with serve(handler, "127.0.0.1", 0) as server:
        client = make_client(f"ws://127.0.0.1:{port_of(server)}/ws", probe, stable_after_s=3600)
        client.start()
        await probe.until(lambda: len(probe.of(ReconnectScheduled)) == 4)
        await client.stop()

    assert [r.attempt for r in probe.of(ReconnectScheduled)][:4] == [0, 1, 2, 3]
    assert [o.attempt for o in probe.of(ConnectionOpened)][:4] == [0, 1, 2, 3]


@aio
async def test_rejected_subscribe_disconnects_and_retries() -> None:
    async def handler(ws: ServerConnection) -> None:
        request = orjson.loads(await ws.recv())
        if request["params"] == ["nope"]:
            await ws.send(b'{"error":{"code":2,"msg":"Invalid request"},"id":1}', text=True)
        await ws.wait_closed()

    probe = Probe()
    async with serve(handler, "127.0.0.1", 0) as server:
        step = JsonRpcSubscribe(("nope",), timeout_s=5)
        client = make_client(f"ws://127.0.0.1:{port_of(server)}/ws", probe, subscribe=step)
        client.start()
        await probe.until(lambda: len(probe.of(Disconnected)) == 2)
        await client.stop()

    first = probe.of(Disconnected)[0]
    assert (first.cause, first.code, first.reason) == (DisconnectCause.STEP_REJECTED, 1000, "request rejected")
    assert ConnectionState.SUBSCRIBED not in probe.states(1)


@aio
async def test_stop_while_active_closes_1000_and_leaves_no_task() -> None:
    server_saw: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"x")
        await ws.wait_closed()
        server_saw.set_result(ws.close_code)

    before = asyncio.all_tasks()
    probe = Probe()
    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        client = make_client(f"ws://127.0.0.1:{port_of(server)}/ws", probe, ping_interval_s=0.05, watchdog_s=5)
        task = client.start()
        await probe.until(probe.active(1))
        assert client_tasks(task) == [task]
        await client.stop()
        assert task.done() and not task.cancelled()
        assert client_tasks(task) == []
        async with asyncio.timeout(SAFETY_S):
            assert await server_saw == 1000
    assert asyncio.all_tasks() - before == set()

    stopped = probe.of(Disconnected)[-1]
    assert (stopped.cause, stopped.code) == (DisconnectCause.STOPPED, 1000)
    assert isinstance(probe.log[-1], Stopped)
    assert client.state is ConnectionState.DISCONNECTED


@aio
async def test_stop_during_a_long_backoff_returns_and_leaves_no_task() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    before = asyncio.all_tasks()
    probe = Probe()
    slow = BackoffPolicy(base_s=3600, multiplier=2, cap_s=3600)
    client = make_client(f"ws://127.0.0.1:{port}/ws", probe, backoff=slow, rng=random.Random(1))
    task = client.start()
    await probe.until(lambda: bool(probe.of(ReconnectScheduled)))
    async with asyncio.timeout(SAFETY_S):
        await client.stop()
    assert task.done() and not task.cancelled()
    assert asyncio.all_tasks() - before == set()
    assert isinstance(probe.log[-1], Stopped)


@aio
async def test_failing_on_message_surfaces_from_run_and_closes_the_socket() -> None:
    closed = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"boom")
        await ws.wait_closed()
        closed.set()

    def on_message(payload: bytes, recv_mono_ns: int, recv_wall_ns: int, conn_id: int) -> None:
        raise ValueError(payload.decode())

    async with serve(handler, "127.0.0.1", 0) as server:
        client = ReconnectingClient(f"ws://127.0.0.1:{port_of(server)}/ws", on_message, ping_interval_s=None)
        async with asyncio.timeout(SAFETY_S):
            with pytest.raises(ValueError, match="boom"):
                await client.run()
            await closed.wait()
    assert client.conn_id == 1


def test_bad_configuration_is_a_harness_error() -> None:
    with pytest.raises(HarnessError):
        ReconnectingClient("http://example.invalid/", lambda *a: None)
    with pytest.raises(HarnessError):
        ReconnectingClient("ws://127.0.0.1:1/", lambda *a: None, watchdog_s=0)
    with pytest.raises(HarnessError):
        BackoffPolicy(base_s=1, cap_s=0.5)
    with pytest.raises(HarnessError):
        JsonRpcSubscribe(())


# The pure core.


@settings(max_examples=300, deadline=None)
@given(
    base=st.floats(1e-4, 10),
    multiplier=st.floats(1, 10),
    cap_factor=st.floats(1, 1e4),
    attempt=st.integers(0, 5000),
    seed=st.integers(0, 2**32),
)
def test_backoff_stays_within_full_jitter_bounds(
    base: float, multiplier: float, cap_factor: float, attempt: int, seed: int
) -> None:
    policy = BackoffPolicy(base_s=base, multiplier=multiplier, cap_s=base * cap_factor)
    try:
        exponential = base * multiplier**attempt
    except OverflowError:
        exponential = math.inf
    bound = min(policy.cap_s, exponential)
    assert policy.ceiling(attempt) == pytest.approx(bound, rel=1e-9)
    delay = policy.delay(attempt, random.Random(seed))
    assert 0 <= delay <= policy.ceiling(attempt) <= policy.cap_s


def test_full_jitter_is_deterministic_under_a_seed_and_spans_the_window() -> None:
    policy = BackoffPolicy(base_s=0.1, multiplier=2, cap_s=5)
    draws = [policy.delay(a % 8, random.Random(42)) for a in range(8)]
    assert draws == [policy.delay(a % 8, random.Random(42)) for a in range(8)]
    rng = random.Random(42)
    many = [policy.delay(6, rng) for _ in range(2000)]
    assert min(many) < 0.05 * 5 and max(many) > 0.95 * 5
    other = random.Random(43)
    assert [policy.delay(3, other) for _ in range(5)] != many[:5]


def _flap(core: ClientCore, now: int, lived_ns: int) -> int:
    core.connecting(now)
    core.opened(now, now, "ws://x")
    for state in FULL_STATES[2:]:
        core.advance(state, now)
    core.closed(now + lived_ns, now, 1001, "", DisconnectCause.SERVER_CLOSE, 1)
    return now + lived_ns


@settings(max_examples=100, deadline=None)
@given(lifetimes=st.lists(st.integers(0, 200), min_size=1, max_size=30), seed=st.integers(0, 2**16))
def test_retry_count_resets_only_after_a_stable_connection(lifetimes: list[int], seed: int) -> None:
    core = ClientCore(BackoffPolicy(1, 2, 60), random.Random(seed), None, stable_after_ns=100)
    now, expected = 0, 0
    for lived in lifetimes:
        now = _flap(core, now, lived)
        if lived >= 100:
            expected = 0
        decision = core.next_retry()
        assert isinstance(decision, Retry) and decision.attempt == expected
        assert 0 <= decision.delay_s <= core.backoff.ceiling(expected)
        expected += 1
        assert core.attempt == expected


def test_max_retries_gives_up_after_exactly_that_many_retries() -> None:
    core = ClientCore(BackoffPolicy(), random.Random(0), 3, stable_after_ns=0)
    decisions = []
    for _ in range(4):
        core.connecting(0)
        core.connect_failed(0, 503, "busy")
        decisions.append(core.next_retry())
    assert [type(d) for d in decisions] == [Retry, Retry, Retry, GiveUp]
    assert decisions[-1] == GiveUp(3)


def test_illegal_transition_is_refused() -> None:
    core = ClientCore(BackoffPolicy(), random.Random(0), None, stable_after_ns=0)
    with pytest.raises(RuntimeError):
        core.advance(ConnectionState.ACTIVE, 0)
    core.connecting(0)
    with pytest.raises(RuntimeError):
        core.advance(ConnectionState.SUBSCRIBED, 0)
    assert core.state is ConnectionState.CONNECTING


def test_json_rpc_subscribe_classifies_replies() -> None:
    step = JsonRpcSubscribe(("btcusdt@depth",), request_id=7)
    (message,) = step.messages()
    assert isinstance(message, str)  # a text frame, as the venues require
    assert orjson.loads(message) == {"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 7}
    assert step.classify(b'{"result":null,"id":7}') is StepReply.ACK
    assert step.classify(b'{"error":{"code":2,"msg":"bad"},"id":7}') is StepReply.REJECTED
    assert step.classify(b'{"result":null,"id":8}') is StepReply.OTHER
    assert step.classify(b'{"e":"depthUpdate","U":1,"u":2,"b":[],"a":[]}') is StepReply.OTHER
    assert step.classify(b'{"id":7 not json') is StepReply.OTHER


@aio
async def test_reconnect_closes_1000_and_subscribes_again() -> None:
    subscribes: list[bytes] = []

    async def handler(ws: ServerConnection) -> None:
        subscribes.append(await ws.recv(decode=False))
        await ws.send(ACK, text=True)
        await ws.send(b'{"u":%d}' % len(subscribes), text=True)
        await ws.wait_closed()

    probe = Probe()
    step = JsonRpcSubscribe(("btcusdt@depth",), request_id=1, timeout_s=5)
    async with serve(handler, "127.0.0.1", 0) as server:
        client = make_client(f"ws://127.0.0.1:{port_of(server)}/ws", probe, subscribe=step)
        task = client.start()
        await probe.until(lambda: any(f[0] == b'{"u":1}' for f in probe.frames))
        client.reconnect("fresh snapshot")
        client.reconnect("twice is once")
        await probe.until(lambda: any(f[0] == b'{"u":2}' for f in probe.frames))
        await client.stop()

    first = probe.of(Disconnected)[0]
    assert (first.conn_id, first.code, first.reason, first.cause) == (
        1,
        1000,
        "fresh snapshot",
        DisconnectCause.RESUBSCRIBE,
    )
    assert len(subscribes) == 2 and [o.conn_id for o in probe.of(ConnectionOpened)] == [1, 2]
    assert not [t for t in client_tasks(task) if not t.done()]
