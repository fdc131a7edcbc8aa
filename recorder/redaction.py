"""Secrets never reach a recording: every URL, stream name, reason and payload passes through here first.

A recording is shared (attached to a bug, committed as a fixture), so the recorder scrubs before the
writer sees a row. Two kinds of rule, both pure:

- Known secrets: the values the recorder itself was given (header values such as an API key or a
  bearer token, listen keys it subscribes to). Each is replaced wherever it appears, in any field.
- Shapes: values a venue or a URL carries under a telling name even when the recorder was not told
  them: query parameters (`signature=`, `apiKey=`, `listenKey=`, `token=` ...), JSON members
  (`"listenKey":"..."`), `Authorization`/`X-MBX-APIKEY` header lines and `Bearer` tokens.

A redacted value becomes `<redacted>`. Payload bytes are then no longer exactly what the venue sent;
that is the one exception to "raw bytes are sacred", and only frames that held a secret are touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import overload
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc

REDACTED = "<redacted>"
SENSITIVE_NAMES = (
    "signature",
    "apikey",
    "api_key",
    "listenkey",
    "token",
    "access_token",
    "secret",
    "secretkey",
    "password",
    "passphrase",
)
"""Query parameter and JSON member names whose values are secrets (compared case-insensitively)."""

SENSITIVE_HEADERS = ("authorization", "x-mbx-apikey", "proxy-authorization", "cookie")

MIN_SECRET_LENGTH = 4
"""A known secret shorter than this would match ordinary data everywhere; it is refused."""

_NAMES = "|".join(SENSITIVE_NAMES)
_HEADERS = "|".join(re.escape(h) for h in SENSITIVE_HEADERS)
_QUERY = re.compile(rf"(?i)(\b(?:{_NAMES})=)([^&\s\"'#<>]+)")
_JSON_MEMBER = re.compile(rf'(?i)("(?:{_NAMES})"\s*:\s*")((?:[^"\\]|\\.)*)(")')
_HEADER_LINE = re.compile(rf"(?i)(\b(?:{_HEADERS})\s*:\s*)([^\r\n\"]+)")
_BEARER = re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9\-._~+/]+=*)")
_TRIGGER = re.compile(rf"(?i){_NAMES}|{_HEADERS}|bearer")
_RULES = (_QUERY, _JSON_MEMBER, _HEADER_LINE, _BEARER)
_BYTE_RULES = tuple(re.compile(rule.pattern.encode(), rule.flags & ~re.UNICODE) for rule in _RULES)
_LOWERED_BYTE_TRIGGER = re.compile(_TRIGGER.pattern.removeprefix("(?i)").encode())
"""`_TRIGGER` for bytes already lowered: a bytes pattern ignores case in ASCII only, as `bytes.lower()` lowers,
so searching the lowered copy finds the same frames, about ten times faster than the `(?i)` search (profiled:
that search was 40% of the recorder's time on the real capture)."""
_TRIGGER_WORDS = (*SENSITIVE_NAMES, *SENSITIVE_HEADERS, "bearer")
_REDACTED_BYTES = REDACTED.encode()
_TEXT_CACHE_SIZE = 256
"""Distinct texts remembered per Redactor: the recorder redacts the same URL and stream names on every frame."""


class Redactor:
    """Scrubs one recorder's rows; built once from everything secret the recorder was configured with."""

    __slots__ = ("_secret_bytes", "_secrets", "_suspect", "_texts")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values: set[str] = set()
        for secret in secrets:
            if len(secret) < MIN_SECRET_LENGTH:
                raise ValueError(f"a secret of {len(secret)} characters cannot be told from data; refusing it")
            # A secret in a URL may travel percent-encoded.
            values.update({secret, quote(secret, safe="")})
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = tuple(sorted(values, key=len, reverse=True))
        self._secret_bytes = tuple(s.encode() for s in self._secrets)
        self._suspect = "|".join([*map(_any_case, _TRIGGER_WORDS), *map(_exactly, self._secret_bytes)])
        self._texts: dict[str, str] = {}

    @overload
    def text(self, value: str) -> str: ...
    @overload
    def text(self, value: str | None) -> str | None: ...
    def text(self, value: str | None) -> str | None:
        """A URL, stream name or reason with every secret in it replaced."""
        if not value:
            return value
        known = self._texts.get(value)
        if known is not None:
            return known
        redacted = self._text(value)
        if len(self._texts) < _TEXT_CACHE_SIZE:
            self._texts[value] = redacted
        return redacted

    def _text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if _TRIGGER.search(value):
            for rule in _RULES:
                value = rule.sub(_keep_name, value)
        return value

    def payload(self, value: bytes) -> bytes:
        """Frame or body bytes; returned unchanged (the same object) when they hold no secret."""
        for secret in self._secret_bytes:
            if secret in value:
                value = value.replace(secret, _REDACTED_BYTES)
        if _LOWERED_BYTE_TRIGGER.search(value.lower()):
            for rule in _BYTE_RULES:
                value = rule.sub(_keep_name_bytes, value)
        return value

    def payloads(self, values: pa.BinaryArray) -> pa.BinaryArray:
        """A column of frame or body bytes, each value as `payload` returns it; the same array when none
        holds a secret.

        The recorder's writer thread calls this once per batch: the values `payload` would change (a
        known secret, or a trigger word in any ASCII case) are found in one pass by pyarrow's RE2,
        outside the GIL, at about a sixth of the CPU of `payload`'s search per value (measured on the
        real capture), and only those go through `payload`.
        """
        suspects = pc.match_substring_regex(values, pattern=self._suspect)
        if not suspects.true_count:
            return values
        redacted = values.to_pylist()
        for index in pc.indices_nonzero(suspects).to_pylist():
            redacted[index] = self.payload(redacted[index])
        return pa.array(redacted, values.type)


def _any_case(word: str) -> str:
    """RE2 syntax for `word` in any ASCII case, byte by byte: `bytes.lower()`'s folding and no other
    (arrow matches binary values as Latin-1, where no other character folds to an ASCII letter, but
    this does not rely on it)."""
    return "".join(f"[{c}{c.upper()}]" if c.isascii() and c.isalpha() else f"\\x{ord(c):02x}" for c in word)


def _exactly(value: bytes) -> str:
    """RE2 syntax for these bytes exactly: arrow reads a binary value's bytes as Latin-1 characters."""
    return "".join(f"\\x{byte:02x}" for byte in value)


def _keep_name(match: re.Match[str]) -> str:
    if match.group(2) == REDACTED:
        return match.group(0)
    return match.group(1) + REDACTED + (match.group(3) if match.re.groups >= 3 else "")


def _keep_name_bytes(match: re.Match[bytes]) -> bytes:
    if match.group(2) == _REDACTED_BYTES:
        return match.group(0)
    return match.group(1) + _REDACTED_BYTES + (match.group(3) if match.re.groups >= 3 else b"")
