"""Mail goes through the outbox (mail.py, jobs.py): written with the change it tells about,
retried while the SMTP server is down, delivered after a restart of the service, sent once;
over implicit TLS (SMTPS) or STARTTLS. And password recovery costs the same for everyone
and is throttled per address and per login."""

import ssl
import statistics
import time
import uuid

import httpx
import pytest
import trustme

from tests import fixtures
from tests.fixtures import DEMO, Api, Mailbox, db_rows, start_gunicorn, stop_gunicorn, wait_for_outbox

PASSWORD = "correct-horse-battery-9"
NEW_PASSWORD = "violet-harbour-lamp-31"


def unique_address(name):
    return f"{name}-{uuid.uuid4().hex[:10]}@example.com"


def notices_for(client, count):
    """`count` users with unique addresses whose passwords an administrator changes: `count` mails."""
    api = Api(client)
    addresses = [unique_address(f"nora{n}") for n in range(count)]
    for n, address in enumerate(addresses):
        user = api.create_user(f"nora{n}", password=PASSWORD, email=address)
        response = client.put(f"/users/{user['id']}", json={"password": NEW_PASSWORD}, headers=api.headers())
        assert response.status_code == 200
    return addresses


def arrived_once_each(mailbox, addresses, timeout=10):
    deadline = time.monotonic() + timeout
    while any(not mailbox.to(address) for address in addresses) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # room for a duplicate to show up
    return [len(mailbox.to(address)) for address in addresses]


@pytest.fixture
def late_mailbox():
    """An SMTP server whose port is known but which is not started yet."""
    box = Mailbox()
    yield box
    if box.controller._thread:
        box.controller.stop()


def test_mail_waits_out_an_smtp_outage_and_arrives_exactly_once(app_factory, test_database, late_mailbox):
    app = app_factory(SMTP_PORT=late_mailbox.controller.port, JOB_RETRY_BASE_SECONDS=0.2, JOB_RETRY_MAX_SECONDS=0.5)
    addresses = notices_for(app.test_client(), 3)

    time.sleep(1.5)  # several attempts fail meanwhile
    failed = db_rows(test_database, "select attempts, last_error from auth.outbox where done_at is null")
    assert len(failed) == 3
    assert all(row["attempts"] >= 2 and "Connection" in row["last_error"] for row in failed)
    late_mailbox.controller.start()

    assert arrived_once_each(late_mailbox, addresses) == [1, 1, 1]
    wait_for_outbox(test_database)


def test_mail_queued_before_a_restart_of_the_service_is_delivered_after_it(postgres, tmp_path, late_mailbox):
    url = postgres.create_database("auth_restart")
    settings = {
        **fixtures.test_settings(url, late_mailbox),
        "JOB_RETRY_BASE_SECONDS": 0.2,
        "JOB_RETRY_MAX_SECONDS": 0.5,
    }
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    server = start_gunicorn(settings, tmp_path / "before")
    try:
        with httpx.Client(base_url=server.url) as http:
            admin = {
                "token": http.post("/auth/login", json={"username": "admin", "password": DEMO["admin"]}).json()["token"]
            }
            address = unique_address("rhea")
            user = http.post("/users", json={"username": "rhea", "password": PASSWORD, "email": address}, headers=admin)
            assert (
                http.put(f"/users/{user.json()['id']}", json={"password": NEW_PASSWORD}, headers=admin).status_code
                == 200
            )
    finally:
        stop_gunicorn(server)
    assert db_rows(url, "select count(*) as n from auth.outbox where done_at is null")[0]["n"] == 1

    late_mailbox.controller.start()
    server = start_gunicorn(settings, tmp_path / "after")
    try:
        assert arrived_once_each(late_mailbox, [address]) == [1]
    finally:
        stop_gunicorn(server)


@pytest.fixture(scope="module")
def certificate_authority():
    return trustme.CA()


@pytest.fixture(params=["implicit TLS", "STARTTLS"])
def tls_mailbox(request, certificate_authority, tmp_path):
    """An SMTP server that speaks TLS from the first byte, or only after STARTTLS; and the CA file."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(server_context)
    if request.param == "implicit TLS":
        box = Mailbox(ssl_context=server_context)
        settings = {"SMTP_TLS": True, "SMTP_STARTTLS": False}
    else:
        box = Mailbox(tls_context=server_context, require_starttls=True)
        settings = {"SMTP_TLS": False, "SMTP_STARTTLS": True}
    ca_file = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(ca_file))
    box.controller.start()
    yield box, {**settings, "SMTP_PORT": box.controller.port, "SMTP_CA_FILE": str(ca_file)}
    box.controller.stop()


def test_mail_is_delivered_over_tls(app_factory, tls_mailbox):
    box, settings = tls_mailbox
    addresses = notices_for(app_factory(**settings).test_client(), 1)
    assert arrived_once_each(box, addresses) == [1]


def test_a_server_certificate_the_ca_did_not_sign_is_refused(app_factory, tls_mailbox, test_database):
    box, settings = tls_mailbox
    notices_for(app_factory(**{**settings, "SMTP_CA_FILE": None}).test_client(), 1)
    time.sleep(1)
    assert box.messages == []
    errors = db_rows(test_database, "select last_error from auth.outbox where done_at is null")
    assert errors and "CERTIFICATE_VERIFY_FAILED" in errors[0]["last_error"]


# --- password recovery: the same work for everyone, and a limit -------------------------------


@pytest.fixture(scope="module")
def recovery_server(postgres, mailbox, tmp_path_factory):
    """A gunicorn without recovery limits in the way of repeated timing samples."""
    url = postgres.create_database("auth_recovery")
    settings = {
        **fixtures.test_settings(url, mailbox),
        "FORGOT_IP_MAX_REQUESTS": 100000,
        "FORGOT_LOGIN_MAX_REQUESTS": 100000,
    }
    server = start_gunicorn(settings, tmp_path_factory.mktemp("recovery"))
    yield server
    stop_gunicorn(server)


def test_forgot_takes_as_long_for_a_known_account_as_for_an_unknown_one(recovery_server):
    durations = {"alice@example.com": [], "nobody@example.com": []}
    with httpx.Client(base_url=recovery_server.url) as http:
        for _ in range(100):
            # Interleaved, so a slow moment of the machine hits both alike.
            for login, samples in durations.items():
                started = time.perf_counter()
                response = http.post("/auth/password/forgot", json={"username": login})
                samples.append(time.perf_counter() - started)
                assert response.status_code == 202

    known, unknown = (statistics.median(samples) for samples in durations.values())
    assert abs(known - unknown) <= 0.1 * unknown, {"known": known, "unknown": unknown}


def test_one_address_past_its_quota_gets_429_and_writes_no_audit_rows(app_factory, test_database):
    client = app_factory(FORGOT_IP_MAX_REQUESTS=4, FORGOT_LOGIN_MAX_REQUESTS=100).test_client()
    statuses = [
        client.post("/auth/password/forgot", json={"username": f"guess-{n}"}, environ_base={"REMOTE_ADDR": "192.0.2.5"})
        for n in range(10)
    ]

    assert [response.status_code for response in statuses] == [202] * 4 + [429] * 6
    assert all(int(response.headers["Retry-After"]) > 0 for response in statuses[4:])
    # Counted, not audited or queued one by one.
    assert db_rows(test_database, "select count from auth.request_counts where key = 'forgot-ip:192.0.2.5'") == [
        {"count": 10}
    ]
    assert db_rows(test_database, "select count(*) as n from auth.outbox")[0]["n"] == 4
    # Another address is not held back by it.
    other = client.post(
        "/auth/password/forgot", json={"username": "guess-0"}, environ_base={"REMOTE_ADDR": "192.0.2.6"}
    )
    assert other.status_code == 202


def test_one_login_past_its_quota_gets_429_from_any_address(app_factory):
    client = app_factory(FORGOT_LOGIN_MAX_REQUESTS=2).test_client()
    statuses = [
        client.post("/auth/password/forgot", json={"username": "Alice"}, environ_base={"REMOTE_ADDR": f"192.0.2.{n}"})
        for n in range(4)
    ]
    assert [response.status_code for response in statuses] == [202, 202, 429, 429]
    # Whether the account exists changes nothing.
    statuses = [
        client.post("/auth/password/forgot", json={"username": "nobody"}, environ_base={"REMOTE_ADDR": f"192.0.2.{n}"})
        for n in range(4)
    ]
    assert [response.status_code for response in statuses] == [202, 202, 429, 429]
