"""web/hot_path.py answers /check-token and /auth/profile without Flask's dispatch: its answers
must be the ones Flask gives for the same request, whatever the outcome.

A request with an Origin header takes the Flask path (web/cors.py answers it there), so each
request is sent twice, without and with one, and the two answers compared.
"""

import pytest

from db import queries as q
from tests.fixtures import Api, db_rows

ORIGIN = {"Origin": "https://not-configured.example"}  # no CORS here: changes nothing but the path


def answer(response):
    """What a client sees, but what differs from one request to the next (its id, the clock)."""
    body = response.get_json(silent=True)
    if isinstance(body, dict):
        body.pop("expires_in", None)
    headers = {name.lower(): value for name, value in response.headers if name.lower() != "x-request-id"}
    return response.status_code, headers, body if body is not None else response.data


def both(client, method, path, **kwargs):
    """The answers of the hot path and of Flask to the same request."""
    headers = kwargs.pop("headers", {})
    hot = client.open(path, method=method, headers=headers, **kwargs)
    flask = client.open(path, method=method, headers={**headers, **ORIGIN}, **kwargs)
    return answer(hot), answer(flask)


def check_cases(token, other_user_id):
    return {
        "valid, token in body": {"json": {"token": token, "service_id": "stock"}},
        "valid, token in header": {"json": {"service_id": "stock"}, "headers": {"token": token}},
        "valid, bearer": {"json": {"service_id": "stock"}, "headers": {"Authorization": f"Bearer {token}"}},
        "dead token": {"json": {"token": "0" * 64, "service_id": "stock"}},
        "another user's": {"json": {"token": token, "service_id": "stock", "user_id": other_user_id}},
        "no such service": {"json": {"token": token, "service_id": "nope"}},
        "no role there": {"json": {"token": token, "service_id": "auth"}},
        "validation": {"json": {"token": ["x"], "service_id": 2**70}},
        "no body": {},
        "not JSON": {"data": "{", "content_type": "application/json"},
        "not an object": {"data": "[]", "content_type": "application/json"},
        "wrong type": {"data": "{}", "content_type": "text/plain"},
        "too large": {"data": "{" + " " * 70_000 + "}", "content_type": "application/json"},
    }


@pytest.mark.parametrize("case", list(check_cases("", 0)))
def test_check_token_answers_as_flask_does(client, api, test_database, case):
    token = api.login("alice")
    (bob,) = db_rows(test_database, "select id from auth.users where username = 'bob'")
    kwargs = check_cases(token, bob["id"])[case]
    hot, flask = both(client, "POST", "/check-token", **kwargs)
    assert hot == flask
    assert hot[1]["cache-control"] == "no-store" and hot[1]["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("case", "headers"),
    [("valid", "token"), ("bearer", "bearer"), ("dead token", "dead"), ("no token", None)],
)
def test_profile_answers_as_flask_does(client, api, case, headers):
    token = api.login("alice")
    sent = {"token": {"token": token}, "bearer": {"Authorization": f"Bearer {token}"}, "dead": {"token": "0" * 64}}
    hot, flask = both(client, "GET", "/auth/profile", headers=sent.get(headers, {}))
    assert hot == flask


def test_a_request_without_origin_never_reaches_flask(app, client, api):
    token = api.login("alice")

    def not_here():
        raise AssertionError("Flask's view ran")

    app.view_functions["tokens.check_token"] = app.view_functions["auth.profile"] = not_here
    assert client.post("/check-token", json={"token": token, "service_id": "stock"}).status_code == 200
    assert client.get("/auth/profile", headers={"token": token}).status_code == 200
    assert client.get("/auth/profile", headers={"token": token, **ORIGIN}).status_code == 500


def test_a_failure_is_a_logged_500_on_both_paths(client, api, monkeypatch, caplog):
    token = api.login("alice")

    def broken(conn, **params):
        raise RuntimeError("boom")

    monkeypatch.setattr(q, "check_token", broken)
    hot, flask = both(client, "POST", "/check-token", json={"token": token, "service_id": "stock"})
    assert hot == flask
    assert hot[0] == 500 and hot[2]["error"] == "internal_error"
    assert [r.exc_info[0] for r in caplog.records if r.name == "web.errors"] == [RuntimeError, RuntimeError]


def test_with_cors_configured_every_answer_varies_by_origin(app_factory):
    client = app_factory(CORS_ALLOWED_ORIGINS=["https://app.example"]).test_client()
    token = Api(client).login("alice")
    response = client.post("/check-token", json={"token": token, "service_id": "stock"})
    assert response.status_code == 200 and response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Origin" not in response.headers
    response = client.get("/auth/profile", headers={"token": token, "Origin": "https://app.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"


def test_other_methods_on_the_hot_paths_are_flasks(client, api):
    token = api.login("alice")
    head = client.head("/auth/profile", headers={"token": token})
    assert head.status_code == 200 and head.data == b""
    wrong = client.get("/check-token")
    assert wrong.status_code == 405 and set(wrong.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}
    assert wrong.get_json()["error"] == "method_not_allowed"
