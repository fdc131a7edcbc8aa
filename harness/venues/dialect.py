"""What the rest of the harness asks of a venue: the `VenueDialect` contract.

Everything venue-specific lives under `harness/venues/<venue>/`; each venue package exposes one
`DIALECT` object satisfying this protocol, looked up by name through `harness/venues/registry.py`.
The replayer (venue side: replay data, fault plans, the fake venue's core, `harness inspect`), the
recorder, the synth and the default subject ask the dialect, never a venue module directly.

Three copies of a venue's sequencing rule exist on purpose, and no more:
- the venue side (`chain_ids` here): what the fake venue, the fault plans and inspect believe;
- the subject side (`subject_parts().rule`): what our components do, judged by the oracle;
- the oracle's own (`harness/venues/<venue>/oracle_rule.py`), which imports neither of the others
  (tests/test_house.py checks the imports), so a bug in one is not copied into its judge.

Ids are the venue's own integers. The venue-neutral chain model every venue maps onto:
a book frame covers update ids `first_id..last_id`; it continues a chain whose last applied id is
`last` when `prev_id == last` (venues that send a link: USD-M `pu`, OKX `prevSeqId`) or else when
`first_id == last + 1` (Binance spot `U`, Bybit `u`). An in-stream snapshot (`snapshot=True`) resets
the chain: it follows anything. This module is pure: no clock, no socket, no file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from harness.book_events import Level

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
        """The chain position of a book frame; None for a frame that carries no book change."""
        ...

    def book_levels(self, payload: bytes) -> BookLevels:
        """The levels a book frame (delta or in-stream snapshot) carries; a size of zero removes."""
        ...

    # --- snapshots ----------------------------------------------------------------------------

    def snapshot_request(self, url: str) -> str | None:
        """For REST venues: the symbol a recorded request URL asks a depth snapshot of, else None."""
        ...

    def parse_rest_snapshot(self, symbol: str, body: bytes) -> tuple[int, BookLevels]:
        """A recorded REST depth body as (last id, levels); ValueError when it is not one."""
        ...

    def checksum(self, bids: Sequence[Level], asks: Sequence[Level]) -> int | None:
        """The venue's book checksum over the top of a book (OKX's CRC32), None where it has none."""
        ...
