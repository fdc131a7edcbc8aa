"""The fake venue's decisions, sans I/O: `VenueCore`.

Split the way `websockets` splits its protocol from its asyncio connection: this object takes what
happened (an HTTP request, a connection opened, a client message, a schedule entry due, a frame handed
to a socket, a connection's backlog) with the time it happened, and returns what to do
(replayer/venue_actions.py). It holds every piece of venue state: subscriptions and framing per
connection, the replay clock's start, the venue's books, the fault countdowns of the timeline's control
entries, the limits, and what was served (`served`, `snapshots_served`, `clients`, `stats`). It reads no
clock and touches no socket: replayer/server.py moves the bytes, reads the clock and sleeps where an
action says so. What the venue's wire looks like (paths, control shapes, REST bodies) it asks a
`VenueWire` (harness/venues/wire.py).

Times: `now_ns` is the shell's monotonic clock, `wall_ns` its wall clock (epoch), both read once per
input. Durations the schedule names are in recorded time and scale with `speed` (at speed 0 they are
taken as recorded).

Behaviour, as the report and the checker rely on it:
- One replay clock for every client; it starts with the first subscription (by path or control).
- A recorded frame goes to every listening connection holding its stream, framed by the wire. A
  connection stops listening when a HalfOpen silenced it or once something is closing it.
- Fault tags go into `served` when the entry did something to a client: a tagged frame written, a
  Withheld frame a listener held the stream of, a Disconnect/Stall/HalfOpen that met a listener, the
  k-th refusal or REST answer under a RefuseHandshakes/RestBehaviour (the last tag for any beyond).
- A slow consumer: a connection over the ClientBufferLimit (its queue plus the kernel's, counted only
  while the kernel holds bytes back) for SLOW_CONSUMER_GRACE_NS is dropped.
- Limits (replayer/venue_limits.py): client messages per sliding second (close with the wire's code),
  streams per connection (the wire's error reply), connections (HTTP 503, or 1013 past a race), REST
  weight per IP and minute on the replay clock (429, then 418).
- A venue with an idle limit (the wire's `heartbeat.idle_close`, OKX's 30 s) closes a connection that
  sent it no message for that long, in wall time whatever the replay speed (the client pings by the
  wall clock). While a Stall pauses it or a HalfOpen silences it the silence is the fault's, not the client's.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from harness.level_match import SnapshotReach, reach_of
from harness.venues.wire import (
    Aggregator,
    ConnectionState,
    ControlRejected,
    HttpReply,
    Opened,
    Reply,
    SnapshotAsk,
    SnapshotAt,
    VenueWire,
)
from replayer.rate_limit import MessageRateLimit
from replayer.replay_data import ReplayData, VenueBooks
from replayer.request_weight import RequestWeightLimit
from replayer.timeline import (
    ClientBufferLimit,
    Disconnect,
    FaultTag,
    HalfOpen,
    RefuseHandshakes,
    RestBehaviour,
    Send,
    Stall,
    Tags,
    TimelineEntry,
    Withheld,
    clean_schedule,
)
from replayer.venue_actions import (
    Abort,
    Action,
    CheckBacklog,
    CheckIdle,
    ClockStarted,
    Close,
    HttpAnswer,
    Note,
    Pause,
    Resume,
    Wait,
    Write,
)
from replayer.venue_limits import BINARY_MESSAGE_CLOSE, TRY_AGAIN_LATER_CLOSE, VenueLimits
from replayer.venue_records import ClientRecord, ServerStats, SnapshotRecord

SERVED_LEVELS = 20
"""Levels per side of each served snapshot kept in `snapshots_served`: the depth the checker compares."""
SLOW_CONSUMER_GRACE_NS = 250_000_000
"""How long a client may stay over its buffer limit before it is dropped: a healthy reader that was
not scheduled for a moment drains in milliseconds, a slow one does not."""


@dataclass(slots=True)
class _Connection:
    """The venue's view of one open connection."""

    record: ClientRecord
    streams: dict[str, None]
    framing: str
    rate: MessageRateLimit | None
    first_depth: dict[str, int] = field(default_factory=dict)
    """Symbol -> clean index of the first book frame queued to this connection."""
    silent: bool = False
    over_limit_since: int | None = None
    heard_ns: int = 0
    """When the venue last received a message from the client (or the connection opened)."""

    @property
    def listening(self) -> bool:
        return not self.silent and self.record.close_cause is None


@dataclass(frozen=True, slots=True)
class _RestView:
    """What the wire's REST answers read (harness/venues/wire.py `RestVenue`)."""

    symbols: Sequence[str]
    specs: dict
    books: VenueBooks
    wall_ms: int


class VenueCore:
    """The fake venue's state and decisions; see the module docstring. One per server, one event loop."""

    def __init__(
        self,
        data: ReplayData,
        wire: VenueWire,
        *,
        limits: VenueLimits | None = None,
        schedule: Sequence[TimelineEntry] | None = None,
        speed: float = 1.0,
        started_ns: int = 0,
        keep_send_log: bool = True,
        rebase_time: bool = False,
        seed: int = 0,
        straddle: bool = True,
    ) -> None:
        """`started_ns` is the shell's monotonic clock at creation: REST weight minutes count from it.
        `rebase_time` moves recorded event times so the first frame reads as the session's start.
        `keep_send_log` keeps what the checker reads (each frame written, each REST depth answer); a venue
        nobody judges (`harness serve`) turns it off, or it grows for as long as the venue serves."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.data = data
        self.wire = wire
        self.limits = limits if limits is not None else VenueLimits.of(wire)
        self.schedule = schedule if schedule is not None else clean_schedule(data.frames)
        self.speed = speed
        self._started_ns = started_ns
        self._keep_send_log = keep_send_log
        self._seed, self._straddle = seed, straddle
        self.books = VenueBooks(data, seed=seed, straddle=straddle)
        self.weight = RequestWeightLimit(self.limits.rest_weight_per_minute)
        self.stats = ServerStats()
        self.served: set[FaultTag] = set()
        self.clients: dict[int, ClientRecord] = {}
        self.snapshots_served: list[SnapshotRecord] = []
        self.depths_served: dict[str, list[SnapshotReach]] = {}
        """Per symbol, how far each REST depth answer reached: what a client's book can know beyond it."""
        self.sessions: list[int] = []
        """Wall-clock ns at which each session's replay clock started (one, unless the shell loops)."""
        self.clock_start_ns: int | None = None
        self._open: dict[int, _Connection] = {}
        self._holders: dict[str, list[_Connection]] = {}
        """Stream -> the open connections holding it, in connection order: made when a frame of the stream
        is first sent, dropped whenever a connection opens, closes or changes its streams."""
        self._book_symbols: dict[str, str | None] = {}
        """Stream -> the symbol its book frames update, as the wire names it (asked once per stream)."""
        self._next_id = 1
        self._depth_requests = 0
        self._rebase_anchor = wire.first_event_time_ms(f.payload for f in data.frames) if rebase_time else None
        self._rebase_ms = 0
        self._derived = wire.derived_streams(data.streams)
        self._served_streams = frozenset(data.streams).union(*self._derived.values())
        self._aggregates: dict[str, Aggregator] = {}
        self._reset_faults()

    def _reset_faults(self) -> None:
        self._refusal: RefuseHandshakes | None = None
        self._refusals_left = 0
        self._refused = 0
        self._rest_mode: RestBehaviour | None = None
        self._rest_left = 0
        self._rest_answered = 0
        self.buffer_limit: int | None = None
        """The ClientBufferLimit in force (None: none); the shell reports backlogs only while one is."""
        self.paused = False
        """A Stall that answers no pings is running: every connection is paused."""

    @property
    def open_connections(self) -> int:
        return len(self._open)

    # The replay clock and sessions.

    def start_clock(self, now_ns: int, wall_ns: int) -> list[Action]:
        """Starts the replay clock now unless it runs (the first subscription calls this too)."""
        if self.clock_start_ns is not None:
            return []
        self.clock_start_ns = now_ns
        self.sessions.append(wall_ns)
        if self._rebase_anchor is not None:
            self._rebase_ms = wall_ns // 1_000_000 - self._rebase_anchor
        return [ClockStarted(now_ns), Note(f"session {len(self.sessions)}: replay clock started")]

    def due_ns(self, offset_ns: int) -> int:
        """When an entry at `offset_ns` is due on the monotonic clock (the clock must have started)."""
        if self.clock_start_ns is None:
            raise ValueError("the replay clock has not started")
        return self.clock_start_ns + int(offset_ns / self.speed)

    def new_session(self) -> None:
        """Back to the start of the schedule, the venue's book and fault state with it; the clock waits for
        the next subscription."""
        self.clock_start_ns = None
        self.books = VenueBooks(self.data, seed=self._seed, straddle=self._straddle)
        self._reset_faults()
        self._aggregates.clear()

    def wall_seconds(self, duration_ns: int) -> float:
        """A scheduled duration in wall time: scaled by speed like offsets, as recorded at speed 0."""
        return duration_ns / 1e9 if self.speed == 0 else duration_ns / self.speed / 1e9

    # Plain HTTP: REST, and handshakes refused.

    def http_request(self, target: str, upgrade: bool, ip: str, now_ns: int, wall_ns: int) -> HttpAnswer | None:
        """The answer to an HTTP request for `target` (path and query) from `ip`, or None to go on with
        the WebSocket handshake. `upgrade`: the request asks for a WebSocket."""
        if self.wire.is_rest(target):
            return self._rest(target, ip, now_ns, wall_ns)
        opened = self.wire.open_path(target)
        if isinstance(opened, HttpReply):
            return HttpAnswer(opened)
        if not upgrade:
            return None
        limit = self.limits.streams_per_connection
        if limit is not None and len(opened.streams) > limit:
            self.stats.streams_refused += 1
            return HttpAnswer(self.wire.error_reply(400))
        if self._refusals_left > 0:
            assert self._refusal is not None, "set together with _refusals_left"
            self._refusals_left -= 1
            self.stats.handshakes_refused += 1
            self._serve(self._refusal.tags, self._refused)
            self._refused += 1
            return HttpAnswer(self.wire.error_reply(self._refusal.status))
        if self.limits.max_connections is not None and len(self._open) >= self.limits.max_connections:
            self.stats.connections_refused += 1
            return HttpAnswer(self.wire.error_reply(503))
        return None

    def _rest(self, target: str, ip: str, now_ns: int, wall_ns: int) -> HttpAnswer:
        parts = urlsplit(target)
        route, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
        endpoint = self.wire.rest_endpoint(route)
        decision = self.weight.admit(ip, self.wire.request_weight(route, query), self._weight_clock_ns(now_ns))
        headers = self.wire.weight_headers(decision.used)
        if decision.status != 200:
            self.stats.rest_requests[f"{endpoint}:{decision.status}"] += 1
            wait_s = self.wall_seconds(decision.retry_after_ns or 0)
            ban_ends_ms = wall_ns // 1_000_000 + round(wait_s * 1000) if decision.status == 418 else None
            refused = self.wire.weight_refused(decision.status, self.weight.limit, wait_s, ban_ends_ms)
            return HttpAnswer(_with_headers(refused, headers))
        view = _RestView(self.data.symbols, self.data.specs, self.books, wall_ns // 1_000_000)
        answer = self.wire.rest(route, query, view)
        if isinstance(answer, SnapshotAsk):
            delivered = self._snapshot(answer, wall_ns // 1_000_000)
            if isinstance(delivered, HttpReply):
                answer = delivered
            else:
                self.stats.rest_requests[f"{endpoint}:200"] += 1
                reply, delay_s, record = delivered
                return HttpAnswer(_with_headers(reply, headers), delay_s, record)
        self.stats.rest_requests[f"{endpoint}:{answer.status}"] += 1
        return HttpAnswer(_with_headers(answer, headers))

    def _weight_clock_ns(self, now_ns: int) -> int:
        """The clock request-weight minutes run on: replay time, scaled by speed like every scheduled
        duration (at speed 8 a minute of weight lasts 7.5 s), so a client's snapshot fetches per recorded
        minute meet the limit they would meet live; wall time at speed 0."""
        elapsed = now_ns - self._started_ns
        return elapsed if self.speed == 0 else round(elapsed * self.speed)

    def _snapshot(self, ask: SnapshotAsk, wall_ms: int) -> HttpReply | tuple[HttpReply, float, SnapshotRecord]:
        """The depth answer for a valid request, from the book a RestBehaviour in force says."""
        behaviour = self._take_rest_behaviour()
        request = self._depth_requests
        self._depth_requests += 1
        delay_ns, shift = 0, 0
        if behaviour is not None:
            self.stats.rest_faults[behaviour.mode] += 1
            if behaviour.mode == "error":
                return self.wire.error_reply(behaviour.status)
            if behaviour.mode == "stale":
                shift = -behaviour.lag_frames
            elif behaviour.mode == "too_new":
                shift = behaviour.lag_frames
            elif behaviour.mode == "slow":
                delay_ns = behaviour.delay_ns
        symbol = ask.symbol
        if behaviour is not None and behaviour.mode == "barely_stale":
            first = self._newest_first_depth(symbol)
            book = self.books.snapshot_before(symbol, first, behaviour.lag_frames, request)
        else:
            book = self.books.snapshot(symbol, request, shift)
        bids, asks = book.bids(ask.limit), book.asks(ask.limit)
        served_limit = ask.limit if ask.limit is not None else len(bids) + len(asks) + 1  # the whole book
        if self._keep_send_log:
            reach = reach_of(book.last_update_id, served_limit, bids, asks)
            self.depths_served.setdefault(symbol, []).append(reach)
        at = self._snapshot_at(symbol, book.last_update_id, wall_ms)
        body = self.wire.snapshot_body(book.last_update_id, bids, asks, at)
        record = SnapshotRecord(
            symbol, book.last_update_id, 0, tuple(bids[:SERVED_LEVELS]), tuple(asks[:SERVED_LEVELS])
        )
        return HttpReply(200, body), self.wall_seconds(delay_ns) if delay_ns else 0.0, record

    def _snapshot_at(self, symbol: str, update_id: int, wall_ms: int) -> SnapshotAt | None:
        """The recorded depth events a REST answer of `symbol` at `update_id` stands at (wire.SnapshotAt):
        the first depth frame whose last id reaches `update_id` (the last frame, past them all), and the
        one at the current position; None for a symbol with no depth frame. Their times move as the
        frames sent do; before a subscription starts the clock, as they would if it started now."""
        indexes = self.data.depth_indexes.get(symbol)
        current = self.books.book(symbol)
        if not indexes or current is None:
            return None
        frames = self.data.frames
        shift = self._rebase_ms
        if self._rebase_anchor is not None and self.clock_start_ns is None:
            shift = wall_ms - self._rebase_anchor

        def event_at(target: int) -> bytes:
            at = bisect_left(indexes, target, key=lambda index: frames[index].last_update_id or 0)
            payload = frames[indexes[min(at, len(indexes) - 1)]].payload
            return self.wire.shift_times(payload, shift) if shift else payload

        return SnapshotAt(event_at(update_id), event_at(current.last_update_id))

    def snapshot_delivered(self, snapshot: SnapshotRecord, now_ns: int) -> None:
        """A depth answer went out at `now_ns` (after its delay, if slow): the checker's record of it."""
        if self._keep_send_log:
            record = SnapshotRecord(snapshot.symbol, snapshot.last_update_id, now_ns, snapshot.bids, snapshot.asks)
            self.snapshots_served.append(record)

    def _newest_first_depth(self, symbol: str) -> int | None:
        """The first book frame of `symbol` queued to the newest open connection holding its stream
        (None: nothing queued to it yet). Every client is on loopback, one IP, so the newest is the
        requester's as far as the venue can tell."""
        wire = self.wire
        for conn_id in sorted(self._open, reverse=True):
            conn = self._open[conn_id]
            if any(wire.is_book_stream(name) and wire.symbol_of(name) == symbol for name in conn.streams):
                return conn.first_depth.get(symbol)
        return None

    def _take_rest_behaviour(self) -> RestBehaviour | None:
        if self._rest_mode is None or self._rest_left <= 0:
            return None
        self._rest_left -= 1
        self._serve(self._rest_mode.tags, self._rest_answered)
        self._rest_answered += 1
        return self._rest_mode

    # Connections.

    def open(self, path: str, peer: tuple | None, now_ns: int, wall_ns: int) -> tuple[int, list[Action]]:
        """A WebSocket connection for `path` completed its handshake: its id, and what to do first."""
        opened = self.wire.open_path(path)
        if not isinstance(opened, Opened):
            raise ValueError(f"{path!r} is not a WebSocket path this venue serves: http_request refuses it")
        rate = MessageRateLimit(self.limits.messages_per_second) if self.limits.messages_per_second else None
        conn_id = self._next_id
        self._next_id += 1
        record = ClientRecord(conn_id, path, peer, now_ns)
        conn = _Connection(record, dict.fromkeys(opened.streams), opened.framing, rate, heard_ns=now_ns)
        self.clients[conn_id] = record
        self._open[conn_id] = conn
        self._holders.clear()
        self.stats.clients_connected += 1
        self.stats.clients_open += 1
        actions: list[Action] = [Note(f"connection {conn_id} from {_peer(peer)}: {path}")]
        limit = self.limits.max_connections
        if limit is not None and len(self._open) > limit:
            self.stats.connections_refused += 1
            record.close_cause = "too_many_connections"
            actions.append(Close(conn_id, *TRY_AGAIN_LATER_CLOSE, discard=True))
            return conn_id, actions
        if self.paused:
            actions.append(Pause(conn_id))
        idle = self.wire.heartbeat.idle_close
        if idle is not None:
            actions.append(CheckIdle(conn_id, now_ns + round(idle.after_s * 1e9)))
        actions += self._subscribed(conn, list(conn.streams), now_ns, wall_ns)
        return conn_id, actions

    def receive(self, conn_id: int, message: str | bytes, now_ns: int, wall_ns: int) -> list[Action]:
        """A client message (text as str, binary as bytes). A Close with `discard` in the answer means the
        venue cut the client off: read nothing more from it."""
        conn = self._open[conn_id]
        conn.heard_ns = now_ns
        if conn.rate is not None and not conn.rate.admit(now_ns):
            self.stats.too_many_requests += 1
            conn.record.close_cause = "too_many_requests"
            return [Close(conn_id, *self.wire.limits.too_many_messages_close, discard=True)]
        if isinstance(message, bytes):
            conn.record.close_cause = "binary_message"
            return [Close(conn_id, *BINARY_MESSAGE_CLOSE, discard=True)]
        before = ConnectionState(tuple(conn.streams), conn.framing, conn_id, self._served_streams)
        control = self.wire.parse_control(message, before)
        if isinstance(control, ControlRejected):
            return [self._reply(conn_id, control.reply)]
        new: list[str] = []
        if control.kind == "subscribe":
            new = [name for name in dict.fromkeys(control.streams) if name not in conn.streams]
            limit = self.limits.streams_per_connection
            if limit is not None and len(conn.streams) + len(new) > limit:
                self.stats.streams_refused += 1
                refusal = self.wire.render_limit_error(control, "streams_per_connection", limit, before)
                return [self._reply(conn_id, refusal)]
            conn.streams.update(dict.fromkeys(new))
            self._holders.clear()
        elif control.kind == "unsubscribe":
            for name in control.streams:
                conn.streams.pop(name, None)
            self._holders.clear()
        elif control.kind == "set_framing" and control.framing is not None:
            conn.framing = control.framing
        state = ConnectionState(tuple(conn.streams), conn.framing, conn_id, self._served_streams)
        actions: list[Action] = [self._reply(conn_id, reply) for reply in self.wire.render_control(control, state)]
        actions += self._subscribed(conn, new, now_ns, wall_ns)
        return actions

    def _subscribed(self, conn: _Connection, streams: list[str], now_ns: int, wall_ns: int) -> list[Action]:
        """What follows `conn` starting to hold `streams`: log lines, in-stream snapshots, the clock."""
        actions: list[Action] = []
        if streams:
            conn_id = conn.record.client_id
            actions.append(Note(f"connection {conn_id} subscribed to {', '.join(streams)}"))
            missing = [name for name in streams if name not in self._served_streams]
            if missing:
                actions.append(
                    Note(
                        f"connection {conn_id}: {', '.join(missing)} not in the recording, so it gets nothing "
                        f"there; recorded: {', '.join(self.data.streams)}"
                    )
                )
            for stream in streams:
                snapshot = self.wire.stream_snapshot(stream, self.books, wall_ns // 1_000_000)
                if snapshot is not None:
                    actions.append(Write(conn_id, self.wire.frame(stream, snapshot, conn.framing)))
                    self._stream_snapshot_served(stream, now_ns)
        if conn.streams:
            actions += self.start_clock(now_ns, wall_ns)
        return actions

    def _stream_snapshot_served(self, stream: str, now_ns: int) -> None:
        """An in-stream snapshot rendered from the venue's book starts a client's chain, as a REST answer
        does: the checker's record of it (the book it was rendered from, at its last id)."""
        symbol = self.wire.symbol_of(stream)
        book = self.books.book(symbol) if symbol is not None and self._keep_send_log else None
        if symbol is not None and book is not None:
            bids, asks = tuple(book.bids(SERVED_LEVELS)), tuple(book.asks(SERVED_LEVELS))
            self.snapshots_served.append(SnapshotRecord(symbol, book.last_update_id, now_ns, bids, asks))

    def idle(self, conn_id: int, now_ns: int) -> list[Action]:
        """A CheckIdle came due: closes `conn_id` with the wire's `idle_close` if the venue has heard
        nothing from it for that long, else says when to look again."""
        conn = self._open.get(conn_id)
        rule = self.wire.heartbeat.idle_close
        if conn is None or rule is None or conn.record.close_cause is not None:
            return []
        after_ns = round(rule.after_s * 1e9)
        if self.paused or conn.silent:
            conn.heard_ns = now_ns  # the fault holds the client's messages back, not the client
        elif now_ns - conn.heard_ns >= after_ns:
            conn.record.close_cause = "idle"
            return [
                Note(f"connection {conn_id}: no message for {rule.after_s:g} s, closed ({rule.code})"),
                Close(conn_id, rule.code, rule.reason, discard=True),
            ]
        return [CheckIdle(conn_id, conn.heard_ns + after_ns)]

    def _reply(self, conn_id: int, reply: Reply) -> Write:
        return Write(conn_id, reply.payload, reply.text)

    def closed(self, conn_id: int, now_ns: int) -> list[Action]:
        """The connection is gone (whoever closed it)."""
        conn = self._open.pop(conn_id)
        self._holders.clear()
        self.stats.clients_open -= 1
        conn.record.closed_mono_ns = now_ns
        conn.record.close_cause = conn.record.close_cause or "client"
        return [Note(f"connection {conn_id} closed ({conn.record.close_cause})")]

    def written(self, conn_id: int, writes: Sequence[Write], write_ns: int) -> None:
        """`writes`, recorded frames queued to `conn_id` (each with its `entry`), were handed to its socket
        at `write_ns`, in this order: one call per socket write, not per frame."""
        served = self.served
        keep = self._keep_send_log
        rows = []
        size = 0
        for write in writes:
            entry = write.entry
            if entry is None:
                raise ValueError("written() takes recorded frames: Writes with their entry")
            size += len(write.payload)
            if entry.tags:
                served.update(entry.tags)
            if keep:
                frame = entry.frame
                rows.append(
                    (frame.index, frame.stream, frame.last_update_id, write.intended_mono_ns, write_ns, entry.fault)
                )
        if keep:
            self.clients[conn_id].sends.extend_rows(rows)
        self.stats.frames_sent += len(writes)
        self.stats.bytes_sent += size

    def stopping(self) -> None:
        """The server is shutting down: connections still open close for that reason."""
        for conn in self._open.values():
            conn.record.close_cause = conn.record.close_cause or "server_stop"

    def release_silenced(self) -> list[Action]:
        """Aborts every connection a HalfOpen silenced: the run is over, so the socket may close now."""
        actions: list[Action] = []
        for conn_id, conn in self._open.items():
            if conn.silent:
                conn.record.close_cause = conn.record.close_cause or "half_open"
                actions.append(Abort(conn_id))
        return actions

    # Slow consumers.

    @property
    def backlog_limit(self) -> int | None:
        """What one client's backlog may reach now: a ClientBufferLimit's while one is in force, else the
        venue's own `max_backlog_bytes` (None: no limit)."""
        return self.buffer_limit if self.buffer_limit is not None else self.limits.max_backlog_bytes

    def backlog(
        self, conn_id: int, queued: int, in_kernel: int, now_ns: int, since_ns: int | None = None
    ) -> list[Action]:
        """`conn_id` has `queued` bytes waiting for its writer and `in_kernel` in the socket's buffer: drops it
        if it stayed over `backlog_limit` for the grace period. Call after each frame queued to it while a
        limit is in force, and at each CheckBacklog (passing its `since_ns`)."""
        conn = self._open.get(conn_id)
        limit = self.backlog_limit
        if conn is None or not conn.listening or limit is None:
            return []
        if since_ns is not None and conn.over_limit_since != since_ns:
            return []
        if not (in_kernel > 0 and queued + in_kernel > limit):
            conn.over_limit_since = None
            return []
        if conn.over_limit_since is None:
            conn.over_limit_since = now_ns
            return [CheckBacklog(conn_id, now_ns + SLOW_CONSUMER_GRACE_NS, now_ns)]
        ends = conn.over_limit_since + SLOW_CONSUMER_GRACE_NS
        if now_ns < ends:  # a timer may fire a little early: look again when the grace really ends
            return [] if since_ns is None else [CheckBacklog(conn_id, ends, since_ns)]
        self.stats.slow_consumers_dropped += 1
        conn.record.close_cause = "slow_consumer"
        return [Abort(conn_id)]

    # The schedule.

    def listening_to(self, stream: str) -> list[int]:
        return [conn.record.client_id for conn in self._holding(stream) if conn.listening]

    def _holding(self, stream: str) -> list[_Connection]:
        """The open connections holding `stream` (listening or not), in connection order."""
        holders = self._holders.get(stream)
        if holders is None:
            holders = self._holders[stream] = [conn for conn in self._open.values() if stream in conn.streams]
        return holders

    def entry(self, entry: TimelineEntry, intended_ns: int) -> list[Action]:
        """The schedule's next entry is due (`intended_ns`: when it was meant to act)."""
        self.stats.entries_walked += 1
        if isinstance(entry, Send):
            self.books.advance_to(entry.frame.index)
            return self._send(entry, intended_ns)
        if isinstance(entry, Withheld):
            if self.listening_to(entry.stream):
                self._serve(entry.tags)
        elif isinstance(entry, Disconnect):
            return self._disconnect(entry)
        elif isinstance(entry, Stall):
            return self._stall(entry)
        elif isinstance(entry, HalfOpen):
            return self._silence(entry)
        elif isinstance(entry, RefuseHandshakes):
            self._refusal, self._refusals_left, self._refused = entry, entry.count, 0
        elif isinstance(entry, RestBehaviour):
            normal = entry.mode == "normal"
            self._rest_mode, self._rest_left = (None, 0) if normal else (entry, entry.count)
            self._rest_answered = 0
        elif isinstance(entry, ClientBufferLimit):
            self.buffer_limit = entry.max_bytes if entry.max_bytes > 0 else None
        return []

    def finish(self) -> list[Action]:
        """The schedule has been walked to its end: the books reach the recording's end, and derived
        streams send what they still held."""
        self.books.advance_all()
        actions: list[Action] = []
        for stream, aggregate in self._aggregates.items():
            actions += self._derived_frames(stream, aggregate.flush())
        return actions

    def _send(self, entry: Send, intended: int) -> list[Action]:
        """A Write per listening connection holding the frame's stream. The walk's hot path (a call per
        frame): no list of recipients, and the wire frames the payload again only where a connection's
        framing differs from the one before it."""
        frame = entry.frame
        stream = frame.stream
        payload = entry.payload
        if self._rebase_ms:
            payload = self.wire.shift_times(payload, self._rebase_ms)
        actions: list[Action] = self._aggregate(stream, entry.offset_ns, payload) if stream in self._derived else []
        symbol = None
        if frame.first_update_id is not None:
            if stream not in self._book_symbols:
                self._book_symbols[stream] = self.wire.symbol_of(stream)
            symbol = self._book_symbols[stream]
        text = not entry.binary
        framing: str | None = None
        out = payload
        for conn in self._holding(stream):
            if not conn.listening:
                continue
            if symbol is not None:
                conn.first_depth.setdefault(symbol, frame.index)
            if conn.framing != framing:
                framing = conn.framing
                out = self.wire.frame(stream, payload, framing)
            actions.append(Write(conn.record.client_id, out, text, entry, intended))
        return actions

    def _aggregate(self, stream: str, offset_ns: int, payload: bytes) -> list[Action]:
        """Feeds the streams derived from `stream` that some client holds (computed only when held)."""
        actions: list[Action] = []
        for derived in self._derived[stream]:
            aggregate = self._aggregates.get(derived)
            if aggregate is None:
                if not any(conn.listening for conn in self._holding(derived)):
                    continue
                aggregate = self._aggregates[derived] = self.wire.aggregator(derived)
            actions += self._derived_frames(derived, aggregate.add(offset_ns, payload))
        return actions

    def _derived_frames(self, stream: str, payloads: list[bytes]) -> list[Action]:
        """Derived frames go out like control replies: not recorded frames, so not in the send log."""
        actions: list[Action] = []
        for payload in payloads:
            for conn_id in self.listening_to(stream):
                framing = self._open[conn_id].framing
                actions.append(Write(conn_id, self.wire.frame(stream, payload, framing)))
        return actions

    def _listening(self) -> list[int]:
        """The open connections that still hear the venue: not silenced by a HalfOpen, and not already
        being closed (a Disconnect's close frame queued, a slow or rate-limited client cut off)."""
        return [conn_id for conn_id, conn in self._open.items() if conn.listening]

    def _serve(self, tags: Tags, k: int | None = None) -> None:
        """Records that an entry's fault took effect: all its tags, or the k-th (the last one beyond)."""
        if not tags:
            return
        if k is None:
            self.served.update(tags)
        else:
            self.served.add(tags[min(k, len(tags) - 1)])

    def _disconnect(self, entry: Disconnect) -> list[Action]:
        self.stats.disconnects[entry.mode] += 1
        affected = self._listening()
        if affected:
            self._serve(entry.tags)
        actions: list[Action] = []
        for conn_id in affected:
            self._open[conn_id].record.close_cause = f"disconnect:{entry.mode}"
            if entry.mode == "close":
                actions.append(Close(conn_id, entry.code, entry.reason))
            else:
                actions.append(Abort(conn_id, reset=entry.mode == "reset"))
        return actions

    def _stall(self, entry: Stall) -> list[Action]:
        """Holds the schedule; without pings answered, every connection is paused until `stall_ended`."""
        listening = self._listening()
        if listening:
            self._serve(entry.tags)
        actions: list[Action] = []
        if not entry.answer_pings:
            self.paused = True
            actions += [Pause(conn_id) for conn_id in listening]
        actions.append(Wait(self.wall_seconds(entry.duration_ns)))
        return actions

    def stall_ended(self) -> list[Action]:
        """The Stall's time is over (or the walker was stopped during it): paused connections resume."""
        if not self.paused:
            return []
        self.paused = False
        return [Resume(conn_id) for conn_id in self._listening()]

    def _silence(self, entry: HalfOpen) -> list[Action]:
        """Every connection listening now hears nothing more and says nothing more, for good."""
        affected = self._listening()
        if affected:
            self._serve(entry.tags)
        for conn_id in affected:
            conn = self._open[conn_id]
            conn.silent = True
            conn.over_limit_since = None
            self.stats.half_open_connections += 1
        return [Pause(conn_id, for_good=True) for conn_id in affected]


def _with_headers(reply: HttpReply, headers: tuple[tuple[str, str], ...]) -> HttpReply:
    return HttpReply(reply.status, reply.body, (*headers, *reply.headers), reply.content_type)


def _peer(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)
