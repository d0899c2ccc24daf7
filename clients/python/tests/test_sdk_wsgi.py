"""The WSGI middleware in front of a plain WSGI app, asking the live auth service."""

import json

import pytest
from eqeqo_auth_client import AuthClient, AuthMiddleware
from werkzeug.test import Client


def whoami(environ, start_response):
    """A bare WSGI app that answers with the payload the middleware left for it."""
    payload = environ["eqeqo_auth.payload"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"user": payload.username, "service": payload.service}).encode()]


def protect(base_url, transport, clock, **options):
    client = AuthClient(base_url, transport=transport)
    return Client(AuthMiddleware(whoami, client=client, clock=clock, **options))


@pytest.fixture
def http(auth_url, transport, clock):
    return protect(auth_url, transport, clock, service="stock")


def test_a_valid_token_reaches_the_app_with_its_payload(http, alice_token):
    response = http.get("/anything", headers={"token": alice_token})
    assert response.status_code == 200
    assert response.json == {"user": "alice", "service": "stock"}


def test_bearer_authorization_is_accepted(http, alice_token):
    response = http.get("/", headers={"Authorization": f"Bearer {alice_token}"})
    assert response.status_code == 200


def test_no_token_is_401(http, transport):
    response = http.get("/")
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert not transport.calls


def test_a_dead_token_is_401(http):
    response = http.get("/", headers={"token": "0" * 64})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"


@pytest.mark.parametrize(
    "options",
    [
        {"service": "manufacturing"},
        {"service": "stock", "permission": "stock.no-such-permission"},
        {"service": "stock", "role": "manager"},
    ],
)
def test_no_access_is_403(auth_url, transport, clock, alice_token, options):
    http = protect(auth_url, transport, clock, **options)
    response = http.get("/", headers={"token": alice_token})
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"


def test_reads_are_cached_and_writes_always_ask(http, transport, clock, alice_token):
    headers = {"token": alice_token}
    for _ in range(3):
        assert http.get("/", headers=headers).status_code == 200
        clock.advance(10)
    assert transport.calls["/check-token"] == 1
    for method in (http.post, http.put, http.patch, http.delete):
        assert method("/", headers=headers).status_code == 200
    assert transport.calls["/check-token"] == 5


def test_a_logged_out_token_loses_writes_at_once(http, auth_client, alice_token):
    headers = {"token": alice_token}
    assert http.get("/", headers=headers).status_code == 200
    auth_client.logout(alice_token)
    assert http.get("/", headers=headers).status_code == 200
    assert http.delete("/", headers=headers).status_code == 401


def test_auth_service_down_fails_closed_with_503(closed_port_url, transport, clock, alice_token):
    http = protect(closed_port_url, transport, clock, service="stock")
    for method in (http.get, http.post):
        response = method("/", headers={"token": alice_token})
        assert response.status_code == 503
        assert response.json["error"] == "auth_unavailable"
