"""The subject's reports kept on disk give back the messages that went in, in order; the ones the
oracle agreed with on arrival come back marked, without their levels."""

from __future__ import annotations

import pytest

import harness.message_log as message_log
from harness.checker import AgreedObservation
from harness.message_log import MessageLog
from harness.observations import BookObservation, FinalBook, SubjectMessage, SyncEvent, dumps


def _messages(n: int) -> list[SubjectMessage]:
    out: list[SubjectMessage] = []
    for i in range(n):
        levels = [(f"{100 + i % 7}.{j}", "0.5") for j in range(20)]
        if i % 5 == 0:
            out.append(SyncEvent("synced", i, detail=f"at {i}", symbol="BTCUSDT" if i % 2 else "ETHUSDT"))
        else:
            out.append(BookObservation("BTCUSDT", i, i % 3 != 0, levels, levels[::-1], i, i + 1, i + 2, i + 3))
    out.append(FinalBook("BTCUSDT", n, True, [("1", "2")], [("3", "4")]))
    return out


def _agrees(obs: BookObservation) -> bool:
    return obs.update_id % 4 == 1


def _expected(message: SubjectMessage) -> SubjectMessage:
    """What the log gives back: levels dropped where they are never read again."""
    if type(message) is not BookObservation:
        return message
    if message.synced and not _agrees(message):
        return message
    cls = AgreedObservation if message.synced else BookObservation
    stamps = (message.recv_mono_ns, message.parsed_mono_ns, message.dequeued_mono_ns, message.applied_mono_ns)
    return cls(message.symbol, message.update_id, message.synced, (), (), *stamps)


def test_messages_come_back_in_order_across_chunks_on_disk_and_the_open_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(message_log, "CHUNK_BYTES", 4096)
    messages = _messages(400)
    log = MessageLog(_agrees)
    for message in messages:
        log.append(dumps(message), message)
    assert log._file is not None and log._pending, "the test must cross chunks on disk and end in an open one"
    assert len(log) == len(messages)
    got = list(log)
    assert got == [_expected(m) for m in messages]
    assert sum(type(m) is AgreedObservation for m in got) > 10 and any(
        type(m) is BookObservation and m.bids for m in got
    )
    assert list(log) == got, "reading twice gives the same"
    log.close()
    assert list(log) == [] and log._file is None


def test_without_a_judge_every_synced_observation_keeps_its_levels() -> None:
    messages = _messages(50)
    log = MessageLog()
    for message in messages:
        log.append(dumps(message), message)
    synced = [m for m in log if isinstance(m, BookObservation) and m.synced]
    assert synced and all(type(m) is BookObservation and len(m.bids) == 20 for m in synced)


def test_an_id_beyond_a_signed_64_bit_int_keeps_its_line() -> None:
    huge = BookObservation("BTCUSDT", 2**63 + 5, False, [("1", "2")], [("3", "4")], 1, 2, 3, 4)
    log = MessageLog(_agrees)
    log.append(dumps(huge), huge)
    assert list(log) == [huge]
