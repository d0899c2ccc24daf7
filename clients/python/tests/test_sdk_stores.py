"""Token stores, alone and behind AuthClient: log in once, reuse the token, forget it."""

import os
import stat

import pytest
from eqeqo_auth_client import AuthClient, FileTokenStore, InvalidToken, MemoryTokenStore


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_memory_store_keeps_one_token():
    store = MemoryTokenStore()
    assert store.load() is None
    store.save("first")
    store.save("second")
    assert store.load() == "second"
    store.clear()
    assert store.load() is None


def test_file_store_writes_a_file_only_its_owner_can_read(tmp_path):
    store = FileTokenStore(tmp_path / "config" / "token")
    assert store.load() is None
    store.save("abc123")
    assert store.load() == "abc123"
    assert mode_of(store.path) == 0o600
    assert mode_of(store.path.parent) == 0o700


def test_file_store_replaces_a_readable_file_atomically(tmp_path):
    path = tmp_path / "token"
    path.write_text("old\n")
    path.chmod(0o644)
    FileTokenStore(path).save("new")
    assert mode_of(path) == 0o600
    assert path.read_text() == "new\n"
    assert [entry.name for entry in tmp_path.iterdir()] == ["token"]


def test_file_store_clear_removes_the_file_and_may_be_repeated(tmp_path):
    store = FileTokenStore(tmp_path / "token")
    store.save("abc123")
    store.clear()
    store.clear()
    assert not store.path.exists()
    assert store.load() is None


def test_a_script_logs_in_once_and_reuses_the_token(auth_url, alice, tmp_path):
    path = tmp_path / "token"
    with AuthClient(auth_url, token_store=FileTokenStore(path)) as first_run:
        session = first_run.login(alice.username, alice.password)
    assert path.read_text().strip() == session.token

    with AuthClient(auth_url, token_store=FileTokenStore(path)) as second_run:
        assert second_run.profile().username == "alice"
        second_run.logout()
        assert not path.exists()
        with pytest.raises(InvalidToken):
            second_run.profile(session.token)
        with pytest.raises(InvalidToken) as caught:
            second_run.profile()
    assert caught.value.code == "missing_token"


def test_logging_out_another_token_keeps_the_stored_one(auth_url, alice, alice_token):
    store = MemoryTokenStore()
    with AuthClient(auth_url, token_store=store) as client:
        stored = client.login(alice.username, alice.password).token
        client.logout(alice_token)
        assert store.load() == stored
        assert client.profile().username == "alice"
