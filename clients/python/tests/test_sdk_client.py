"""AuthClient against the live auth service: every call, and its error mapping."""

import re
import secrets
import time

import pytest
from eqeqo_auth_client import (
    AuthClient,
    AuthUnavailable,
    BadRequest,
    Forbidden,
    InvalidCredentials,
    InvalidResetCode,
    InvalidToken,
    TooManyAttempts,
)

DEAD_TOKEN = "0" * 64


def reset_code(message) -> str:
    """Pull the reset code out of the link's URL fragment in a mail."""
    body = message.get_body(preferencelist=("plain", "html")) or message
    match = re.search(r"#code=([^\s\"'<>&]+)", body.get_content())
    assert match, body.get_content()
    return match.group(1)


def test_login_returns_a_session(auth_client, alice):
    session = auth_client.login(alice.username, alice.password)
    assert session.username == "alice"
    assert isinstance(session.user_id, int)
    assert session.token
    assert session.expires_in > 0
    assert session.expires_at > time.time()
    assert session.token not in repr(session)


def test_login_accepts_the_email(auth_client, alice):
    assert auth_client.login(alice.email, alice.password).username == "alice"


def test_wrong_password_raises_invalid_credentials(auth_client, clerk):
    with pytest.raises(InvalidCredentials) as caught:
        auth_client.login(clerk.username, "wrong-password-123")
    assert caught.value.status == 401
    assert caught.value.code == "invalid_credentials"


def test_five_failures_lock_the_account_with_retry_after(auth_client, clerk):
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            auth_client.login(clerk.username, "wrong-password-123")
    with pytest.raises(TooManyAttempts) as caught:
        auth_client.login(clerk.username, clerk.password)
    assert caught.value.status == 429
    assert 0 < caught.value.retry_after <= 15 * 60


def test_profile_lists_the_grants_in_every_service(auth_client, alice_token):
    profile = auth_client.profile(alice_token)
    assert (profile.username, profile.email) == ("alice", "alice@example.com")
    stock = next(access for access in profile.services if access.service == "stock")
    assert "clerk" in stock.roles
    assert "stock.read" in stock.permissions
    assert profile.expires_at > time.time()


def test_profile_of_a_dead_token_raises_invalid_token(auth_client):
    with pytest.raises(InvalidToken) as caught:
        auth_client.profile(DEAD_TOKEN)
    assert caught.value.code == "invalid_token"


def test_check_token_returns_the_payload_for_the_service(auth_client, alice):
    session = auth_client.login(alice.username, alice.password)
    check = auth_client.check_token(session.token, "stock")
    assert check.payload.user_id == session.user_id
    assert check.payload.service == "stock"
    assert "stock.read" in check.payload.permissions
    assert check.expires_in > 0
    by_id = auth_client.check_token(session.token, check.payload.service_id)
    assert by_id.payload == check.payload


@pytest.mark.parametrize("as_text", [False, True])
def test_check_token_accepts_the_own_user_id(auth_client, alice, as_text):
    session = auth_client.login(alice.username, alice.password)
    user_id = str(session.user_id) if as_text else session.user_id
    assert auth_client.check_token(session.token, "sales", user_id).payload.service == "sales"


def test_check_token_for_another_user_raises_forbidden(auth_client, alice_token, clerk):
    with pytest.raises(Forbidden):
        auth_client.check_token(alice_token, "stock", clerk.id)


def test_check_token_outside_the_granted_services_raises_forbidden(auth_client, alice_token):
    with pytest.raises(Forbidden) as caught:
        auth_client.check_token(alice_token, "manufacturing")
    assert caught.value.code == "forbidden"


def test_check_token_of_a_dead_token_raises_invalid_token(auth_client):
    with pytest.raises(InvalidToken):
        auth_client.check_token(DEAD_TOKEN, "stock")


def test_logout_revokes_the_token_and_may_be_repeated(auth_client, alice_token):
    auth_client.logout(alice_token)
    with pytest.raises(InvalidToken):
        auth_client.profile(alice_token)
    auth_client.logout(alice_token)


def test_logout_all_revokes_every_session_of_the_user(auth_client, clerk):
    first = auth_client.login(clerk.username, clerk.password).token
    second = auth_client.login(clerk.username, clerk.password).token
    assert auth_client.logout_all(first) == 2
    for token in (first, second):
        with pytest.raises(InvalidToken):
            auth_client.profile(token)


def test_password_reset_through_the_mailed_code(auth_client, clerk, mailbox):
    old_token = auth_client.login(clerk.username, clerk.password).token
    auth_client.forgot_password(clerk.username)
    code = reset_code(mailbox.wait_for(clerk.email, timeout=5))
    new_password = f"pw-{secrets.token_urlsafe(12)}"
    auth_client.reset_password(code, new_password)
    with pytest.raises(InvalidToken):
        auth_client.profile(old_token)
    assert auth_client.login(clerk.username, new_password).username == clerk.username
    with pytest.raises(InvalidResetCode) as caught:
        auth_client.reset_password(code, f"pw-{secrets.token_urlsafe(12)}")
    assert caught.value.code == "invalid_reset_code"


def test_forgot_password_is_silent_about_unknown_accounts(auth_client):
    assert auth_client.forgot_password(f"nobody-{secrets.token_hex(4)}") is None


def test_unknown_reset_code_raises_invalid_reset_code(auth_client):
    with pytest.raises(InvalidResetCode):
        auth_client.reset_password(secrets.token_urlsafe(32), "a-fine-new-passphrase")


def test_change_password_keeps_this_session_and_revokes_the_others(auth_client, clerk):
    this = auth_client.login(clerk.username, clerk.password).token
    other = auth_client.login(clerk.username, clerk.password).token
    new_password = f"pw-{secrets.token_urlsafe(12)}"
    assert auth_client.change_password(clerk.password, new_password, token=this) == 1
    assert auth_client.profile(this).username == clerk.username
    with pytest.raises(InvalidToken):
        auth_client.profile(other)
    assert auth_client.login(clerk.username, new_password).username == clerk.username


def test_change_password_with_a_wrong_current_password(auth_client, clerk):
    token = auth_client.login(clerk.username, clerk.password).token
    with pytest.raises(InvalidCredentials):
        auth_client.change_password("not-the-password", "a-fine-new-passphrase", token=token)


@pytest.mark.parametrize("weakness", ["too short", "contains the username"])
def test_weak_new_password_raises_bad_request_naming_the_field(auth_client, clerk, weakness):
    token = auth_client.login(clerk.username, clerk.password).token
    new_password = "short" if weakness == "too short" else f"my-{clerk.username}-password"
    with pytest.raises(BadRequest) as caught:
        auth_client.change_password(clerk.password, new_password, token=token)
    assert caught.value.status == 400
    assert caught.value.code == "validation_error"
    assert "new_password" in caught.value.fields


def test_calls_needing_a_token_refuse_locally_without_one(auth_url, transport):
    with (
        AuthClient(auth_url, transport=transport) as auth_client,
        pytest.raises(InvalidToken) as caught,
    ):
        auth_client.profile()
    assert caught.value.code == "missing_token"
    assert not transport.calls


def test_only_safe_calls_retry_a_refused_connection(closed_port_url, transport, alice):
    with AuthClient(closed_port_url, transport=transport, connect_retries=2) as auth_client:
        with pytest.raises(AuthUnavailable):
            auth_client.profile(DEAD_TOKEN)
        with pytest.raises(AuthUnavailable):
            auth_client.check_token(DEAD_TOKEN, "stock")
        with pytest.raises(AuthUnavailable):
            auth_client.login(alice.username, alice.password)
        with pytest.raises(AuthUnavailable):
            auth_client.logout(DEAD_TOKEN)
    assert transport.calls == {
        "/auth/profile": 3,
        "/check-token": 3,
        "/auth/login": 1,
        "/auth/logout": 1,
    }
