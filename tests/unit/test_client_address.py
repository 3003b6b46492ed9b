"""The client's address behind trusted proxies (core.access.client_address): what the
access log shows and what failed logins are counted by."""

from __future__ import annotations

import pytest

from registry.core.access import client_address, trusted_networks

PROXIES = trusted_networks(["127.0.0.1", "10.1.0.0/16"])


@pytest.mark.parametrize("peer,forwarded,client", [
    ("127.0.0.1", None, "127.0.0.1"),                        # no header: the proxy itself
    ("127.0.0.1", "203.0.113.9", "203.0.113.9"),
    ("127.0.0.1", "203.0.113.9, 127.0.0.1", "203.0.113.9"),  # proxies of ours skipped
    ("127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),    # the client's own claim ignored
    ("127.0.0.1", "203.0.113.9, 10.1.2.3", "203.0.113.9"),   # through two proxies of ours
    ("127.0.0.1", "10.1.2.3", "127.0.0.1"),                  # only ours: the peer
    ("127.0.0.1", "not-an-address", "127.0.0.1"),
    ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
    ("192.0.2.5", "203.0.113.9", "192.0.2.5"),               # not a proxy of ours
    ("", "203.0.113.9", ""),
])
def test_client_address(peer: str, forwarded: str | None, client: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == client


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address("127.0.0.1", "203.0.113.9", ()) == "127.0.0.1"
