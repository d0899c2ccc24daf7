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


def client_ip(environ=None):
    """Walk X-Forwarded-For from the right past trusted proxies; the first other hop is the client.

    Without trusted proxies the header is ignored, since any client can write it. Read from
    `environ`, or by default from the Flask request's.
    """
    if environ is None:
        environ = request.environ
    remote = environ.get("REMOTE_ADDR") or "unknown"
    proxies = current_app.config["TRUSTED_PROXIES"]
    if not proxies:
        # The socket peer as the server reports it: nothing to believe or to parse.
        return remote
    trusted = _networks(tuple(proxies))
    peer = _parse(remote)
    if peer is None:
        return remote

    def is_trusted(address):
        return any(address in network for network in trusted)

    if not is_trusted(peer):
        return str(peer)
    hops = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        if not is_trusted(address):
            return str(address)
    return str(peer)
