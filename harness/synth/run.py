"""`harness synth`: the synthetic market, as the recorder would have captured it from a venue.

`generate_events` is the pure core: seeded market events in, the recorder's rows out (no clock, no
files). It plays both ends of the wire, the venue's bytes written by its dialect's `SynthEncoder`
(harness/venues/). The venue batches book changes into book frames every `window_ns` (Binance
spot: `@100ms` depthUpdates; USD-M: `@0ms`, 50 ms here, with `pu` linking each to the last; net
change per level, contiguous ids, skipped when nothing changed) and sends a trade frame as each
trade happens; the recorder, one combined-stream connection, receives them after a
seeded network delay, in send order, and after the first depth frame fetches the REST snapshot a
syncing client needs, whose book is the venue's at the moment the request reaches it. Timestamps
are a fixed start plus simulated offsets, so a seed always gives the same bytes. Several symbols are
several such markets, each with its own seed (the first keeps the given one), merged in receive order
onto one combined-stream connection, each snapshot on a REST connection of its own.

With a `rate` (`harness synth --rate`), each symbol's market is scaled so its frames come to about
`rate` a second, a busy real symbol's pace for benchmarks; where the venue's encoder writes a best
bid/ask stream (`ticker_stream`, Binance spot's `@bookTicker`) it streams that too, a frame whenever
the best bid or ask, or its size, changes, as Binance's real-time stream does. Without a rate the
output is what it always was.

`write_synthetic_recording` and `synthesize` are the file shell around it.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from harness import __version__
from harness.book_events import DepthDelta, DepthSnapshot
from harness.errors import HarnessError
from harness.synth.market import BookChange, MarketParams, MarketSimulator, Trade
from harness.venues.dialect import SynthEncoder, SynthTrade, VenueDialect
from harness.venues.registry import dialect as venue_dialect
from recorder.format import EventKind, RecordedEvent, RecordingMeta
from recorder.segments import RecordingWriter

VENUE = "binance-spot"
"""The venue `generate_events` and `write_synthetic_recording` speak unless told."""
WALL_START_NS = 1_704_067_200_000_000_000
"""2024-01-01T00:00:00Z: the recorder's first timestamp, before the connection opens."""
MONO_START_NS = 86_400_000_000_000
"""A monotonic clock on a machine that has been up for a day."""
WS_CONN_ID = 1
REST_CONN_ID = 2
CALIBRATION_S = 30.0
"""How many orders a `--rate` probe simulates: this many seconds of the symbol's own market."""
CALIBRATION_MIN_S = 10.0
CALIBRATION_PROBES = 3


@dataclass(slots=True)
class SynthStats:
    """What a run produced; filled in as its events are consumed."""

    depth_frames: int = 0
    trades: int = 0
    tickers: int = 0
    first_update_id: int | None = None
    last_update_id: int | None = None
    snapshot_update_id: int | None = None
    events: int = 0


class _Network:
    """Seeded delays, in ns, on their own random stream so the market does not shift with them."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"harness.synth.network:{seed}")

    def _ms(self, base: float, jitter: float) -> int:
        return int((base + self._rng.expovariate(1.0 / jitter)) * 1e6)

    def handshake(self) -> int:
        return self._ms(18.0, 6.0)

    def one_way(self) -> int:
        return self._ms(1.2, 0.4)

    def back_to_back(self) -> int:
        return self._rng.randrange(400, 2_000)

    def window_phase(self, window_ns: int) -> int:
        return self._rng.randrange(1, window_ns + 1)

    def depth_publish(self) -> int:
        return self._ms(0.3, 0.8)

    def trade_publish(self) -> int:
        return self._ms(0.2, 0.5)

    def client_reaction(self) -> int:
        return self._ms(0.1, 0.3)

    def rest_leg(self) -> int:
        return self._ms(12.0, 4.0)


class _Session:
    """One recording's worth of venue and recorder, stepped by the market's own events."""

    def __init__(
        self,
        venue: VenueDialect,
        encoder: SynthEncoder,
        seconds: float,
        seed: int,
        params: MarketParams | None = None,
        book_ticker: bool = False,
    ) -> None:
        spec = encoder.market
        self.venue = venue
        self.encoder = encoder
        self.spec = spec
        self.symbol = spec.symbol
        self.end_ns = round(seconds * 1e9)
        self.stats = SynthStats()
        self._market = MarketSimulator(spec, seed, params)
        self._net = _Network(seed)
        self.depth_stream = encoder.book_stream
        self.trade_stream = encoder.trade_stream
        # An optional encoder capability, not part of SynthEncoder: only `--rate` asks for it.
        self.ticker_stream: str | None = getattr(encoder, "ticker_stream", None) if book_ticker else None
        self.streams = (self.depth_stream, self.trade_stream) + ((self.ticker_stream,) if self.ticker_stream else ())
        self._top: tuple[int, int, int, int] | None = None
        self._ticker_sent_ns = 0
        policy = venue.capture_policy()
        self.ws_url = policy.ws_url(venue.live_ws_url, self.streams)
        self.rest_url = encoder.snapshot_url(venue.live_rest_url)
        self._stream_snapshot_pending = self.rest_url is None
        """A venue whose snapshot travels on the stream sends it first, once the subscription is in."""
        bids, asks = self._market.book()
        self._bids = dict(bids)
        self._asks = dict(asks)
        self._applied_id = self._market.last_update_id
        self._published_id = self._applied_id
        self._window_ns = encoder.window_ns
        self._window_end = self._net.window_phase(self._window_ns)
        self._window_bids: dict[int, int] = {}
        self._window_asks: dict[int, int] = {}
        self._window_first: int | None = None
        self._outgoing: list[tuple[int, int, str, bytes]] = []
        self._recorded: list[tuple[int, int, RecordedEvent]] = []
        self._order = 0
        self._subscribed_ns = self._net.handshake()
        self._last_recv_ns = self._subscribed_ns + self._net.one_way()
        self.opened_ns = self._last_recv_ns
        self.subscribe = policy.subscribe
        if self.subscribe is not None:
            # Subscribed by a message sent once the connection is open: in at the venue a trip later.
            self._subscribed_ns = self.opened_ns + self._net.one_way()
        self._snapshot_requested = False
        self._snapshot_at: int | None = None
        self._snapshot_body: bytes | None = None
        self._first_depth_id: int | None = None

    def events(self) -> Iterator[RecordedEvent]:
        self._record(self.opened_ns, EventKind.WS_OPEN, WS_CONN_ID, self.ws_url)
        for message in self.subscribe_messages(self.streams):
            self._record(self.opened_ns, EventKind.WS_SEND, WS_CONN_ID, self.ws_url, payload=message)
        for event in self._market.run(self.end_ns):
            yield from self._advance(event.time_ns)
            if isinstance(event, BookChange):
                self._apply(event)
            else:
                self._send_trade(event)
        yield from self._advance(self.end_ns)
        close_ns = self.end_ns + self._net.one_way() + self._net.one_way()
        self._record(close_ns, EventKind.WS_CLOSE, WS_CONN_ID, self.ws_url, status=1000, reason="")
        yield from self._release(close_ns + 1)

    def subscribe_messages(self, streams: Sequence[str]) -> list[bytes]:
        """What the recorder sends to subscribe to `streams` (nothing where the URL names them)."""
        if self.subscribe is None:
            return []
        return [m.encode() if isinstance(m, str) else m for m in self.subscribe(streams).messages()]

    def _advance(self, now_ns: int) -> Iterator[RecordedEvent]:
        """Everything due strictly before `now_ns`: no later market event can change it any more."""
        if self._stream_snapshot_pending and now_ns > self._subscribed_ns:
            while self._window_end <= self._subscribed_ns:
                self._publish_window()
            self._send_stream_snapshot()
        while self._window_end <= now_ns:
            self._publish_window()
        while self._outgoing and self._outgoing[0][0] < now_ns:
            send_ns, _, stream, payload = heapq.heappop(self._outgoing)
            self._deliver(send_ns, stream, payload)
        if self._snapshot_at is not None and self._snapshot_body is None and now_ns > self._snapshot_at:
            self._snapshot_body = self._snapshot()
        yield from self._release(min(now_ns, self.end_ns))

    def _release(self, before_ns: int) -> Iterator[RecordedEvent]:
        while self._recorded and self._recorded[0][0] < before_ns:
            _, _, event = heapq.heappop(self._recorded)
            if event.kind is EventKind.HTTP_RESPONSE:
                assert self._snapshot_body is not None, "taken at snapshot time, before its response is due"
                event = replace(event, payload=self._snapshot_body)
            elif event.stream == self.depth_stream:
                self._count_depth(event.payload)
            elif event.stream == self.trade_stream:
                self.stats.trades += 1
            elif self.ticker_stream is not None and event.stream == self.ticker_stream:
                self.stats.tickers += 1
            yield replace(event, seq=self.stats.events)
            self.stats.events += 1

    def _apply(self, change: BookChange) -> None:
        book, window = (self._bids, self._window_bids) if change.is_bid else (self._asks, self._window_asks)
        if change.size:
            book[change.price] = change.size
        else:
            book.pop(change.price, None)
        window[change.price] = change.size
        if self._window_first is None:
            self._window_first = change.update_id
        self._applied_id = change.update_id
        if self.ticker_stream is not None:
            self._tick(change)

    def _tick(self, change: BookChange) -> None:
        """A best bid/ask frame when the best bid or ask, or its size, moved, with the book's update id."""
        bid, bid_size = self._market.bids.peekitem(-1)
        ask, ask_size = self._market.asks.peekitem(0)
        top = (bid, bid_size, ask, ask_size)
        if top == self._top:
            return
        self._top = top
        assert self.ticker_stream is not None
        frame = self.encoder.ticker_frame(  # type: ignore[attr-defined]
            change.update_id, self._price(bid), self._size(bid_size), self._price(ask), self._size(ask_size)
        )
        # One stream is published in order: a ticker never overtakes the one before it.
        self._ticker_sent_ns = max(change.time_ns + self._net.trade_publish(), self._ticker_sent_ns)
        self._push_outgoing(self._ticker_sent_ns, self.ticker_stream, frame)

    def _publish_window(self) -> None:
        end = self._window_end
        self._window_end += self._window_ns
        if self._window_first is None or self._stream_snapshot_pending:
            self._clear_window()
            return
        send_ns = end + self._net.depth_publish()
        delta = DepthDelta(
            symbol=self.symbol,
            first_update_id=self._window_first,
            last_update_id=self._applied_id,
            bids=self._levels(sorted(self._window_bids.items(), reverse=True)),
            asks=self._levels(sorted(self._window_asks.items())),
            prev_last_update_id=self._published_id,
            event_time_ms=(WALL_START_NS + send_ns) // 1_000_000,
        )
        self._published_id = self._applied_id
        self._clear_window()
        self._push_outgoing(send_ns, self.depth_stream, self.encoder.book_frame(delta))

    def _clear_window(self) -> None:
        self._window_bids = {}
        self._window_asks = {}
        self._window_first = None

    def _send_stream_snapshot(self) -> None:
        """The venue's book as the subscription comes in, sent before any change after it; the changes
        buffered so far are in it."""
        self._stream_snapshot_pending = False
        send_ns = self._subscribed_ns + self._net.depth_publish()
        self._snapshot_at = self._subscribed_ns
        payload = self._snapshot_body = self._snapshot()
        self._published_id = self._applied_id
        self._clear_window()
        self._push_outgoing(send_ns, self.depth_stream, payload)

    def _send_trade(self, trade: Trade) -> None:
        send_ns = trade.time_ns + self._net.trade_publish()
        data = SynthTrade(
            trade_id=trade.trade_id,
            price=self._price(trade.price),
            quantity=self._size(trade.quantity),
            trade_time_ms=(WALL_START_NS + trade.time_ns) // 1_000_000,
            event_time_ms=(WALL_START_NS + send_ns) // 1_000_000,
            buyer_is_maker=trade.buyer_is_maker,
        )
        self._push_outgoing(send_ns, self.trade_stream, self.encoder.trade_frame(data))

    def _push_outgoing(self, send_ns: int, stream: str, payload: bytes) -> None:
        self._order += 1
        heapq.heappush(self._outgoing, (send_ns, self._order, stream, payload))

    def _deliver(self, send_ns: int, stream: str, payload: bytes) -> None:
        """One frame reaches the recorder: in send order, after a delay; before subscribing, nothing."""
        if send_ns < self._subscribed_ns:
            return
        recv_ns = max(send_ns + self._net.one_way(), self._last_recv_ns + self._net.back_to_back())
        self._last_recv_ns = recv_ns
        self._record(recv_ns, EventKind.WS_RECV, WS_CONN_ID, self.ws_url, stream=stream, payload=payload)
        if stream == self.depth_stream and not self._snapshot_requested and self.rest_url is not None:
            self._snapshot_requested = True
            self._request_snapshot(recv_ns, self.rest_url)

    def _count_depth(self, payload: bytes) -> None:
        ids = self.venue.chain_ids(self.depth_stream, payload)
        assert ids is not None, "the encoder's own book frame"
        stats = self.stats
        stats.depth_frames += 1
        if stats.first_update_id is None:
            stats.first_update_id = ids.first_id
        stats.last_update_id = ids.last_id

    def _request_snapshot(self, first_depth_ns: int, rest_url: str) -> None:
        """Recorded only when the response arrives before the recorder stops, so a request never dangles."""
        request_ns = first_depth_ns + self._net.client_reaction()
        snapshot_ns = request_ns + self._net.rest_leg()
        response_ns = snapshot_ns + self._net.rest_leg()
        if response_ns >= self.end_ns:
            return
        self._snapshot_at = snapshot_ns
        self._record(request_ns, EventKind.HTTP_REQUEST, REST_CONN_ID, rest_url, reason="GET")
        self._record(response_ns, EventKind.HTTP_RESPONSE, REST_CONN_ID, rest_url, status=200, reason="OK")

    def _snapshot(self) -> bytes:
        self.stats.snapshot_update_id = self._applied_id
        snapshot = DepthSnapshot(
            symbol=self.symbol,
            last_update_id=self._applied_id,
            bids=self._levels(sorted(self._bids.items(), reverse=True)),
            asks=self._levels(sorted(self._asks.items())),
        )
        assert self._snapshot_at is not None, "taken when the request reaches the venue"
        return self.encoder.snapshot_payload(snapshot, (WALL_START_NS + self._snapshot_at) // 1_000_000)

    def _levels(self, levels: list[tuple[int, int]]) -> list[tuple[str, str]]:
        return [(self._price(price), self._size(size)) for price, size in levels]

    def _price(self, ticks: int) -> str:
        return self.encoder.price(ticks * self.spec.tick_units)

    def _size(self, lots: int) -> str:
        return self.encoder.size(lots * self.spec.lot_units)

    def _record(
        self,
        at_ns: int,
        kind: EventKind,
        conn_id: int,
        url: str,
        *,
        stream: str | None = None,
        payload: bytes = b"",
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        if at_ns >= self.end_ns and kind is not EventKind.WS_CLOSE:
            return
        event = RecordedEvent(
            seq=-1,
            conn_id=conn_id,
            kind=kind,
            recv_wall_ns=WALL_START_NS + at_ns,
            recv_mono_ns=MONO_START_NS + at_ns,
            url=url,
            stream=stream,
            payload=payload,
            status=status,
            reason=reason,
        )
        self._order += 1
        heapq.heappush(self._recorded, (at_ns, self._order, event))


def _sessions(
    symbols: str | Sequence[str], seconds: float, seed: int, venue: str, rate: float | None = None
) -> list[_Session]:
    """One session per symbol; the first keeps `seed`, the others get seeds derived from it and their
    symbol, so one symbol's market and timings never copy another's."""
    dialect = venue_dialect(venue)
    if not (math.isfinite(seconds) and seconds > 0):
        raise HarnessError(f"seconds must be a positive number, not {seconds}")
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise HarnessError(f"rate must be a positive number of frames per second, not {rate}")
    sessions = []
    for i, name in enumerate(_symbol_list(symbols)):
        own_seed = seed if i == 0 else _derived_seed(seed, name)
        params = None if rate is None else _paced_market(dialect, name, own_seed, rate)
        encoder = dialect.synth_encoder(name)
        sessions.append(_Session(dialect, encoder, seconds, own_seed, params, book_ticker=rate is not None))
    return sessions


def _paced_market(dialect: VenueDialect, symbol: str, seed: int, rate: float) -> MarketParams:
    """The symbol's market with its order rate scaled so its frames come to about `rate` a second.

    Book frames come at most once a window; trades and ticker frames grow with the order rate, though
    not in proportion (a busier book's touch moves less per order), so the rate is found by probing:
    each probe runs as many orders as CALIBRATION_S of the market's own pace (and at least
    CALIBRATION_MIN_S, so bursts are in it) at the current guess, and rescales the guess by how far its
    frames fell from `rate`.
    """
    params = dialect.synth_encoder(symbol).market.market
    orders = CALIBRATION_S * params.order_rate
    for _ in range(CALIBRATION_PROBES):
        seconds = max(orders / params.order_rate, CALIBRATION_MIN_S)
        probe = _Session(dialect, dialect.synth_encoder(symbol), seconds, seed, params, book_ticker=True)
        for _ in probe.events():
            pass
        stats = probe.stats
        per_order = max(stats.trades + stats.tickers, 1) / (seconds * params.order_rate)
        depth_per_s = stats.depth_frames / seconds
        params = replace(params, order_rate=max(rate - depth_per_s, 1.0) / per_order)
    return params


def _symbol_list(symbols: str | Sequence[str]) -> list[str]:
    names = [s.strip().upper() for s in (symbols.split(",") if isinstance(symbols, str) else symbols)]
    names = [name for name in names if name]
    if not names:
        raise HarnessError("no symbol given")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise HarnessError(f"symbol given twice: {', '.join(duplicated)}")
    return names


def _derived_seed(seed: int, symbol: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{symbol}".encode()).digest()[:8], "big")


def _one_connection(sessions: list[_Session]) -> Iterator[RecordedEvent]:
    """Every symbol's rows as one combined-stream connection delivers them, which is how the recorder
    records several symbols: one `ws_open` (and one subscription, where the venue subscribes by message)
    and one `ws_close` around all the frames, in receive order, and each symbol's REST snapshot on a
    connection id of its own."""
    if len(sessions) == 1:
        yield from sessions[0].events()
        return
    streams = [stream for session in sessions for stream in session.streams]
    venue = sessions[0].venue
    ws_url = venue.capture_policy().ws_url(venue.live_ws_url, streams)
    tagged = [_tagged(session.events(), index) for index, session in enumerate(sessions)]
    opened = closed = seq = 0
    subscription = sessions[0].subscribe_messages(streams)
    for event, index in heapq.merge(*tagged, key=lambda pair: pair[0].recv_mono_ns):
        if event.kind is EventKind.WS_SEND:
            continue
        if event.kind is EventKind.WS_OPEN:
            opened += 1
            if opened > 1:
                continue
            yield replace(event, seq=seq, url=ws_url)
            for message in subscription:
                seq += 1
                yield replace(event, seq=seq, kind=EventKind.WS_SEND, url=ws_url, payload=message)
            seq += 1
            continue
        if event.kind is EventKind.WS_CLOSE:
            closed += 1
            if closed < len(sessions):
                continue
        if event.conn_id == WS_CONN_ID:
            event = replace(event, url=ws_url)
        else:
            event = replace(event, conn_id=REST_CONN_ID + index)
        yield replace(event, seq=seq)
        seq += 1


def _tagged(events: Iterator[RecordedEvent], index: int) -> Iterator[tuple[RecordedEvent, int]]:
    for event in events:
        yield event, index


def generate_events(
    symbols: str | Sequence[str] = "BTCUSDT",
    seconds: float = 60.0,
    seed: int = 1,
    venue: str = VENUE,
    rate: float | None = None,
) -> Iterator[RecordedEvent]:
    """The recording's rows, `seq` from 0, exactly as `write_synthetic_recording` writes them.

    `symbols` is one symbol or several (a sequence, or one comma-separated string). Streams: memory
    stays bounded however long the run. Raises HarnessError for an unknown venue, an unknown or
    repeated symbol or a duration that is not positive.
    """
    return _one_connection(_sessions(symbols, seconds, seed, venue, rate))


def recording_meta(
    symbols: Sequence[str], seconds: float, seed: int, venue: str = VENUE, rate: float | None = None
) -> RecordingMeta:
    """The metadata a synthetic recording carries; its id is derived from the inputs, so reruns match."""
    paced = "" if rate is None else f":rate={rate!r}"
    digest = hashlib.sha256(f"synth:{venue}:{','.join(symbols)}:{seconds!r}:{seed}{paced}".encode()).digest()
    return RecordingMeta(
        venue=venue,
        symbols=tuple(symbols),
        tool_version=__version__,
        start_wall_ns=WALL_START_NS,
        source="synth",
        recording_id=str(uuid.UUID(bytes=digest[:16])),
    )


def _write(
    output: Path, symbols: str | Sequence[str], seconds: float, seed: int, venue: str, rate: float | None = None
) -> tuple[list[Path], int, list[_Session]]:
    sessions = _sessions(symbols, seconds, seed, venue, rate)
    meta = recording_meta([session.symbol for session in sessions], seconds, seed, venue, rate)
    # No fsync: a synthetic recording is rebuilt from its seed, so durability buys nothing here.
    with RecordingWriter(output, meta, fsync=False) as writer:
        for event in _one_connection(sessions):
            writer.append_event(event)
    return writer.sealed, writer.rows_written, sessions


def write_synthetic_recording(
    output: Path, symbols: str | Sequence[str] = "BTCUSDT", seconds: float = 60.0, seed: int = 1, venue: str = VENUE
) -> Path:
    """Writes the recording folder `output` (which must not hold files yet) and returns its path."""
    _write(output, symbols, seconds, seed, venue)
    return Path(output)


def synthesize(
    *, venue: str, symbols: str | Sequence[str], seconds: float, seed: int, output: Path, rate: float | None = None
) -> str:
    """`harness synth`: validates the venue, writes the recording, returns a short summary."""
    venue_dialect(venue)
    try:
        segments, rows, sessions = _write(Path(output), symbols, seconds, seed, venue, rate)
    except OSError as exc:
        raise HarnessError(f"cannot write the recording to {output}: {exc.strerror or exc}") from None
    size = sum(path.stat().st_size for path in segments)
    names = ",".join(session.symbol for session in sessions)
    lines = [
        f"wrote {output}: {seconds:g} s of synthetic {venue} {names} (seed {seed}), "
        f"{rows} events in {len(segments)} segment(s), {size / 1024:.0f} KiB"
    ]
    for session in sessions:
        stats = session.stats
        where = "REST snapshot" if session.rest_url is not None else "first snapshot (on the stream)"
        snapshot = "none" if stats.snapshot_update_id is None else f"id {stats.snapshot_update_id}"
        prefix = f"{session.symbol}: " if len(sessions) > 1 else ""
        tickers = f"{stats.tickers} bookTicker, " if session.ticker_stream else ""
        pace = stats.depth_frames + stats.trades + stats.tickers
        lines.append(
            f"  {prefix}{stats.depth_frames} book frames (ids {stats.first_update_id}..{stats.last_update_id}), "
            f"{stats.trades} trades, {tickers}{where}: {snapshot}"
            + (f"; {pace / seconds:,.0f} frames/s" if rate is not None else "")
        )
    return "\n".join(lines)
