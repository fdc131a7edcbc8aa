"""The subject's reports kept compressed give back exactly the messages that went in, in order."""

from __future__ import annotations

import pytest

import harness.message_log as message_log
from harness.message_log import MessageLog
from harness.observations import BookObservation, FinalBook, SubjectMessage, SyncEvent, dumps


def _messages(n: int) -> list[SubjectMessage]:
    out: list[SubjectMessage] = []
    for i in range(n):
        levels = [(f"{100 + i % 7}.{j}", "0.5") for j in range(20)]
        if i % 5 == 0:
            out.append(SyncEvent("synced", i, detail=f"at {i}", symbol="BTCUSDT"))
        else:
            out.append(BookObservation("BTCUSDT", i, i % 3 != 0, levels, levels[::-1], i, i + 1, i + 2, i + 3))
    out.append(FinalBook("BTCUSDT", n, True, [("1", "2")], [("3", "4")]))
    return out


def test_messages_come_back_in_order_across_sealed_chunks_and_the_open_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(message_log, "CHUNK_BYTES", 4096)
    messages = _messages(200)
    log = MessageLog()
    for message in messages:
        log.append(dumps(message))
    assert len(log._chunks) > 1 and log._pending, "the test must cross sealed chunks and end in an open one"
    assert len(log) == len(messages)
    assert list(log) == messages
    assert list(log) == messages, "reading twice gives the same"


def test_kept_lines_take_far_less_than_the_lines() -> None:
    log = MessageLog()
    lines = [dumps(message) for message in _messages(2000)]
    for line in lines:
        log.append(line)
    kept = sum(len(chunk) for chunk in log._chunks) + sum(len(line) for line in log._pending)
    assert kept * 4 < sum(len(line) for line in lines)


def test_a_line_with_a_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="newline"):
        MessageLog().append(b'["e",["synced",1,"",""]]\n')
