"""What the rest of the harness asks of a venue: the `VenueDialect` contract.

Everything venue-specific lives under `harness/venues/<venue>/`; each venue package exposes one
`DIALECT` object satisfying this protocol, looked up by name through `harness/venues/registry.py`.
The replayer (venue side: replay data, fault plans, the fake venue's core, `harness inspect`), the
recorder, the synth and the default subject ask the dialect, never a venue module directly.

Three copies of a venue's sequencing rule exist on purpose, and no more:
- the venue side (`chain_ids`, `bridges` here): what the fake venue, the fault plans and inspect believe;
- the subject side (`subject_parts().sequencing`): what our components do, judged by the oracle;
- the oracle's own (`harness/venues/<venue>/oracle_rule.py`), which imports neither of the others
  (tests/test_house.py checks the imports), so a bug in one is not copied into its judge.
A venue package's `__init__.py` imports only the venue side, so that importing its `oracle_rule`
never runs the subject's decoder or sync rule: `subject_parts()` imports those when called.

Ids are the venue's own integers. The venue-neutral chain model every venue maps onto:
a book frame covers update ids `first_id..last_id`; it continues a chain whose last applied id is
`last` when `prev_id == last` (venues that send a link: USD-M `pu`, OKX `prevSeqId`) or else when
`first_id == last + 1` (Binance spot `U`, Bybit `u`). An in-stream snapshot (`snapshot=True`) resets
the chain: it follows anything. Where a REST snapshot starts the chain, `bridges` says which frame
is the first to apply on it (the venues differ by one). This module is pure: no clock, no socket, no file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from harness.book_events import DepthDelta, DepthSnapshot, Level

if TYPE_CHECKING:
    from harness.book_events import TopOfBook, Trade
    from harness.client_state import AppKeepalive, SessionStep
    from harness.subject import SubjectConfig
    from harness.sync import SequencingRule
    from harness.synth.market import SynthSymbol
    from harness.venues.wire import VenueWire

SnapshotTransport = Literal["rest", "stream"]
"""How a client gets its first book: a REST request (Binance) or a message on the stream (Bybit, OKX)."""


@dataclass(frozen=True, slots=True)
class ChainIds:
    """Where one recorded book frame sits in its symbol's update chain (see the module docstring)."""

    symbol: str
    first_id: int
    last_id: int
    prev_id: int | None = None
    snapshot: bool = False

    def follows(self, last: int) -> bool:
        if self.snapshot:
            return True
        if self.prev_id is not None:
            return self.prev_id == last
        return self.first_id == last + 1


@dataclass(frozen=True, slots=True)
class BookLevels:
    """A book frame's or snapshot's levels, venue strings kept; `checksum` is the venue's, None if none."""

    bids: Sequence[Level]
    asks: Sequence[Level]
    checksum: int | None = None


@dataclass(frozen=True, slots=True)
class SubjectParts:
    """What the default subject wires for a venue: its decoder, sync rule and where to connect.

    `ws_url(ws_base, symbols)` is the one connection that carries every symbol's book (streams named
    in the URL, or none where `subscribe(symbols)` gives the client's subscription step, a
    `SessionStep` of harness/client_state.py). `decode_frame` returns a `DepthSnapshot` for a snapshot
    that comes over the stream; `snapshot_url(rest_base, symbol, limit)` and `decode_snapshot(body,
    symbol)` are None there. `max_snapshot_limit` is the deepest REST snapshot the venue serves.
    """

    decode_frame: Callable[[bytes], DepthDelta | DepthSnapshot | TopOfBook | Trade | None]
    sequencing: Callable[[], SequencingRule]
    ws_url: Callable[[str, Sequence[str]], str]
    decode_snapshot: Callable[[bytes, str], DepthSnapshot] | None = None
    snapshot_url: Callable[[str, str, int], str] | None = None
    max_snapshot_limit: int = 0
    subscribe: Callable[[Sequence[str]], SessionStep] | None = None
    keepalive: AppKeepalive | None = None
    """The application-level ping the venue needs to keep a connection open (OKX's `ping`); None: none."""
    resubscribe: Callable[[str], Sequence[str]] | None = None
    """Where the book comes on the stream: the messages that make the venue send `symbol`'s book again on
    the open connection (Bybit, OKX: unsubscribe, then subscribe), so one lost sync costs one instrument's
    resubscription, not a reconnect of every symbol; None: the subject reconnects."""
    connections: Callable[[SubjectConfig], list[tuple[SubjectConfig, SubjectParts]]] | None = None
    """Where the subject's connections follow from what the recording holds (`config.streams`): each
    connection's share of the config (its symbols and book streams) with the parts that serve it, one
    connection per market where a venue serves markets on paths of their own (Bybit: spot and linear);
    None: one connection, `ws_url` and `subscribe` as above."""


@dataclass(frozen=True, slots=True)
class CapturePolicy:
    """What `harness record` subscribes to and how it fetches snapshots, as a syncing client would.

    `streams(symbols, book_ticker)` lists the stream keys (as `stream_of` reads them back) and
    `ws_url(ws_base, streams)` is the connection's URL. `snapshot_url(rest_base, symbol)` (the deepest
    snapshot) is None where snapshots come over the stream. `listing_url(rest_base, symbol)` asks
    whether the venue lists a symbol, so that a typo is refused before recording starts (the answer
    is Binance's `-1121 Invalid symbol` when not); None where the venue has no such request.
    `symbol_shape` is what a symbol looks like on this venue, uppercased (`BTCUSDT`, OKX's `BTC-USDT`),
    and `symbol_example` one such, for the error that refuses a malformed `--symbols` before connecting.
    """

    streams: Callable[[Sequence[str], bool], list[str]]
    ws_url: Callable[[str, Sequence[str]], str]
    symbol_shape: re.Pattern[str]
    symbol_example: str
    snapshot_url: Callable[[str, str], str] | None = None
    listing_url: Callable[[str, str], str] | None = None
    subscribe: Callable[[Sequence[str]], SessionStep] | None = None
    """The subscription step for `streams` on venues that subscribe by message (Bybit, OKX); None where
    the URL names the streams. Its messages are recorded as `ws_send` rows."""
    keepalive: AppKeepalive | None = None
    """As `SubjectParts.keepalive`: the recorder must stay connected too. Its pings are not recorded."""


@dataclass(frozen=True, slots=True)
class SynthTrade:
    """A trade print for the synth's encoder, venue strings already formatted."""

    trade_id: int
    price: str
    quantity: str
    trade_time_ms: int
    event_time_ms: int
    buyer_is_maker: bool


class SynthEncoder(Protocol):
    """One symbol's venue side for `harness synth`: its streams and the bytes the venue sends.

    Made per symbol by `VenueDialect.synth_encoder`, so an encoder may keep state (a venue whose
    message ids count messages, not book changes). Payloads are the frames exactly as recorded.
    """

    @property
    def market(self) -> SynthSymbol:
        """The symbol's tick, lot and simulated market, in the venue's own units."""
        ...

    @property
    def book_stream(self) -> str: ...

    @property
    def trade_stream(self) -> str: ...

    @property
    def window_ns(self) -> int:
        """How often the venue publishes a book stream frame (the net change since the last)."""
        ...

    def price(self, units: int) -> str:
        """A price of `units` 1e-8 as the venue writes it."""
        ...

    def size(self, units: int) -> str: ...

    def book_frame(self, delta: DepthDelta) -> bytes: ...

    def trade_frame(self, trade: SynthTrade) -> bytes: ...

    def snapshot_url(self, rest_base: str) -> str | None:
        """The REST request a syncing client makes (as deep as the venue serves); None where the
        snapshot comes over the stream."""
        ...

    def snapshot_payload(self, snapshot: DepthSnapshot, time_ms: int) -> bytes:
        """The REST body (or the in-stream snapshot frame) for `snapshot`, taken at `time_ms`: the
        best levels up to the depth `snapshot_url` asks for."""
        ...


class VenueDialect(Protocol):
    """One venue, as the harness needs it. Implementations are small frozen objects of pure functions."""

    @property
    def name(self) -> str:
        """The id users type (`binance-spot`, `binance-usdm`, `bybit`, `okx`)."""
        ...

    @property
    def snapshot_transport(self) -> SnapshotTransport: ...

    @property
    def live_ws_url(self) -> str: ...

    @property
    def live_rest_url(self) -> str: ...

    # --- recorded frames (venue side) -------------------------------------------------------

    def stream_of(self, payload: bytes) -> str | None:
        """The stream/topic key a raw frame belongs to (recorded in the `stream` column), None for
        control messages (acks, pongs, errors)."""
        ...

    def symbol_of(self, stream: str) -> str | None:
        """The symbol a stream carries, as the venue spells it in REST and snapshots; None for
        streams that name none (a user-data stream)."""
        ...

    def is_book_stream(self, stream: str) -> bool:
        """Whether frames on `stream` change the order book (Binance `@depth`, Bybit `orderbook.*`)."""
        ...

    def chain_ids(self, stream: str, payload: bytes) -> ChainIds | None:
        """The chain position of a book frame; None for a frame that carries no book change.
        ValueError when a book stream's frame has no readable ids."""
        ...

    def book_levels(self, payload: bytes) -> BookLevels:
        """The levels a book frame (delta or in-stream snapshot) carries; a size of zero removes."""
        ...

    # --- snapshots ----------------------------------------------------------------------------

    def bridges(self, ids: ChainIds, snapshot_id: int) -> bool:
        """Whether `ids` is the first frame to apply on a snapshot as of `snapshot_id` (Binance spot:
        `U <= id + 1 <= u`; USD-M: `U <= id <= u`). In-stream snapshots never need it."""
        ...

    def snapshot_request(self, url: str) -> str | None:
        """For REST venues: the symbol a recorded request URL asks a depth snapshot of, else None."""
        ...

    def parse_rest_snapshot(self, symbol: str, body: bytes) -> tuple[int, BookLevels]:
        """A recorded REST depth body as (last id, levels); ValueError when it is not one."""
        ...

    def checksum(self, bids: Sequence[Level], asks: Sequence[Level]) -> int | None:
        """The venue's book checksum over the top of a book (OKX's CRC32), None where it has none."""
        ...

    # --- the other ends: the fake venue, our subject, the recorder, the synth ----------------------

    def wire(self) -> VenueWire | None:
        """What the fake venue speaks for this venue (harness/venues/wire.py); None until it speaks it
        (`harness replay` and `harness serve` refuse the venue then)."""
        ...

    def subject_parts(self) -> SubjectParts: ...

    def capture_policy(self) -> CapturePolicy: ...

    def synth_encoder(self, symbol: str) -> SynthEncoder:
        """The synth's venue side for `symbol`; HarnessError for a symbol the synth has no market for."""
        ...
