"""Network locations: the one loopback rule behind every "bind beyond this machine?" check.

``orchestrator serve`` needs an API key and ``orchestrator mcp`` needs ``--allow-remote`` to
listen anywhere else; both ask :func:`is_loopback`, so the two can never disagree.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    ``localhost`` in any case counts, as does any 127.0.0.0/8 or ``::1`` address, bracketed
    (``[::1]``) or IPv4-mapped (``::ffff:127.0.0.1``). Other host names do not: they may
    resolve to any interface. ``0.0.0.0`` and ``::`` mean every interface, so they do not.
    """
    name = host.strip().lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)
