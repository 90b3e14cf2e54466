"""The suite runs with a guard that fails any connection beyond loopback."""

from __future__ import annotations

import socket

import pytest
from conftest import NetworkAccessError


def test_network_guard_blocks_remote_addresses() -> None:
    with socket.socket() as sock, pytest.raises(NetworkAccessError, match="tried to connect"):
        sock.connect(("203.0.113.7", 80))


def test_network_guard_allows_loopback() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket() as client:
            client.connect(server.getsockname())
