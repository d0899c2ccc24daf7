"""Two-step login: enrolment, the second step with a TOTP or a recovery code, replays,
expired and reused mfa_tokens, throttling of wrong codes, the policy for administrators,
removal and an administrator's reset, encryption at rest and its key rotation, and the
clock window."""

import threading
import time

import pyotp
import pytest
from cryptography.fernet import Fernet

from app import create_app
from tests.fixtures import DEMO, assert_error, db_rows, last_audit_id, wait_for_outbox
from tests.test_delegation import PASSWORD, people, usrw  # noqa: F401 (fixtures)


def code(secret, steps_back=0):
    """The code of the current 30 s step (or one before); never a moment before a step ends,
    so the server judges it in the same step."""
    if 30 - time.time() % 30 < 1.5:
        time.sleep(1.6)
    return pyotp.TOTP(secret).at(time.time() - 30 * steps_back)


def login(client, username="alice", password=None):
    return client.post("/auth/login", json={"username": username, "password": password or DEMO[username]})


def headers_of(client, username="alice", password=None):
    answer = login(client, username, password)
    assert answer.status_code == 200 and "token" in answer.get_json(), answer.get_json()
    return {"token": answer.get_json()["token"]}


def enrol(client, headers):
    """Enrol with the previous step's code, so the current step's is still unused; the secret
    and the recovery codes."""
    started = client.post("/auth/mfa/totp", headers=headers)
    assert started.status_code == 201, started.get_json()
    secret = started.get_json()["secret"]
    confirmed = client.post("/auth/mfa/totp/confirm", json={"code": code(secret, 1)}, headers=headers)
    assert confirmed.status_code == 200, confirmed.get_json()
    return secret, confirmed.get_json()["recovery_codes"]


def first_step(client, username="alice", password=None):
    answer = login(client, username, password)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["mfa_required"] is True and "token" not in body
    return body["mfa_token"]


def second_step(client, mfa_token, value):
    return client.post("/auth/login/mfa", json={"mfa_token": mfa_token, "code": value})


def audit_names(url, since):
    return [r["event"] for r in db_rows(url, "select event from auth.audit_events where id > %s order by id", [since])]


@pytest.fixture
def enrolled(client):
    """Alice with TOTP: her secret and recovery codes."""
    return enrol(client, headers_of(client))


# --- enrolment ------------------------------------------------------------------------------


def test_enrolment_answers_a_secret_for_authenticator_apps(client):
    started = client.post("/auth/mfa/totp", headers=headers_of(client))
    assert started.status_code == 201
    body = started.get_json()
    totp = pyotp.parse_uri(body["otpauth_uri"])
    assert totp.secret == body["secret"] and totp.digits == 6 and totp.interval == 30
    assert totp.issuer == "Eqeqo Auth" and totp.name == "alice"
    assert len(body["secret"]) == 32  # 160 bits of base32


def test_a_wrong_confirmation_code_activates_nothing(client, test_database):
    headers = headers_of(client)
    secret = client.post("/auth/mfa/totp", headers=headers).get_json()["secret"]
    wrong = f"{(int(code(secret)) + 1) % 1_000_000:06d}"
    assert_error(client.post("/auth/mfa/totp/confirm", json={"code": wrong}, headers=headers), 400, "invalid_mfa_code")
    assert "token" in login(client).get_json()  # still a one-step login
    assert_error(
        client.post("/auth/mfa/totp/confirm", json={"code": "12345"}, headers=headers), 400, "invalid_mfa_code"
    )


def test_confirmation_answers_ten_single_use_recovery_codes_stored_as_digests(client, enrolled, test_database, mailbox):
    _, codes = enrolled
    # The owner hears of it: a stolen session cannot add an app unnoticed.
    wait_for_outbox(test_database)
    assert "second factor was added" in mailbox.wait_for("alice@example.com")["Subject"]
    assert len(set(codes)) == 10
    stored = db_rows(test_database, "select * from auth.mfa_recovery_codes")
    assert len(stored) == 10 and not any(c.encode() in bytes(r["code_hash"]) for c in codes for r in stored)


def test_no_column_holds_the_plain_secret(client, enrolled, test_database, app):
    secret, _ = enrolled
    (row,) = db_rows(test_database, "select * from auth.mfa_totp")
    assert secret not in str(row)
    key = app.config["MFA_ENCRYPTION_KEYS"][0]
    assert Fernet(key).decrypt(row["secret_encrypted"].encode()).decode() == secret


def test_starting_again_while_enrolled_is_409(client, enrolled):
    assert_error(client.post("/auth/mfa/totp", headers=headers_of_mfa(client, enrolled[0])), 409, "conflict")


def headers_of_mfa(client, secret, username="alice"):
    answer = second_step(client, first_step(client, username), code(secret))
    assert answer.status_code == 200, answer.get_json()
    return {"token": answer.get_json()["token"]}


def test_enrolment_needs_a_token(client):
    assert_error(client.post("/auth/mfa/totp"), 401, "missing_token")
    assert_error(client.post("/auth/mfa/totp", headers={"token": "0" * 64}), 401, "invalid_token")


# --- the two steps --------------------------------------------------------------------------


def test_login_takes_two_steps_and_the_second_answers_the_usual_body(client, enrolled, test_database):
    secret, _ = enrolled
    since = last_audit_id(test_database)
    first = login(client).get_json()
    assert set(first) == {"mfa_required", "mfa_token", "expires_in"} and first["expires_in"] == 300
    assert audit_names(test_database, since) == []  # a right password alone is no login
    answer = second_step(client, first["mfa_token"], code(secret))
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["payload"]["username"] == "alice" and body["expires_in"] > 0
    assert client.get("/auth/profile", headers={"token": body["token"]}).status_code == 200
    assert audit_names(test_database, since) == ["authn_mfa_success", "authn_login_success"]


def test_a_wrong_password_answers_as_before(client, enrolled):
    assert_error(login(client, password="not-the-right-password-1"), 401, "invalid_credentials")


def test_a_code_is_accepted_once(client, enrolled):
    secret, _ = enrolled
    value = code(secret)
    assert second_step(client, first_step(client), value).status_code == 200
    assert_error(second_step(client, first_step(client), value), 401, "invalid_mfa_code")


def test_the_clock_window_is_the_previous_step_never_two_back(client, enrolled, app):
    secret, _ = enrolled
    with app.app_context():
        from db import queries as q
        from security import mfa

        assert mfa.matching_step(secret, code(secret, 2)) is None
        assert mfa.matching_step(secret, pyotp.TOTP(secret).at(time.time() + 60)) is None
        assert mfa.matching_step(secret, code(secret, 1)) == int(time.time() // 30) - 1
    del q
    # Enrolment used the previous step; the current one is still good, once.
    assert second_step(client, first_step(client), code(secret)).status_code == 200


def test_a_recovery_code_is_spent_on_use(client, enrolled, test_database):
    _, codes = enrolled
    since = last_audit_id(test_database)
    assert second_step(client, first_step(client), codes[0].upper()).status_code == 200
    assert "authn_mfa_recovery_code_used" in audit_names(test_database, since)
    assert_error(second_step(client, first_step(client), codes[0]), 401, "invalid_mfa_code")
    assert second_step(client, first_step(client), codes[1].replace("-", "")).status_code == 200


def test_an_mfa_token_works_once(client, enrolled):
    secret, codes = enrolled
    mfa_token = first_step(client)
    assert second_step(client, mfa_token, code(secret)).status_code == 200
    assert_error(second_step(client, mfa_token, codes[0]), 401, "invalid_mfa_token")


def test_an_expired_mfa_token_is_refused(client, enrolled, test_database):
    secret, _ = enrolled
    mfa_token = first_step(client)
    db_rows(test_database, "update auth.mfa_challenges set expires_at = now() - interval '1 second'")
    assert_error(second_step(client, mfa_token, code(secret)), 401, "invalid_mfa_token")


def test_a_password_change_kills_the_pending_first_step(client, enrolled, test_database):
    secret, _ = enrolled
    mfa_token = first_step(client)
    db_rows(test_database, "update auth.users set credential_version = credential_version + 1 where username = 'alice'")
    assert_error(second_step(client, mfa_token, code(secret)), 401, "invalid_mfa_token")


def test_two_racing_second_steps_with_one_mfa_token_issue_one_session(app, client, enrolled):
    secret, codes = enrolled
    mfa_token, value = first_step(client), code(secret)
    barrier, statuses = threading.Barrier(8), []

    def racer(index):
        barrier.wait()
        guess = value if index % 2 else codes[index // 2]
        statuses.append(second_step(app.test_client(), mfa_token, guess).status_code)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(200) == 1 and set(statuses) <= {200, 401, 429}, statuses


def test_wrong_codes_count_in_the_accounts_throttle(client, enrolled, test_database):
    secret, _ = enrolled
    mfa_token = first_step(client)
    for _ in range(4):
        assert_error(second_step(client, mfa_token, "000000"), 401, "invalid_mfa_code")
    # The right password again does not start the count over.
    mfa_token = first_step(client)
    assert_error(second_step(client, mfa_token, "000000"), 401, "invalid_mfa_code")
    locked = second_step(client, mfa_token, code(secret))
    assert_error(locked, 429, "too_many_attempts")
    assert int(locked.headers["Retry-After"]) > 0
    assert "authn_mfa_fail" in audit_names(test_database, 0)


@pytest.mark.parametrize("body", [{}, {"mfa_token": "x"}, {"code": "123456"}, {"mfa_token": 5, "code": "1"}])
def test_a_malformed_second_step_is_400(client, body):
    assert_error(client.post("/auth/login/mfa", json=body), 400, "validation_error")


# --- policy: administrators must enrol ------------------------------------------------------


@pytest.fixture
def strict(app_factory):
    return app_factory(MFA_REQUIRED_FOR="admins").test_client()


def test_an_administrator_without_mfa_gets_a_session_good_only_for_enrolment(strict, test_database):
    answer = login(strict, "admin")
    assert answer.status_code == 200 and answer.get_json()["mfa_enrolment_required"] is True
    headers = {"token": answer.get_json()["token"]}
    assert_error(strict.get("/users", headers=headers), 403, "mfa_enrolment_required")
    check = strict.post("/check-token", json={"service_id": "auth"}, headers=headers)
    assert_error(check, 403, "mfa_enrolment_required")
    body = {"current_password": DEMO["admin"], "new_password": "lilac-thunder-harbor-93"}
    assert_error(strict.put("/auth/password", json=body, headers=headers), 403, "mfa_enrolment_required")
    profile = strict.get("/auth/profile", headers=headers)
    assert profile.status_code == 200 and profile.get_json()["mfa_enrolment_required"] is True
    secret, _ = enrol(strict, headers)
    # Enrolled: the same session now opens everything, and the next login takes two steps.
    assert strict.get("/users", headers=headers).status_code == 200
    assert "mfa_enrolment_required" not in strict.get("/auth/profile", headers=headers).get_json()
    assert second_step(strict, first_step(strict, "admin"), code(secret)).status_code == 200


def test_users_without_admin_permissions_log_in_as_before(strict):
    body = login(strict).get_json()
    assert "token" in body and "mfa_enrolment_required" not in body


def test_in_development_nobody_is_asked_to_enrol(client):
    assert "mfa_enrolment_required" not in login(client, "admin").get_json()


# --- removal and reset ----------------------------------------------------------------------


def test_removal_needs_the_password_and_a_code(client, enrolled, test_database):
    secret, codes = enrolled
    headers = headers_of_mfa(client, secret)  # this step's code is used now
    wrong_code = {"password": DEMO["alice"], "code": "000000"}
    assert_error(client.delete("/auth/mfa/totp", json=wrong_code, headers=headers), 401, "invalid_mfa_code")
    wrong_password = {"password": "not-the-right-password-1", "code": code(secret, 1)}
    assert_error(client.delete("/auth/mfa/totp", json=wrong_password, headers=headers), 401, "invalid_credentials")
    assert login(client).get_json()["mfa_required"] is True
    since = last_audit_id(test_database)
    used = {"password": DEMO["alice"], "code": code(secret)}
    assert_error(client.delete("/auth/mfa/totp", json=used, headers=headers), 401, "invalid_mfa_code")
    right = {"password": DEMO["alice"], "code": codes[0]}
    assert client.delete("/auth/mfa/totp", json=right, headers=headers).status_code == 200
    assert "token" in login(client).get_json()
    assert "authn_mfa_removed" in audit_names(test_database, since)


def test_an_administrator_resets_a_users_second_factor_audited_and_mailed(
    client, api, enrolled, test_database, mailbox
):
    alice = db_rows(test_database, "select id from auth.users where username = 'alice'")[0]["id"]
    since = last_audit_id(test_database)
    admin = headers_of(client, "admin")
    assert client.delete(f"/users/{alice}/mfa", headers=admin).status_code == 204
    assert "token" in login(client).get_json()
    assert "authn_mfa_reset" in audit_names(test_database, since)
    wait_for_outbox(test_database)
    assert "second factor was removed" in mailbox.wait_for("alice@example.com")["Subject"]
    assert_error(client.delete(f"/users/{alice}/mfa", headers=admin), 404, "not_found")


def test_reset_follows_the_delegation_rules(client, api, test_database, usrw):  # noqa: F811
    admin_headers = headers_of(client, "admin")
    enrol(client, admin_headers)
    admin_id = db_rows(test_database, "select id from auth.users where username = 'admin'")[0]["id"]
    refused = assert_error(client.delete(f"/users/{admin_id}/mfa", headers=usrw.headers), 403, "forbidden")
    assert "manage only those below you" in refused["message"]
    assert login(client, "admin").get_json()["mfa_required"] is True
    own = assert_error(client.delete(f"/users/{usrw.id}/mfa", headers=usrw.headers), 403, "forbidden")
    assert "own credentials" in own["message"]


# --- keys -----------------------------------------------------------------------------------


def test_rotating_the_encryption_key_keeps_every_enrolment(client, enrolled, test_database, mailbox):
    from click.testing import CliRunner

    from commands import rotate_mfa_keys
    from tests.fixtures import test_settings

    secret, _ = enrolled
    old = create_app({**test_settings(test_database, mailbox), "TESTING": True}).config["MFA_ENCRYPTION_KEYS"]
    new = Fernet.generate_key().decode()
    rotating = create_app({**test_settings(test_database, mailbox), "MFA_ENCRYPTION_KEYS": [new, *old]})
    result = CliRunner().invoke(rotate_mfa_keys, obj=rotating_info(rotating))
    assert result.exit_code == 0, result.output
    assert "re-encrypted 1" in result.output
    (row,) = db_rows(test_database, "select secret_encrypted from auth.mfa_totp")
    assert Fernet(new).decrypt(row["secret_encrypted"].encode()).decode() == secret
    rotating.extensions["db_pool"].close()


def test_rotating_without_the_key_in_use_changes_nothing(client, enrolled, test_database, mailbox):
    from click.testing import CliRunner

    from commands import rotate_mfa_keys
    from tests.fixtures import test_settings

    (before,) = db_rows(test_database, "select secret_encrypted from auth.mfa_totp")
    strangers = [Fernet.generate_key().decode(), Fernet.generate_key().decode()]
    rotating = create_app({**test_settings(test_database, mailbox), "MFA_ENCRYPTION_KEYS": strangers})
    result = CliRunner().invoke(rotate_mfa_keys, obj=rotating_info(rotating))
    rotating.extensions["db_pool"].close()
    assert result.exit_code == 1
    assert "opens with none of MFA_ENCRYPTION_KEYS; nothing was changed" in result.output
    assert db_rows(test_database, "select secret_encrypted from auth.mfa_totp") == [before]


def rotating_info(app):
    from flask.cli import ScriptInfo

    return ScriptInfo(create_app=lambda: app)


def test_removing_a_second_factor_nobody_has_is_409_and_counts_no_failure(client, test_database):
    body = {"password": "not-the-right-password-1", "code": "000000"}
    assert_error(client.delete("/auth/mfa/totp", json=body, headers=headers_of(client)), 409, "conflict")
    assert db_rows(test_database, "select count(*) as n from auth.login_failures where failures > 0")[0]["n"] == 0
