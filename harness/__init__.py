"""Record/replay harness for exchange WebSocket market data."""

__version__ = "0.1.0"
