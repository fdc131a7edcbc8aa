"""Servers listen on loopback unless told otherwise, and say so loudly when told otherwise.

The fake venue answers anyone who connects: it serves recordings (which may hold a user's own
data) and takes whatever a client sends. Bound to another address it is reachable from the
network, which a user should choose knowingly, so the choice is printed as a warning.
"""

from __future__ import annotations

import ipaddress

DEFAULT_HOST = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1; False for any other name or address ("" is every one)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """The warning to print before listening on `host`, None when it is loopback."""
    if is_loopback(host):
        return None
    shown = host or "every interface"
    return (
        f"listening on {shown}, not loopback: anyone who can reach this machine can connect to the fake "
        f"venue and read what it serves (use --host {DEFAULT_HOST} to keep it local)"
    )
