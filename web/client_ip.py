"""The client's IP: the socket peer, or X-Forwarded-For when the peer is a trusted proxy."""

import ipaddress
from functools import lru_cache

from flask import current_app, request


@lru_cache(maxsize=8)
def _networks(proxies):
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _parse(text):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_ip():
    """Walk X-Forwarded-For from the right past trusted proxies; the first other hop is the client.

    Without trusted proxies the header is ignored, since any client can write it.
    """
    trusted = _networks(tuple(current_app.config["TRUSTED_PROXIES"]))
    peer = _parse(request.remote_addr or "")
    if peer is None:
        return request.remote_addr or "unknown"

    def is_trusted(address):
        return any(address in network for network in trusted)

    if not is_trusted(peer):
        return str(peer)
    hops = request.headers.get("X-Forwarded-For", "").split(",")
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        if not is_trusted(address):
            return str(address)
    return str(peer)
