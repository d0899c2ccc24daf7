"""The Flask extension in front of a backend, asking the live auth service."""

import threading
from types import SimpleNamespace

import pytest
from eqeqo_auth_client import AuthClient
from eqeqo_auth_client.flask import EqeqoAuth
from flask import Flask, g


def make_backend(base_url, transport, clock, **options):
    """A stock backend with one route per kind of rule."""
    app = Flask(__name__)
    client = AuthClient(base_url, transport=transport)
    auth = EqeqoAuth(app, client=client, service="stock", clock=clock, **options)

    @app.get("/stock/items")
    @auth.require(permission="stock.read")
    def list_items():
        return {"user": g.auth.username, "permissions": list(g.auth.permissions)}

    @app.post("/stock/items")
    @auth.require()
    def add_item():
        return {"user": g.auth.username}, 201

    @app.get("/stock/audit")
    @auth.require(permission="stock.no-such-permission")
    def audit():
        return {}

    @app.get("/stock/clerks")
    @auth.require(role="clerk")
    def clerks_only():
        return {}

    @app.get("/stock/managers")
    @auth.require(role="manager")
    def managers_only():
        return {}

    @app.get("/sales/users/<int:user_id>/orders")
    @auth.require(service="sales")
    def orders(user_id):
        return {"user_id": g.auth.user_id}

    return app


@pytest.fixture
def backend(auth_url, transport, clock):
    """The backend's test client, its upstream call counter and its clock."""
    app = make_backend(auth_url, transport, clock)
    return SimpleNamespace(http=app.test_client(), transport=transport, clock=clock)


def checks(backend) -> int:
    return backend.transport.calls["/check-token"]


def test_a_valid_token_reaches_the_view_with_its_payload(backend, alice_token):
    response = backend.http.get("/stock/items", headers={"token": alice_token})
    assert response.status_code == 200
    assert response.json["user"] == "alice"
    assert "stock.read" in response.json["permissions"]


def test_bearer_authorization_is_accepted(backend, alice_token):
    headers = {"Authorization": f"Bearer {alice_token}"}
    assert backend.http.get("/stock/items", headers=headers).status_code == 200


@pytest.mark.parametrize("path", ["/stock/items", "/stock/items?token=abc", "/stock/items?token={token}"])
def test_no_token_header_is_401_without_asking(backend, alice_token, path):
    response = backend.http.get(path.format(token=alice_token))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert checks(backend) == 0


@pytest.mark.parametrize("token", ["0" * 64, "x" * 5000])
def test_a_dead_or_malformed_token_is_401(backend, token):
    response = backend.http.get("/stock/items", headers={"token": token})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"


def test_no_role_in_the_service_is_403(backend, admin, auth_client):
    stranger = admin.create_user()
    token = auth_client.login(stranger.username, stranger.password).token
    response = backend.http.get("/stock/items", headers={"token": token})
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"


def test_a_missing_permission_is_403(backend, alice_token):
    response = backend.http.get("/stock/audit", headers={"token": alice_token})
    assert response.status_code == 403
    assert response.json["error"] == "forbidden"


def test_a_required_role_is_enforced(backend, alice_token):
    headers = {"token": alice_token}
    assert backend.http.get("/stock/clerks", headers=headers).status_code == 200
    assert backend.http.get("/stock/managers", headers=headers).status_code == 403


def test_a_user_id_in_the_route_must_be_the_tokens_user(backend, alice, alice_token, clerk):
    headers = {"token": alice_token}
    own = backend.http.get(f"/sales/users/{alice.id}/orders", headers=headers)
    assert own.status_code == 200
    assert own.json["user_id"] == alice.id
    other = backend.http.get(f"/sales/users/{clerk.id}/orders", headers=headers)
    assert other.status_code == 403


def test_reads_within_the_window_ask_the_auth_service_once(backend, alice_token):
    headers = {"token": alice_token}
    for method in ("get", "get", "head", "get"):
        assert getattr(backend.http, method)("/stock/items", headers=headers).status_code == 200
        backend.clock.advance(15)
    assert checks(backend) == 1


def test_reads_ask_again_once_the_window_is_over(backend, alice_token):
    headers = {"token": alice_token}
    backend.http.get("/stock/items", headers=headers)
    backend.clock.advance(59)
    backend.http.get("/stock/items", headers=headers)
    assert checks(backend) == 1
    backend.clock.advance(1)
    assert backend.http.get("/stock/items", headers=headers).status_code == 200
    assert checks(backend) == 2


def test_the_window_may_be_shortened(auth_url, transport, clock, alice_token):
    http = make_backend(auth_url, transport, clock, cache_seconds=5).test_client()
    headers = {"token": alice_token}
    http.get("/stock/items", headers=headers)
    clock.advance(4)
    http.get("/stock/items", headers=headers)
    assert transport.calls["/check-token"] == 1
    clock.advance(1)
    http.get("/stock/items", headers=headers)
    assert transport.calls["/check-token"] == 2


def test_the_window_cannot_exceed_60_seconds(auth_url, transport, clock):
    with pytest.raises(ValueError):
        make_backend(auth_url, transport, clock, cache_seconds=61)


def test_a_cached_answer_never_outlives_the_token(auth_url, transport, clock, auth_client, alice):
    session = auth_client.login(alice.username, alice.password)
    clock.now = session.expires_at - 10
    http = make_backend(auth_url, transport, clock).test_client()
    headers = {"token": session.token}
    http.get("/stock/items", headers=headers)
    clock.advance(9)
    http.get("/stock/items", headers=headers)
    assert transport.calls["/check-token"] == 1
    clock.advance(1)
    http.get("/stock/items", headers=headers)
    assert transport.calls["/check-token"] == 2


def test_writes_always_ask_and_refresh_the_read_cache(backend, alice_token):
    headers = {"token": alice_token}
    assert backend.http.post("/stock/items", headers=headers).status_code == 201
    assert backend.http.post("/stock/items", headers=headers).status_code == 201
    assert checks(backend) == 2
    assert backend.http.get("/stock/items", headers=headers).status_code == 200
    assert checks(backend) == 2


def test_a_logged_out_token_loses_writes_at_once_and_reads_within_60_s(backend, auth_client, alice_token):
    headers = {"token": alice_token}
    assert backend.http.get("/stock/items", headers=headers).status_code == 200
    auth_client.logout(alice_token)
    # The contract's trade-off: a read may be served from a cached answer.
    assert backend.http.get("/stock/items", headers=headers).status_code == 200
    refused = backend.http.post("/stock/items", headers=headers)
    assert refused.status_code == 401
    assert refused.json["error"] == "invalid_token"
    assert backend.http.get("/stock/items", headers=headers).status_code == 401


def test_a_logged_out_token_loses_reads_when_the_window_ends(backend, auth_client, alice_token):
    headers = {"token": alice_token}
    backend.http.get("/stock/items", headers=headers)
    auth_client.logout(alice_token)
    backend.clock.advance(60)
    assert backend.http.get("/stock/items", headers=headers).status_code == 401


@pytest.mark.parametrize("cache_seconds", [60, 0])
def test_concurrent_reads_of_a_new_token_share_one_upstream_call(
    auth_url, transport, clock, alice_token, cache_seconds
):
    # The upstream call is held open so that all 50 reads arrive while it is in
    # flight; with the cache off only the single-flight can explain one call.
    transport.delay = 0.3
    app = make_backend(auth_url, transport, clock, cache_seconds=cache_seconds)
    start = threading.Barrier(50)
    statuses = []

    def read():
        http = app.test_client()
        start.wait()
        statuses.append(http.get("/stock/items", headers={"token": alice_token}).status_code)

    threads = [threading.Thread(target=read) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 50
    assert transport.calls["/check-token"] == 1


def test_auth_service_down_fails_closed_with_503(closed_port_url, transport, clock, alice_token):
    http = make_backend(closed_port_url, transport, clock).test_client()
    headers = {"token": alice_token}
    for response in (
        http.get("/stock/items", headers=headers),
        http.post("/stock/items", headers=headers),
    ):
        assert response.status_code == 503
        assert response.json["error"] == "auth_unavailable"
