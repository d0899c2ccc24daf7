"""CORS: a page on a configured origin may call every route; any other origin, and any
service without CORS_ALLOWED_ORIGINS, gets no CORS header at all."""

import pytest

from tests.fixtures import assert_error

PAGE = "https://app.example"
OTHER_PAGE = "http://127.0.0.1:5173"
ALLOWED_HEADERS = {"token", "authorization", "content-type", "x-request-id", "idempotency-key"}
EXPOSED_HEADERS = {"retry-after", "x-request-id", "www-authenticate"}


def header_set(value):
    return {item.strip().lower() for item in value.split(",")}


def preflight(client, path, method, origin=PAGE):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "token, content-type",
        },
    )


def cors_headers(response):
    return {name for name, _ in response.headers if name.lower().startswith("access-control-")}


@pytest.fixture
def cors_client(app_factory):
    """The app with CORS open to two pages."""
    return app_factory(CORS_ALLOWED_ORIGINS=[PAGE, OTHER_PAGE]).test_client()


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/check-token", "POST"),
        ("/auth/login", "POST"),
        ("/auth/profile", "GET"),
        ("/auth/password", "PUT"),
        ("/users/2", "PUT"),
        ("/users/2", "DELETE"),
        ("/person-service-roles", "DELETE"),
    ],
)
def test_a_preflight_from_an_allowed_origin_is_204_with_methods_and_headers(cors_client, path, method):
    response = preflight(cors_client, path, method)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert method.lower() in header_set(response.headers["Access-Control-Allow-Methods"])
    assert header_set(response.headers["Access-Control-Allow-Headers"]) == ALLOWED_HEADERS
    assert "Origin" in response.vary
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_each_allowed_origin_is_echoed_exactly(cors_client):
    for origin in (PAGE, OTHER_PAGE):
        response = preflight(cors_client, "/auth/login", "POST", origin)
        assert response.headers["Access-Control-Allow-Origin"] == origin


def test_answers_to_an_allowed_origin_expose_the_headers_a_page_needs(cors_client):
    login = cors_client.post(
        "/auth/login", json={"username": "alice", "password": "maple-harbor-17"}, headers={"Origin": PAGE}
    )
    assert login.status_code == 200
    assert login.headers["Access-Control-Allow-Origin"] == PAGE
    assert header_set(login.headers["Access-Control-Expose-Headers"]) == EXPOSED_HEADERS
    assert "Origin" in login.vary
    assert "Access-Control-Allow-Credentials" not in login.headers


def test_error_answers_carry_the_cors_headers_too(cors_client):
    # Without them the page could not read why it was refused, nor the 401's challenge.
    response = cors_client.get("/auth/profile", headers={"Origin": PAGE})
    assert_error(response, 401, "missing_token")
    assert response.headers["WWW-Authenticate"]
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert "www-authenticate" in header_set(response.headers["Access-Control-Expose-Headers"])
    assert "Origin" in response.vary

    missing = cors_client.get("/nowhere", headers={"Origin": PAGE})
    assert_error(missing, 404, "not_found")
    assert missing.headers["Access-Control-Allow-Origin"] == PAGE


@pytest.mark.parametrize("origin", ["https://evil.example", "https://app.example.evil.example", "null", "*"])
def test_a_disallowed_origin_gets_no_cors_headers(cors_client, origin):
    response = preflight(cors_client, "/auth/login", "POST", origin)
    assert cors_headers(response) == set()
    assert response.status_code != 204  # Flask's own answer to OPTIONS, which no browser accepts

    login = cors_client.post(
        "/auth/login", json={"username": "alice", "password": "maple-harbor-17"}, headers={"Origin": origin}
    )
    assert login.status_code == 200
    assert cors_headers(login) == set()
    assert "Origin" in login.vary  # a cache must not hand this answer to an allowed page, nor the reverse


def test_a_call_without_origin_gets_no_cors_headers(cors_client):
    # Backends calling /check-token are no browsers and send no Origin.
    response = cors_client.get("/healthz")
    assert cors_headers(response) == set()


def test_without_configured_origins_nothing_is_added(app_factory):
    client = app_factory(CORS_ALLOWED_ORIGINS=[]).test_client()
    response = preflight(client, "/auth/login", "POST")
    assert response.status_code == 200  # Flask's automatic OPTIONS answer, untouched
    assert cors_headers(response) == set()
    assert "Origin" not in response.vary

    answer = client.get("/auth/profile", headers={"Origin": PAGE})
    assert answer.status_code == 401
    assert cors_headers(answer) == set()
    assert "Vary" not in answer.headers


@pytest.mark.parametrize(
    "origin", ["*", "https://app.example/", "app.example", "https://app.example/login", "https://*.example"]
)
def test_only_exact_origins_can_be_configured(app_factory, origin):
    with pytest.raises(SystemExit, match="CORS_ALLOWED_ORIGINS"):
        app_factory(CORS_ALLOWED_ORIGINS=[origin])
