"""The venue's limit on messages a client sends, as a pure core the server asks once per message.

Binance closes a market-data connection that sends more than five messages in any one second
(SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS and the rest; USD-M futures allow ten). A client that
subscribes symbol by symbol in a tight loop works against a lenient fake and is cut off in
production, so the fake enforces it. The window is a sliding second, not a per-second bucket: a
bucket would let ten messages through across a bucket edge, which the venue does not.
"""

from __future__ import annotations

from collections import deque

WINDOW_NS = 1_000_000_000


class MessageRateLimit:
    """Admits at most `per_second` messages in any window of one second.

    Keeps only the times of the last `per_second` admitted messages, so a check is O(1) and the memory
    fixed whatever the client sends.
    """

    __slots__ = ("_admitted",)

    def __init__(self, per_second: int) -> None:
        if per_second < 1:
            raise ValueError(f"per_second must be at least 1, got {per_second}")
        self._admitted: deque[int] = deque(maxlen=per_second)

    def admit(self, now_ns: int) -> bool:
        """True if a message arriving at `now_ns` (monotonic) keeps the client within the limit."""
        admitted = self._admitted
        if len(admitted) == admitted.maxlen and now_ns - admitted[0] < WINDOW_NS:
            return False
        admitted.append(now_ns)
        return True
