"""OKX: the checksum and the seqId rule (venue side, subject side, the oracle's own) on the real
2022 capture and on OKX's documented sequences; the encoder, control shapes and synth generator."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, replace

import orjson
import pytest

from harness.book_events import DecodeError, DepthDelta, DepthSnapshot
from harness.client_state import StepReply
from harness.deliveries import ChainJudge, Deliveries
from harness.errors import HarnessError
from harness.oracle import Oracle
from harness.sync import Applied, BookSync, GapDetected, NeedSnapshot, Resync, Step, Synced
from harness.synth.run import generate_events
from harness.venues.dialect import VenueDialect
from harness.venues.okx import control
from harness.venues.okx.checksum import book_checksum, checksum_text
from harness.venues.okx.decoder import decode_frame
from harness.venues.okx.dialect import DIALECT, UnlinkedIds
from harness.venues.okx.encoder import okx_decimal, snapshot_message
from harness.venues.okx.oracle_rule import OkxOracleBooks, Verdict, read_book_frame
from harness.venues.okx.sequencing import OkxSequencing
from harness.venues.okx.top_streams import TopStream
from harness.venues.registry import BYBIT
from recorder.format import EventKind
from replayer.faults import build_schedule, fault
from replayer.timeline import Frame
from tests.okx_helpers import books, real_okx_received

# OKX's documented sequence: snapshot 10, update 15, heartbeat 15, reset to 3, update 5.
DOCUMENTED = [
    books(10, -1, action="snapshot", bids=[("100", "1")], asks=[("101", "1")]),
    books(15, 10, bids=[("100", "2")]),
    books(15, 15),
    books(3, 15, asks=[("102", "5")]),
    books(5, 3, bids=[("100", "0")], asks=[("99.5", "1")]),
]


def subject_sync() -> BookSync:
    return BookSync(OkxSequencing())


def feed_subject(sync: BookSync, payload: bytes) -> tuple[object, ...]:
    event = decode_frame(payload)
    if isinstance(event, DepthSnapshot):
        return sync.on_stream_snapshot(event)
    if isinstance(event, DepthDelta):
        return sync.on_delta(event)
    return ()


def test_checksum_text_interleaves_and_lets_the_longer_side_run_on() -> None:
    # OKX's two documented examples.
    bids = [["3366.1", "7", "0", "3"], ["3366", "6", "3", "4"]]
    asks = [["3366.8", "9", "10", "3"], ["3368", "8", "3", "4"]]
    assert checksum_text(bids, asks) == "3366.1:7:3366.8:9:3366:6:3368:8"
    assert checksum_text(bids[:1], [*asks, ["3372", "8"]]) == "3366.1:7:3366.8:9:3368:8:3372:8"
    many = [[str(100 - i), "1"] for i in range(30)]
    assert checksum_text(many, []).count(":") == 2 * 25 - 1
    assert -(2**31) <= book_checksum(many, many[::-1]) < 2**31


def test_every_checksum_of_the_real_capture_matches_on_the_oracle_and_the_subject() -> None:
    oracle = OkxOracleBooks()
    verdicts: Counter[Verdict] = Counter()
    syncs: dict[str, BookSync] = {}
    subject: Counter[type] = Counter()
    checksums = 0
    for payload in real_okx_received():
        frame = read_book_frame(payload)
        if frame is None:
            continue
        checksums += frame.checksum is not None
        verdicts[oracle.feed(frame)] += 1
        subject.update(type(e) for e in feed_subject(syncs.setdefault(frame.symbol, subject_sync()), payload))
        ids = DIALECT.chain_ids(DIALECT.stream_of(payload) or "", payload)
        assert ids is not None and ids.symbol == frame.symbol
    # 290 book messages, every one with a checksum, every one matching on both sides.
    assert checksums == 290
    assert verdicts == {Verdict.SNAPSHOT: 3, Verdict.APPLIED: 287}
    assert subject == {Synced: 3, Applied: 287}
    assert sorted(syncs) == ["BTC-USD-220527", "BTC-USDT", "UNI-USD-SWAP"]
    for symbol, sync in syncs.items():
        book = oracle.book(symbol)
        assert book is not None and sync.synced
        assert sync.book.bids() == book.bids() and sync.book.asks() == book.asks()


def test_the_documented_sequence_with_heartbeat_and_reset_follows_on_every_side() -> None:
    sync = subject_sync()
    oracle = OkxOracleBooks()
    last: int | None = None
    for payload in DOCUMENTED:
        ids = DIALECT.chain_ids("books:BTC-USDT", payload)
        assert ids is not None
        assert ids.snapshot or (last is not None and ids.follows(last))
        last = ids.last_id
        frame = read_book_frame(payload)
        assert frame is not None and oracle.feed(frame) in (Verdict.SNAPSHOT, Verdict.APPLIED)
        assert not any(isinstance(e, Resync) for e in feed_subject(sync, payload))
    assert sync.synced and sync.last_update_id == 5
    assert sync.book.bids() == [] and sync.book.asks() == [("99.5", "1"), ("101", "1"), ("102", "5")]
    final = oracle.book("BTC-USDT")
    assert final is not None and final.asks() == sync.book.asks()


def test_a_broken_link_is_a_gap_and_an_old_message_a_duplicate() -> None:
    rule = OkxSequencing()
    delta = decode_frame(books(20, 15))
    assert isinstance(delta, DepthDelta)
    assert rule.follow(delta, 15) is Step.APPLY
    assert rule.follow(delta, 17) is Step.GAP
    assert rule.follow(delta, 20) is Step.DROP
    ids = DIALECT.chain_ids("books:BTC-USDT", books(20, 15))
    assert ids is not None and ids.prev_id == 15 and not ids.follows(17)
    oracle = OkxOracleBooks()
    for payload, verdict in (
        (DOCUMENTED[0], Verdict.SNAPSHOT),
        (DOCUMENTED[1], Verdict.APPLIED),
        (DOCUMENTED[1], Verdict.DUPLICATE),
        (books(30, 25), Verdict.BREAK),
        (books(35, 30), Verdict.UNKNOWN),
    ):
        frame = read_book_frame(payload)
        assert frame is not None and oracle.feed(frame) is verdict
    sync = subject_sync()
    feed_subject(sync, DOCUMENTED[0])
    events = feed_subject(sync, books(30, 25))
    assert [type(e) for e in events] == [GapDetected, Resync, NeedSnapshot]


def test_a_checksum_mismatch_resyncs_the_subject_and_unsettles_the_oracle() -> None:
    snapshot = books(10, -1, action="snapshot", bids=[("100", "1")], asks=[("101", "1")])
    good = book_checksum([["100", "2"]], [["101", "1"]])
    sync = subject_sync()
    feed_subject(sync, snapshot)
    assert feed_subject(sync, books(11, 10, bids=[("100", "2")], checksum=good)) == (Applied(11, 11),)
    events = feed_subject(sync, books(12, 11, checksum=good + 1))
    assert [type(e) for e in events] == [Resync, NeedSnapshot] and sync.stats.reasons == {"verify failed": 1}
    # 0 means "not provided" (OKX sends 0 since it retired the check): never compared.
    feed_subject(sync, snapshot)
    assert feed_subject(sync, books(11, 10, bids=[("100", "2")], checksum=0)) == (Applied(11, 11),)
    oracle = OkxOracleBooks()
    first = read_book_frame(snapshot)
    bad = read_book_frame(books(11, 10, checksum=good))
    assert first is not None and bad is not None
    assert oracle.feed(first) is Verdict.SNAPSHOT and oracle.feed(bad) is Verdict.CHECKSUM
    assert oracle.book("BTC-USDT") is None


def test_dialect_keys_streams_and_tells_control_frames_apart() -> None:
    dialect: VenueDialect = DIALECT
    assert dialect.name == "okx" and dialect.snapshot_transport == "stream"
    assert dialect.stream_of(DOCUMENTED[1]) == "books:BTC-USDT"
    for control_frame in (b"pong", b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}'):
        assert dialect.stream_of(control_frame) is None
        assert dialect.chain_ids("", control_frame) is None
    assert dialect.symbol_of("books:BTC-USDT") == "BTC-USDT" and dialect.symbol_of("nonsense") is None
    assert dialect.is_book_stream("books5:BTC-USDT") and not dialect.is_book_stream("trades:BTC-USDT")
    levels = dialect.book_levels(books(11, 10, bids=[("100", "2")], checksum=7))
    assert [list(level[:2]) for level in levels.bids] == [["100", "2"]] and levels.checksum == 7
    snap = dialect.chain_ids("", DOCUMENTED[0])
    assert snap is not None and snap.snapshot and snap.last_id == 10 and snap.prev_id is None
    # A 2022 update has no seqId: placed by nothing, it follows anything.
    unlinked = dialect.chain_ids("", books(None, None))
    assert isinstance(unlinked, UnlinkedIds) and unlinked.follows(123)
    top5 = orjson.dumps(
        {"arg": {"channel": "books5", "instId": "X-Y"}, "data": [{"asks": [], "bids": [], "ts": "1", "seqId": 9}]}
    )
    assert (ids := dialect.chain_ids("", top5)) is not None and ids.snapshot and ids.last_id == 9
    assert dialect.snapshot_request("https://www.okx.com/api/v5/market/books?instId=BTC-USDT") is None
    with pytest.raises(ValueError):
        dialect.parse_rest_snapshot("BTC-USDT", b"{}")


@pytest.mark.parametrize(
    "bad",
    [
        b"{",
        b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":{}}',
        b'{"arg":{"channel":"books","instId":"X"},"action":"other","data":[{"asks":[],"bids":[]}]}',
        b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[[1,2]],"bids":[]}]}',
        b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"bids":[],"seqId":"5"}]}',
        b'{"arg":{"channel":"books","instId":"X"},"action":"update","data":[{"asks":[],"bids":[],"seqId":5}]}',
    ],
)
def test_malformed_book_frames_are_decode_errors(bad: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_frame(bad)


def test_snapshot_message_round_trips_with_a_valid_checksum() -> None:
    assert okx_decimal(3_024_940_000_000) == "30249.4" and okx_decimal(100_000_000) == "1"
    assert okx_decimal(265_859) == "0.00265859" and okx_decimal(0) == "0"
    bids = [(str(100 - i), "1.5") for i in range(30)]
    asks = [(str(101 + i), "2") for i in range(30)]
    payload = snapshot_message("BTC-USDT", bids, asks, seq_id=77, ts_ms=5, depth=28)
    frame = read_book_frame(payload)
    assert frame is not None and frame.snapshot and frame.seq_id == 77 and len(frame.bids) == 28
    oracle = OkxOracleBooks()
    assert oracle.feed(frame) is Verdict.SNAPSHOT
    assert orjson.loads(payload)["data"][0]["prevSeqId"] == -1


def test_control_messages_parse_and_answer_as_okx_does() -> None:
    assert control.parse_request("ping", "c1") == control.Ping()
    sub = control.parse_request(
        b'{"id":"7","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},'
        b'{"channel":"trades","instId":"BTC-USDT"}]}',
        "c1",
    )
    assert isinstance(sub, control.Subscription)
    assert sub.streams == ("books:BTC-USDT", "trades:BTC-USDT") and sub.request_id == "7"
    replies = [orjson.loads(reply) for reply in control.acks(sub, "c1")]
    books_arg = {"channel": "books", "instId": "BTC-USDT"}
    assert replies[0] == {"id": "7", "event": "subscribe", "arg": books_arg, "connId": "c1"}
    assert len(replies) == 2
    no_inst = '{"op":"subscribe","args":[{"channel":"books"}]}'
    for bad in ("{", '{"op":"login"}', no_inst, '{"op":"subscribe","args":[]}'):
        rejected = control.parse_request(bad, "c1")
        assert isinstance(rejected, control.Rejected)
        error = orjson.loads(rejected.reply)
        assert error["event"] == "error" and error["code"] == "60012" and error["msg"] == f"Invalid request: {bad}"
    missing = orjson.loads(control.no_such_channel("books", "NOPE-USDT", "c1"))
    assert missing["code"] == "60018" and "channel:books,instId:NOPE-USDT doesn't exist" in missing["msg"]


def test_synth_writes_a_subscribe_and_a_checksummed_chain_the_subject_and_both_oracles_follow() -> None:
    rows = list(generate_events(["BTCUSDT", "SOL-USDT"], 5.0, 4, venue="okx"))
    assert [row.kind for row in rows[:2]] == [EventKind.WS_OPEN, EventKind.WS_SEND]
    sent = orjson.loads(rows[1].payload)
    assert sent["op"] == "subscribe" and {arg["instId"] for arg in sent["args"]} == {"BTC-USDT", "SOL-USDT"}
    oracle = OkxOracleBooks()
    syncs: dict[str, BookSync] = {}
    verdicts: Counter[Verdict] = Counter()
    streams: Counter[str] = Counter()
    frames: list[Frame] = []
    for row in rows:
        if row.stream is None:
            continue
        assert DIALECT.stream_of(row.payload) == row.stream
        streams[row.stream] += 1
        frames.append(Frame(len(frames), row.recv_mono_ns, row.stream, row.payload))
        frame = read_book_frame(row.payload)
        if frame is None:
            continue
        verdicts[oracle.feed(frame)] += 1
        sync = syncs.setdefault(frame.symbol, subject_sync())
        events = feed_subject(sync, row.payload)
        assert not any(isinstance(e, Resync) for e in events)
    assert set(streams) == {"books:BTC-USDT", "trades:BTC-USDT", "books:SOL-USDT", "trades:SOL-USDT"}
    assert verdicts[Verdict.SNAPSHOT] == 2 and verdicts[Verdict.APPLIED] > 50 and len(verdicts) == 2
    # harness/oracle.py, on OKX's rule, ends where OKX's own books do.
    generic = Oracle(frames, [], venue="okx")
    assert generic.recording_gaps == 0 and generic.symbols == ["BTC-USDT", "SOL-USDT"]
    for symbol, sync in syncs.items():
        book = oracle.book(symbol)
        assert book is not None and sync.book.bids() == book.bids() and sync.book.asks() == book.asks()
        assert generic.last_update_id(symbol) == book.last_update_id == sync.last_update_id


def test_the_oracle_rule_imports_neither_the_subject_side_nor_the_book_and_sync() -> None:
    code = (
        "import sys, harness.venues.okx.oracle_rule as r; "
        "print(sorted(m for m in sys.modules if m.startswith(('harness', 'replayer'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(eval(out))
    forbidden = {"harness.book", "harness.sync", "harness.venues.okx.decoder", "harness.venues.okx.sequencing"}
    assert "harness.venues.okx.oracle_rule" in loaded and not loaded & forbidden


def test_the_dialect_wires_the_subject_the_recorder_and_the_synth() -> None:
    parts = DIALECT.subject_parts()
    assert parts.decode_frame is decode_frame and isinstance(parts.sequencing(), OkxSequencing)
    assert parts.snapshot_url is None and parts.decode_snapshot is None
    assert parts.ws_url("ws://127.0.0.1:5000", ["BTC-USDT"]) == "ws://127.0.0.1:5000/ws/v5/public"
    assert parts.subscribe is not None
    step = parts.subscribe(["BTC-USDT", "ETH-USDT"])
    assert orjson.loads(step.messages()[0]) == {
        "op": "subscribe",
        "args": [{"channel": "books", "instId": "BTC-USDT"}, {"channel": "books", "instId": "ETH-USDT"}],
    }
    ack = b'{"event":"subscribe","arg":{"channel":"books","instId":"%s"},"connId":"a"}'
    assert step.classify(DOCUMENTED[0]) is StepReply.OTHER
    assert step.classify(ack % b"BTC-USDT") is StepReply.OTHER
    assert step.classify(ack % b"ETH-USDT") is StepReply.ACK
    step.messages()  # a new connection: both acks are awaited again
    assert step.classify(ack % b"ETH-USDT") is StepReply.OTHER
    assert step.classify(b'{"event":"error","code":"60018","msg":"..","connId":"a"}') is StepReply.REJECTED
    policy = DIALECT.capture_policy()
    assert policy.snapshot_url is None
    assert policy.streams(["BTC-USDT"], True) == ["books:BTC-USDT", "trades:BTC-USDT", "bbo-tbt:BTC-USDT"]
    assert policy.ws_url(DIALECT.live_ws_url, ["BTC-USDT"]) == "wss://ws.okx.com:8443/ws/v5/public"
    assert policy.subscribe is not None and policy.subscribe(["trades:X-Y"]).timeout_s > 0


def test_the_synth_encoder_sends_its_snapshot_first_and_checksums_every_update() -> None:
    encoder = DIALECT.synth_encoder("BTC-USDT")
    assert DIALECT.synth_encoder("btcusdt").book_stream == encoder.book_stream == "books:BTC-USDT"
    with pytest.raises(HarnessError, match="known instruments: BTC-USDT"):
        DIALECT.synth_encoder("DOGE-USDT")
    with pytest.raises(ValueError, match="snapshot"):
        encoder.book_frame(DepthDelta("BTC-USDT", 8, 8, [], []))
    oracle = OkxOracleBooks()
    snapshot = DepthSnapshot("BTC-USDT", 7, [("100", "1"), ("99", "2")], [("101", "1")])
    frames = [
        encoder.snapshot_payload(snapshot, 1),
        encoder.book_frame(DepthDelta("BTC-USDT", 9, 9, [("100", "0")], [("100.5", "3")], event_time_ms=2)),
        encoder.book_frame(DepthDelta("BTC-USDT", 9, 9, [], [], event_time_ms=3)),
    ]
    verdicts = []
    for payload in frames:
        frame = read_book_frame(payload)
        assert frame is not None
        verdicts.append(oracle.feed(frame))
    assert verdicts == [Verdict.SNAPSHOT, Verdict.APPLIED, Verdict.APPLIED]
    heartbeat = orjson.loads(frames[2])["data"][0]
    assert heartbeat["prevSeqId"] == heartbeat["seqId"] == 9 and heartbeat["bids"] == heartbeat["asks"] == []


def test_books5_and_bbo_tbt_derived_from_the_real_books_match_its_top_after_every_change() -> None:
    top5 = TopStream("books5:BTC-USDT")
    bbo = TopStream("bbo-tbt:BTC-USDT")
    oracle = OkxOracleBooks()
    derived = Counter[str]()
    for payload in real_okx_received():
        frame = read_book_frame(payload)
        if frame is None or frame.symbol != "BTC-USDT":
            continue
        oracle.feed(frame)
        book = oracle.book("BTC-USDT")
        assert book is not None
        for stream, depth in ((top5, 5), (bbo, 1)):
            for message in stream.add(0, payload):
                snapshot = decode_frame(message)
                assert isinstance(snapshot, DepthSnapshot) and snapshot.last_update_id == frame.ts_ms
                assert [tuple(level[:2]) for level in snapshot.bids] == book.bids(depth)
                assert [tuple(level[:2]) for level in snapshot.asks] == book.asks(depth)
                derived[orjson.loads(message)["arg"]["channel"]] += 1
    # Of the 98 BTC-USDT books messages, 90 moved the top 5 and 71 the best bid or ask.
    assert derived == {"books5": 90, "bbo-tbt": 71}
    with pytest.raises(ValueError):
        TopStream("books:BTC-USDT")


def test_a_checksum_corruption_keeps_the_json_and_the_levels_and_only_the_checksum_gives_it_away() -> None:
    """`corrupt` mode `checksum`: the frame still decodes to the same ids and levels, so only a client that
    checks OKX's checksum sees it; ours resyncs on the first one. Not applicable where frames carry none."""
    rows = [row for row in generate_events(["BTC-USDT"], 5.0, 4, venue="okx") if row.stream is not None]
    frames = []
    for n, row in enumerate(rows):
        assert row.stream is not None
        ids = DIALECT.chain_ids(row.stream, row.payload)
        offset = row.recv_mono_ns - rows[0].recv_mono_ns
        chain = (ids.first_id, ids.last_id, ids.symbol, ids.prev_id, ids.snapshot) if ids else ()
        frames.append(Frame(n, offset, row.stream, row.payload, *chain))
    spec = fault("corrupt", "20%", "60%", probability=0.2, mode="checksum")
    plan = build_schedule(frames, [spec], seed=1, venue=DIALECT)
    sends = plan.sends  # one walk: a schedule's sends are made anew on each
    corrupted = [send for send in sends if send.fault == "corrupt"]
    assert corrupted and plan.not_applicable == {}
    for send in corrupted:
        clean, broken = decode_frame(send.frame.payload), decode_frame(send.payload)
        assert isinstance(clean, DepthDelta) and isinstance(broken, DepthDelta)
        assert broken.checksum not in (clean.checksum, 0, None)
        assert replace(broken, checksum=clean.checksum) == clean
    sync = subject_sync()
    for send in sends:
        events = feed_subject(sync, send.payload)
        assert any(isinstance(e, Resync) for e in events) == (send is corrupted[0])
        if send is corrupted[0]:
            break
    on_bybit = build_schedule(frames, [spec], seed=1, venue=BYBIT)
    assert list(on_bybit.not_applicable) == ["corrupt.0"] and on_bybit.injected["corrupt"] == 0


@dataclass(frozen=True)
class _Write:
    frame_index: int
    write_mono_ns: int


@dataclass(frozen=True)
class _Client:
    sends: tuple[_Write, ...]


def test_a_resubscribe_snapshot_at_the_last_update_s_seq_id_opens_no_hole_before_it_arrives() -> None:
    """A recording made across a reconnect holds the second connection's snapshot (`prevSeqId` -1) at the
    `seqId` of the first connection's last update. The snapshot links to nothing: read as a link to -1
    it claimed every id up to its own, and a subject that applied the update before the snapshot
    arrived was accused of syncing across a hole (1 run in 3, by how fast the subject was)."""
    payloads = [
        DOCUMENTED[0],
        books(15, 10, bids=[("100", "2")]),
        books(15, -1, action="snapshot", bids=[("100", "2")], asks=[("101", "1")]),
        books(20, 15, asks=[("101", "3")]),
    ]
    frames = []
    for n, payload in enumerate(payloads):
        ids = DIALECT.chain_ids("books:BTC-USDT", payload)
        assert ids is not None
        chain = (ids.first_id, ids.last_id, ids.symbol, ids.prev_id, ids.snapshot)
        frames.append(Frame(n, n, "books:BTC-USDT", payload, *chain))
    oracle = Oracle(frames, [], venue="okx")
    assert [f.prev_last for f in oracle.depth_frame_ids()] == [None, 10, None, 15]
    # Frame n reached the subject at 10 n; the update to 15 was applied at 15, the snapshot came at 20.
    client = _Client(tuple(_Write(n, 10 * n) for n in range(len(frames))))
    judge = ChainJudge(Deliveries(oracle.depth_frame_ids(), [client], []))
    judge.restart("BTC-USDT")
    assert judge.judge("BTC-USDT", 10, 5) is None
    assert judge.judge("BTC-USDT", 15, 15) is None
    assert judge.judge("BTC-USDT", 20, 35) is None
