"""The SDK through a two-step login, against the live service: enrolment, MfaRequired from
login, the second step with a TOTP code or a recovery code, and removal."""

import time

import pyotp
import pytest
from eqeqo_auth_client import AuthClient, InvalidMfa, MemoryTokenStore, MfaRequired


def code(secret, steps_back=0):
    """A code of this 30 s step (or one before), never a moment before the step ends."""
    if 30 - time.time() % 30 < 1.5:
        time.sleep(1.6)
    return pyotp.TOTP(secret).at(time.time() - 30 * steps_back)


def test_enrol_then_log_in_in_two_steps(auth_url, admin):
    user = admin.create_user()
    store = MemoryTokenStore()
    with AuthClient(auth_url, token_store=store) as client:
        client.login(user.username, user.password)
        enrolment = client.start_mfa_enrolment()
        assert pyotp.parse_uri(enrolment.otpauth_uri).secret == enrolment.secret
        recovery = client.confirm_mfa_enrolment(code(enrolment.secret, 1))
        assert len(recovery) == 10
        store.clear()

        with pytest.raises(MfaRequired) as first:
            client.login(user.username, user.password)
        assert store.load() is None and first.value.expires_in == 300
        with pytest.raises(InvalidMfa):
            client.login_mfa(first.value.mfa_token, "000000")
        session = client.login_mfa(first.value.mfa_token, code(enrolment.secret))
        assert session.username == user.username and store.load() == session.token
        assert client.profile().username == user.username

        with pytest.raises(MfaRequired) as again:
            client.login(user.username, user.password)
        assert client.login_mfa(again.value.mfa_token, recovery[0]).user_id == user.id
        client.remove_mfa(user.password, recovery[1])
        assert client.login(user.username, user.password).token
