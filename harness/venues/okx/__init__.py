"""OKX v5 public order books (`books`, `books5`, `bbo-tbt`): the whole dialect in one room.

Venue side: `channels.py` (URLs, channel names, stream keys, instrument ids), `frames.py` (a book
frame's ids and levels), `checksum.py` (the CRC32 over the top 25 levels), `dialect.py` (`DIALECT`),
`encoder.py` (book state to wire frames), `control.py` (subscribe, ack, error, ping/pong and the
snapshot a late subscriber gets), `synth.py` (the synthetic market as OKX sends it). Subject side:
`decoder.py` and `sequencing.py`. The oracle's own copy of the rule: `oracle_rule.py`.
"""

from harness.venues.okx.dialect import DIALECT

__all__ = ["DIALECT"]
