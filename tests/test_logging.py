"""Logs: one JSON access line per request (time, ip, method, path, status, duration, token
fingerprint, request id), never a token, password or reset code; under gunicorn every line,
the master's own included, is a JSON object."""

import contextlib
import datetime
import json
import logging
import os
import re
import select
import threading
import time

import httpx
import pytest
from pythonjsonlogger.core import BaseJsonFormatter

from security.tokens import fingerprint
from tests import fixtures
from tests.fixtures import DEMO, start_gunicorn, stop_gunicorn
from web import request_log

ACCESS_FIELDS = {"ip", "method", "path", "endpoint", "status", "duration_ms", "token_fp", "request_id"}


def as_json(record):
    """The record as the app's stderr handler writes it."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, BaseJsonFormatter))
    line = handler.format(record)
    assert "\n" not in line
    return json.loads(line)


def test_one_json_access_line_per_request(client, api, access_lines, caplog):
    token = api.login("alice")
    before = len(access_lines())
    response = client.get("/auth/profile", headers={"token": token, "X-Request-ID": "trace-42"})
    assert response.status_code == 200
    (line,) = access_lines()[before:]
    # The same fields, in the same order, as every other line the app writes.
    logging.getLogger("auth.example").warning("other", extra={"detail": 1})
    other = as_json(next(r for r in caplog.records if r.name == "auth.example"))
    assert list(line)[:5] == list(other)[:5] == ["asctime", "levelname", "name", "process", "message"]
    assert list(line)[-1] == list(other)[-1] == "timestamp"
    assert (line["levelname"], line["name"], line["process"], line["message"]) == (
        "INFO",
        "auth.access",
        os.getpid(),
        "request",
    )
    assert line["asctime"] <= other["asctime"] and line["timestamp"] <= other["timestamp"]
    # asctime is the local time of the same instant as the UTC timestamp, to the millisecond.
    instant = datetime.datetime.fromisoformat(line["timestamp"])
    assert instant.utcoffset() == datetime.timedelta(0)
    local = instant.astimezone()
    assert line["asctime"] == local.strftime("%Y-%m-%d %H:%M:%S,") + f"{local.microsecond // 1000:03d}"
    assert ACCESS_FIELDS | {"asctime", "timestamp", "levelname", "process"} <= set(line)
    assert line["ip"] == "127.0.0.1"
    assert (line["method"], line["path"], line["endpoint"], line["status"]) == (
        "GET",
        "/auth/profile",
        "auth.profile",
        200,
    )
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["token_fp"] == fingerprint(token) and len(line["token_fp"]) == 12
    assert line["request_id"] == "trace-42" == response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/nope", {}, 404),
        ("get", "/auth/login", {}, 405),
        ("post", "/auth/login", {"data": "x", "content_type": "text/plain"}, 415),
        ("post", "/check-token", {"json": {"token": "0" * 64, "service_id": "stock"}}, 401),
        ("get", "/users", {"headers": {"token": "0" * 64}}, 401),
    ],
)
def test_errors_are_logged_too(client, access_lines, method, path, kwargs, status):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status
    (line,) = access_lines()
    assert (line["method"], line["path"], line["status"]) == (method.upper(), path, status)
    assert line["request_id"] == response.headers["X-Request-ID"]


def test_the_body_token_of_check_token_is_fingerprinted(client, api, access_lines):
    token = api.login("alice")
    before = len(access_lines())
    client.post("/check-token", json={"token": token, "service_id": "stock"})
    (line,) = access_lines()[before:]
    assert line["token_fp"] == fingerprint(token)


def test_the_access_logger_level_decides(client, access_lines):
    logger = logging.getLogger("auth.access")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        assert client.get("/healthz").status_code == 200
        assert access_lines() == []
    finally:
        logger.setLevel(level)
    client.get("/healthz")
    assert [line["path"] for line in access_lines()] == ["/healthz"]


def test_buffered_lines_are_written_whole_in_writes_of_at_most_pipe_buf(monkeypatch):
    """Threads add lines of many lengths; what reaches the pipe is every line, whole, in
    writes that each end a line and fit PIPE_BUF (so a pipe never interleaves them)."""
    writes = []
    real_write = os.write
    read_end, write_end = os.pipe()

    def spying_write(fd, data):
        if fd == write_end:
            writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(request_log.os, "write", spying_write)
    buffer = request_log.LineBuffer(fd=write_end, delay=60)
    sent = [f'{{"n":{i},"pad":"{"x" * (i % 700)}"}}\n'.encode() for i in range(800)]

    def add(part):
        for line in part:
            buffer.add(line)

    threads = [threading.Thread(target=add, args=(sent[i::4],)) for i in range(4)]
    reader = threading.Thread(target=lambda: received.append(read_all(read_end)))
    received = []
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    buffer.flush()
    os.close(write_end)
    reader.join()
    os.close(read_end)
    assert sorted(received[0].splitlines(keepends=True)) == sorted(sent)
    assert all(len(data) <= select.PIPE_BUF and data.endswith(b"\n") for data in writes)
    assert len(writes) < len(sent) / 4  # batched, not a write per line


def read_all(fd):
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_buffered_lines_reach_stderr_within_a_second_unflushed():
    read_end, write_end = os.pipe()
    buffer = request_log.LineBuffer(fd=write_end, delay=0.2)
    buffer.add(b'{"n":1}\n')
    os.set_blocking(read_end, False)
    deadline = time.monotonic() + 5
    got = b""
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
        with contextlib.suppress(BlockingIOError):
            got = os.read(read_end, 100)
    os.close(read_end)
    assert got == b'{"n":1}\n'


def test_a_forked_child_does_not_write_its_parents_lines_again():
    read_end, write_end = os.pipe()
    buffer = request_log.LineBuffer(fd=write_end, delay=60)
    buffer.add(b"parent\n")
    pid = os.fork()
    if pid == 0:  # the child: a line of its own, written at its exit
        buffer.add(b"child\n")
        buffer.flush()
        os._exit(0)
    os.waitpid(pid, 0)
    buffer.flush()
    os.close(write_end)
    assert sorted(read_all(read_end).splitlines()) == [b"child", b"parent"]
    os.close(read_end)


def test_no_thread_for_the_flusher_fails_no_request(monkeypatch):
    read_end, write_end = os.pipe()
    buffer = request_log.LineBuffer(fd=write_end, delay=0.05)

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patched:
        patched.setattr(threading.Thread, "start", no_thread)
        buffer.add(b"first\n")  # no exception: the line waits in the buffer
    buffer.add(b"second\n")  # this one starts the flusher
    os.set_blocking(read_end, False)
    deadline, got = time.monotonic() + 5, b""
    while got.count(b"\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        with contextlib.suppress(BlockingIOError):
            got += os.read(read_end, 100)
    os.close(read_end)
    assert got == b"first\nsecond\n"


def test_a_forked_child_draws_request_ids_and_a_process_id_of_its_own():
    """A gunicorn master that imported this module forks workers that must not share ids."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write_end, f"{request_log._process_prefix} {next(request_log._count)} {request_log._pid}".encode())
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(write_end)
    prefix, first, child_pid = read_all(read_end).decode().split()
    os.close(read_end)
    assert prefix != request_log._process_prefix and len(prefix) == 16
    assert (int(first), int(child_pid)) == (0, pid)


def reset_code(mailbox, address, mailed):
    """The code of the first reset mail to `address` after its first `mailed` mails (sent in the background)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for message in mailbox.to(address)[mailed:]:
            found = re.search(r"code=([A-Za-z0-9_-]+)", message.get_content())
            if found:
                return found.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no reset mail to {address}")


def test_no_secret_reaches_any_log_line(client, api, mailbox, caplog, access_lines):
    """Login, token use, logout, password change and reset: no line holds a secret."""
    # A user of its own, so the reset mail goes to an address no other test reads.
    password, address = "juniper-quiet-anchor-5", "log-secrets@example.com"
    api.create_user("log-secrets", password=password, email=address)
    secrets = [password]
    with caplog.at_level(logging.DEBUG):
        token = api.login("log-secrets", password)
        secrets.append(token)
        client.post("/check-token", json={"token": token, "service_id": "stock"})
        client.post("/auth/login", json={"username": "log-secrets", "password": "not-its-password-9"})
        secrets.append("not-its-password-9")
        client.put(
            "/auth/password",
            json={"current_password": password, "new_password": "lighthouse-quiet-river-7"},
            headers={"token": token},
        )
        secrets.append("lighthouse-quiet-river-7")
        mailed = len(mailbox.to(address))
        client.post("/auth/password/forgot", json={"username": "log-secrets"})
        code = reset_code(mailbox, address, mailed)
        secrets.append(code)
        reset = client.post("/auth/password/reset", json={"code": code, "password": "harbor-lights-at-dawn-3"})
        assert reset.status_code == 200
        secrets.append("harbor-lights-at-dawn-3")
        client.post("/auth/logout", headers={"token": token})
    assert len(access_lines()) >= 7
    # aiosmtpd's own log ("mail.log") belongs to the test mailbox, which reads the mail itself.
    records = [json.dumps(as_json(record)) for record in caplog.records if record.name != "mail.log"]
    written = "\n".join(records + [json.dumps(line) for line in access_lines()])
    for secret in secrets:
        assert secret not in written


def test_gunicorn_writes_only_json_lines(postgres, mailbox, tmp_path):
    url = postgres.create_database("auth_logging")
    server = start_gunicorn(fixtures.test_settings(url, mailbox), tmp_path)
    try:
        login = httpx.post(f"{server.url}/auth/login", json={"username": "bob", "password": DEMO["bob"]})
        token = login.json()["token"]
        profile = httpx.get(f"{server.url}/auth/profile", headers={"token": token, "X-Request-ID": "live-trace-1"})
        assert profile.headers["X-Request-ID"] == "live-trace-1"
        httpx.get(f"{server.url}/nope")
    finally:
        stop_gunicorn(server)

    text = server.log()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    messages = [line["message"] for line in lines if line["name"] == "gunicorn.error"]
    # The master's lines, from start to shutdown, are JSON like the rest.
    assert any(message.startswith("Listening at:") for message in messages)
    assert any(message.startswith("Booting worker") for message in messages)
    assert "Shutting down: Master" in messages
    access = [line for line in lines if line["name"] == "auth.access"]
    (traced,) = [line for line in access if line["request_id"] == "live-trace-1"]
    assert (traced["path"], traced["status"], traced["token_fp"]) == ("/auth/profile", 200, fingerprint(token))
    assert {(line["path"], line["status"]) for line in access} >= {("/auth/login", 200), ("/nope", 404)}
    assert all(set(line) >= ACCESS_FIELDS for line in access)
    assert token not in text and DEMO["bob"] not in text
