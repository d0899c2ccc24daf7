"""The example stock backend (clients/python/examples/stock_api.py) against the live auth service."""

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "stock_api.py"


@pytest.fixture
def stock_api(auth_url, monkeypatch):
    """The example's Flask app, loaded as `python clients/python/examples/stock_api.py` would run it."""
    monkeypatch.setenv("AUTH_BASE_URL", auth_url)
    spec = importlib.util.spec_from_file_location("stock_api_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app.test_client()


def test_a_reader_lists_items_but_may_not_add_one(stock_api, alice_token):
    headers = {"token": alice_token}
    listed = stock_api.get("/stock/items", headers=headers)
    assert listed.status_code == 200
    assert listed.json["seen_by"] == "alice"
    added = stock_api.post("/stock/items", headers=headers, json={"sku": "NUT-M6"})
    assert added.status_code == 403
    assert added.json["error"] == "forbidden"


def test_a_writer_adds_an_item_that_readers_see(stock_api, admin, auth_client, alice_token):
    writer = admin.create_user(service="stock", role=admin.stock_writer_role())
    token = auth_client.login(writer.username, writer.password).token
    added = stock_api.post("/stock/items", headers={"token": token}, json={"sku": "NUT-M6"})
    assert added.status_code == 201
    assert added.json["added_by"] == writer.username
    listed = stock_api.get("/stock/items", headers={"token": alice_token})
    assert "NUT-M6" in [item["sku"] for item in listed.json["items"]]


def test_no_token_is_401(stock_api):
    assert stock_api.get("/stock/items").json["error"] == "invalid_token"


def test_it_runs_with_one_command(auth_url, alice_token):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "AUTH_BASE_URL": auth_url, "PORT": str(port)}
    server = subprocess.Popen([sys.executable, str(EXAMPLE)], env=env)
    try:
        url = f"http://127.0.0.1:{port}/stock/items"
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.get(url, headers={"token": alice_token})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the example did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["seen_by"] == "alice"
    finally:
        server.terminate()
        server.wait(timeout=10)
