"""Password recovery by mail, reset, change, and the password policy (API.md, Password
recovery and change; Security). The mails are read from the test SMTP server."""

import hashlib
import re
import socket
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures import Api, db_rows, wait_for_outbox

PASSWORD = "correct-horse-battery-9"
NEW_PASSWORD = "violet-harbour-lamp-31"
RESET_URL = "https://app.example/reset#code="  # PASSWORD_RESET_URL of the test settings
LINK = re.compile(re.escape(RESET_URL) + r"(\S+)")


@pytest.fixture
def person(api):
    """A user with a password at the test cost and an address no other test mails to."""
    email = f"erin-{uuid.uuid4().hex[:10]}@example.com"
    return {**api.create_user("erin", password=PASSWORD, email=email), "password": PASSWORD}


def forgot(client, username, **kwargs):
    response = client.post("/auth/password/forgot", json={"username": username}, **kwargs)
    assert response.status_code == 202, response.get_json()
    return response


def mailed_code(mailbox, address):
    """The code in the newest reset mail to `address`."""
    text = mailbox.wait_for(address).get_content()
    return LINK.search(text).group(1)


def request_code(client, mailbox, user):
    forgot(client, user["username"])
    return mailed_code(mailbox, user["email"])


def reset(client, code, password=NEW_PASSWORD):
    return client.post("/auth/password/reset", json={"code": code, "password": password})


def login(client, username, password):
    return client.post("/auth/login", json={"username": username, "password": password})


def token_of(client, user):
    response = login(client, user["username"], user["password"])
    assert response.status_code == 200
    return response.get_json()["token"]


def alive(client, token):
    return client.get("/auth/profile", headers={"token": token}).status_code == 200


def codes_of(url, user_id):
    return db_rows(url, "select * from auth.password_reset_codes where user_id = %s order by created_at", [user_id])


def assert_invalid_code(response):
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_reset_code"


# --- forgot -----------------------------------------------------------------------------


def test_forgot_answers_alike_whether_or_not_the_account_exists(client, mailbox, test_database, person):
    # A mailable account (by name and by email), one without email, a disabled one, nobody.
    names = [person["username"], person["email"].upper(), "bob", "carol", "nobody-at-all"]
    bodies = [forgot(client, name).get_json() for name in names]

    assert all(body == bodies[0] for body in bodies)
    assert set(bodies[0]) == {"message"}
    wait_for_outbox(test_database)
    assert len(codes_of(test_database, person["id"])) == 2
    assert db_rows(test_database, "select count(*) as n from auth.password_reset_codes")[0]["n"] == 2


def test_the_reset_link_comes_from_config_never_from_the_host_header(client, mailbox, person):
    spoofed = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}
    forgot(client, person["username"], headers=spoofed)

    mail = mailbox.wait_for(person["email"])
    text = mail.get_content()
    assert "evil" not in text
    code = LINK.search(text).group(1)
    # The code travels in the fragment, which browsers never send to a server.
    assert f"{RESET_URL}{code}" in text
    assert mail["From"] == "Eqeqo Auth <no-reply@eqeqo.local>"
    assert "reset" in mail["Subject"].lower()


def test_codes_are_random_and_stored_only_as_digests(client, mailbox, test_database, person):
    codes = [request_code(client, mailbox, person) for _ in range(2)]

    assert codes[0] != codes[1]
    assert all(len(code) >= 43 for code in codes)  # 256 bits, URL-safe base64
    rows = codes_of(test_database, person["id"])
    assert [bytes(row["code_hash"]) for row in rows] == [hashlib.sha256(code.encode()).digest() for code in codes]
    everything = db_rows(
        test_database,
        "select (select string_agg(c::text, ' ') from auth.password_reset_codes c)"
        " || (select string_agg(a::text, ' ') from auth.audit_events a) as text",
    )[0]["text"]
    assert not any(code in everything for code in codes)


def test_a_newer_request_voids_the_older_code(client, mailbox, person):
    older = request_code(client, mailbox, person)
    newer = request_code(client, mailbox, person)

    assert_invalid_code(reset(client, older))
    assert reset(client, newer).status_code == 200


@pytest.mark.parametrize("per_hour", [1, 3])
def test_at_most_reset_mails_per_hour_mails_per_account(app_factory, mailbox, test_database, per_hour):
    client = app_factory(RESET_MAILS_PER_HOUR=per_hour, FORGOT_LOGIN_MAX_REQUESTS=100).test_client()
    email = f"quota-{uuid.uuid4().hex[:10]}@example.com"
    user = Api(client).create_user("quentin", password=PASSWORD, email=email)

    for _ in range(per_hour + 2):
        forgot(client, "quentin")

    mails = wait_for_mails(mailbox, email, per_hour)
    wait_for_outbox(test_database)
    assert len(codes_of(test_database, user["id"])) == per_hour
    # The refused requests voided nothing: the newest mailed code still works; each code is
    # tried, and exactly one works.
    codes = [LINK.search(mail.get_content()).group(1) for mail in mails]
    assert sorted(reset(client, code).status_code for code in codes) == [200] + [400] * (per_hour - 1)
    wait_for_mails(mailbox, email, per_hour + 1)  # the notice of the reset
    assert len(codes_of(test_database, user["id"])) == per_hour

    # An hour later the account may ask again.
    db_rows(
        test_database,
        "update auth.password_reset_codes set created_at = created_at - interval '1 hour' where user_id = %s",
        [user["id"]],
    )
    forgot(client, "quentin")
    assert LINK.search(wait_for_mails(mailbox, email, per_hour + 2)[-1].get_content())


def wait_for_mails(mailbox, address, count):
    """Every mail to `address` once there are `count`; fails if fewer or more arrive."""
    deadline = time.monotonic() + 5
    while len(mailbox.to(address)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    mails = mailbox.to(address)
    assert len(mails) == count, [mail["Subject"] for mail in mails]
    return mails


# --- reset ------------------------------------------------------------------------------


def test_a_reset_sets_the_password_ends_every_session_and_says_so_by_mail(client, mailbox, person):
    tokens = [token_of(client, person) for _ in range(2)]
    code = request_code(client, mailbox, person)

    response = reset(client, code)

    assert response.status_code == 200
    assert response.get_json() == {"status": "password_reset"}
    assert not any(alive(client, token) for token in tokens)
    assert login(client, "erin", PASSWORD).status_code == 401
    assert login(client, "erin", NEW_PASSWORD).status_code == 200
    notice = mailbox.wait_for(person["email"])
    text = notice["Subject"] + notice.get_content()
    assert "erin" in text
    assert code not in text
    assert NEW_PASSWORD not in text and PASSWORD not in text


def test_a_code_works_only_once(client, mailbox, person):
    code = request_code(client, mailbox, person)
    assert reset(client, code).status_code == 200
    assert_invalid_code(reset(client, code, "yet-another-passphrase"))
    assert login(client, "erin", NEW_PASSWORD).status_code == 200


def test_sixteen_parallel_resets_with_one_code_let_exactly_one_through(app, client, mailbox, test_database, person):
    code = request_code(client, mailbox, person)
    start = threading.Barrier(16)

    def attempt(n):
        own_client = app.test_client()
        start.wait()
        return reset(own_client, code, f"parallel-passphrase-{n:02d}")

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(attempt, range(16)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [400] * 15, statuses
    winner = next(n for n, response in enumerate(responses) if response.status_code == 200)
    assert login(client, "erin", f"parallel-passphrase-{winner:02d}").status_code == 200
    assert [row["used_at"] is not None for row in codes_of(test_database, person["id"])] == [True]


@pytest.mark.parametrize(("age_seconds", "status"), [(14 * 60 + 50, 200), (15 * 60, 400)])
def test_a_code_lives_15_minutes(client, mailbox, test_database, person, age_seconds, status):
    code = request_code(client, mailbox, person)
    row = codes_of(test_database, person["id"])[0]
    assert (row["expires_at"] - row["created_at"]).total_seconds() == pytest.approx(900, abs=1)

    db_rows(
        test_database,
        "update auth.password_reset_codes set created_at = created_at - make_interval(secs => %(age)s),"
        " expires_at = expires_at - make_interval(secs => %(age)s)",
        {"age": age_seconds},
    )
    assert reset(client, code).status_code == status


@pytest.mark.parametrize("code", ["nope", "A" * 43, "x" * 256])
def test_an_unknown_code_is_refused(client, code):
    assert_invalid_code(reset(client, code))


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": "abc"},
        {"password": NEW_PASSWORD},
        {"code": 12, "password": NEW_PASSWORD},
        {"code": "", "password": "x"},
    ],
)
def test_a_reset_without_its_fields_is_a_validation_error(client, body):
    response = client.post("/auth/password/reset", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"


def test_a_refused_new_password_leaves_the_code_usable(client, mailbox, person):
    code = request_code(client, mailbox, person)
    refused = reset(client, code, "short")
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "validation_error"
    assert reset(client, code).status_code == 200


def test_a_code_of_a_user_disabled_since_is_refused(client, api, mailbox, person):
    code = request_code(client, mailbox, person)
    assert client.delete(f"/users/{person['id']}", headers=api.headers()).status_code == 204
    assert_invalid_code(reset(client, code))


# --- mail delivery ----------------------------------------------------------------------


@pytest.fixture
def stalled_smtp():
    """A port that accepts connections and never says a word, like a hung mail server."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


def test_forgot_takes_as_long_for_a_real_account_even_when_the_mail_server_hangs(app_factory, stalled_smtp):
    client = app_factory(
        SMTP_PORT=stalled_smtp,
        SMTP_TIMEOUT_SECONDS=3,
        RESET_MAILS_PER_HOUR=1000,
        FORGOT_IP_MAX_REQUESTS=1000,
        FORGOT_LOGIN_MAX_REQUESTS=1000,
    ).test_client()
    Api(client).create_user("hank", password=PASSWORD, email="hank@example.com")
    durations = {"hank": [], "nobody-at-all": []}
    for _ in range(10):
        for name, samples in durations.items():
            started = time.perf_counter()
            forgot(client, name)
            samples.append(time.perf_counter() - started)

    # Mailing in the request would cost the 3 s SMTP timeout each time.
    assert max(durations["hank"]) < 1.0, durations
    medians = {name: statistics.median(samples) for name, samples in durations.items()}
    assert abs(medians["hank"] - medians["nobody-at-all"]) < 0.05, medians


def test_without_smtp_host_mails_go_to_the_log_and_the_start_says_so(app_factory, mailbox, capsys):
    app = app_factory(SMTP_HOST=None)
    assert "mails, reset codes included, are written to the log" in capsys.readouterr().err
    client = app.test_client()
    mails_before = len(mailbox.to("alice@example.com"))  # the mailbox lives for the whole session

    forgot(client, "alice")

    deadline = time.monotonic() + 3
    logged = ""
    while "#code=" not in logged and time.monotonic() < deadline:
        time.sleep(0.05)
        logged += capsys.readouterr().err
    assert "mail not sent (no SMTP_HOST configured)" in logged
    assert RESET_URL in logged
    assert len(mailbox.to("alice@example.com")) == mails_before


# --- change -----------------------------------------------------------------------------


def change(client, token, current, new):
    return client.put(
        "/auth/password", json={"current_password": current, "new_password": new}, headers={"token": token}
    )


def test_a_change_needs_the_current_password_and_ends_the_other_sessions(client, person):
    mine, other = token_of(client, person), token_of(client, person)

    response = change(client, mine, PASSWORD, NEW_PASSWORD)

    assert response.status_code == 200
    assert response.get_json() == {"status": "password_changed", "revoked": 1}
    assert alive(client, mine)
    assert not alive(client, other)
    assert login(client, "erin", PASSWORD).status_code == 401
    assert login(client, "erin", NEW_PASSWORD).status_code == 200


def test_a_wrong_current_password_changes_nothing(client, person):
    mine, other = token_of(client, person), token_of(client, person)

    response = change(client, mine, "not-my-password-at-all", NEW_PASSWORD)

    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_credentials"
    assert alive(client, mine) and alive(client, other)
    assert login(client, "erin", PASSWORD).status_code == 200
    assert login(client, "erin", NEW_PASSWORD).status_code == 401


@pytest.mark.parametrize(("headers", "code"), [({}, "missing_token"), ({"token": "f" * 64}, "invalid_token")])
def test_a_change_needs_a_live_token(client, person, headers, code):
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    response = client.put("/auth/password", json=body, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == code
    assert login(client, "erin", PASSWORD).status_code == 200


@pytest.mark.parametrize("body", [{}, {"current_password": PASSWORD}, {"current_password": 1, "new_password": "x"}])
def test_a_change_without_its_fields_is_a_validation_error(client, person, body):
    response = client.put("/auth/password", json=body, headers={"token": token_of(client, person)})
    assert response.status_code == 400
    assert response.get_json()["error"] == "validation_error"


# --- the policy, wherever a password is set ---------------------------------------------

REFUSED = {
    "eleven characters": ("abcdefghijk", "must be 12 to 128 characters long"),
    "129 characters": ("p" * 129, "must be 12 to 128 characters long"),
    # Twelve characters as typed, six after NFKC (half-width katakana with a voicing mark).
    "short after NFKC": ("ｶﾞ" * 6, "must be 12 to 128 characters long"),
    "common": ("qwerty123456", "too common"),
    "common in capitals": ("1QAZ2WSX3EDC", "too common"),
    "the username": ("hello-{username}-friend", "must not contain the username"),
    "the username in capitals": ("HELLO-{USERNAME}-FRIEND", "must not contain the username"),
    # Long enough and on no list, and still guessed at once (zxcvbn's score below 3).
    "one letter repeated": ("aaaaaaaaaaaa", "too easy to guess"),
    "twelve spaces": (" " * 12, "too easy to guess"),
    "digits in a row": ("123456789012", "too easy to guess"),
    "a word twice": ("passwordpassword", "too easy to guess"),
}
ACCEPTED = {
    "twelve characters": "twelve-chars",
    "128 characters": "quiet-lemur-harbor-tango-" * 5 + "x12",
    "any unicode": "пароль-密码-كلمة-🔑",
    "twelve animals": "🦊🐢🐙🦉🐝🦀🦑🐌🦋🐞🦂🐡",
    # Ten characters as typed, thirteen after NFKC (the "ff", "fi" and "fl" ligatures).
    "long enough after NFKC": "ﬀﬁﬂ-wombat",
}


def set_password(kind, client, api, mailbox, person, password):
    """Try to set `password` through one of the four ways; the response and the username it was for."""
    if kind == "create":
        body = {"username": "grace", "password": password}
        return client.post("/users", json=body, headers=api.headers()), "grace"
    if kind == "update":
        return client.put(f"/users/{person['id']}", json={"password": password}, headers=api.headers()), "erin"
    if kind == "reset":
        return reset(client, request_code(client, mailbox, person), password), "erin"
    return change(client, token_of(client, person), PASSWORD, password), "erin"


WAYS = ["create", "update", "reset", "change"]


@pytest.mark.parametrize("case", REFUSED)
@pytest.mark.parametrize("kind", WAYS)
def test_a_weak_password_is_refused_with_the_reason(client, api, mailbox, test_database, person, kind, case):
    template, reason = REFUSED[case]
    target = "grace" if kind == "create" else "erin"
    password = template.format(username=target, USERNAME=target.upper())

    response, _ = set_password(kind, client, api, mailbox, person, password)

    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "validation_error"
    assert reason in body["fields"]["new_password" if kind == "change" else "password"]
    assert reason in body["message"]
    if kind == "create":
        assert db_rows(test_database, "select 1 from auth.users where username = 'grace'") == []
    else:
        assert login(client, "erin", PASSWORD).status_code == 200


@pytest.mark.parametrize("case", ACCEPTED)
@pytest.mark.parametrize("kind", WAYS)
def test_a_long_enough_uncommon_password_is_accepted(client, api, mailbox, person, kind, case):
    password = ACCEPTED[case]

    response, username = set_password(kind, client, api, mailbox, person, password)

    assert response.status_code in (200, 201), response.get_json()
    assert login(client, username, password).status_code == 200


def test_a_password_may_not_contain_a_new_username_either(client, api, person):
    body = {"username": "zelda", "password": "hello-zelda-friend"}
    response = client.put(f"/users/{person['id']}", json=body, headers=api.headers())
    assert response.status_code == 400
    assert "must not contain the username" in response.get_json()["fields"]["password"]


def full_width(text):
    """The full-width forms (U+FF01..U+FF5E) of printable ASCII letters."""
    return "".join(chr(ord(char) + 0xFEE0) if char.isalpha() else char for char in text)


@pytest.mark.parametrize(
    ("set_as", "log_in_as"),
    [
        (full_width("fullwidth-pass"), "fullwidth-pass"),  # as some keyboards type letters
        ("cafe\u0301-au-lait-noir", "caf\u00e9-au-lait-noir"),  # decomposed and composed accents
    ],
)
def test_passwords_are_compared_after_nfkc(client, api, set_as, log_in_as):
    api.create_user("ivan", password=set_as)
    assert login(client, "ivan", log_in_as).status_code == 200
    assert login(client, "ivan", set_as).status_code == 200
