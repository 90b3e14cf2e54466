"""The one loopback rule (orchestrator.netloc) that `serve` and `mcp` both bind by."""

from __future__ import annotations

import pytest

from orchestrator import netloc
from orchestrator.server import config, mcp_server


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST", "LocalHost", " localhost ", "127.0.0.1", "127.0.0.2",
     "127.255.255.254", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1",
     "[::FFFF:127.0.0.1]"],
)
def test_loopback_hosts(host: str) -> None:
    assert netloc.is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", "[::]", "10.0.0.2", "192.168.1.1", "::ffff:10.0.0.1", "128.0.0.1",
     "localhost.example.org", "my-host.lan", "example.org", "", "[", "127.0.0.1:8000"],
)
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not netloc.is_loopback(host)


def test_serve_and_mcp_ask_the_same_rule() -> None:
    assert config.is_loopback is netloc.is_loopback
    assert mcp_server.is_loopback is netloc.is_loopback
