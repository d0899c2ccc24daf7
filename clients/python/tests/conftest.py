"""Fixtures for the SDK tests, run against the live auth service (`live_server`)."""

import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import pytest
from eqeqo_auth_client import AuthClient

ADMIN = ("admin", "orchid-lantern-42")


class CountingTransport(httpx.BaseTransport):
    """The real HTTP transport, counting the requests that reach the auth service."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.calls[request.url.path] += 1
        # Holding the request open keeps the call in flight while others arrive.
        time.sleep(self.delay)
        return self._real.handle_request(request)

    def close(self) -> None:
        self._real.close()


class FakeClock:
    """A wall clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class User:
    """A throwaway account created for one test."""

    id: int
    username: str
    password: str
    email: str


class Admin:
    """The demo admin, used to create accounts that tests may lock or revoke."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        self.token: str | None = None

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Send an admin request, logging in again when the token has lapsed."""
        for _ in range(2):
            if self.token is None:
                login = self.http.post("/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
                login.raise_for_status()
                self.token = login.json()["token"]
            response = self.http.request(method, path, headers={"token": self.token}, **kwargs)
            if response.status_code != 401:
                return response
            self.token = None
        return response

    def find_id(self, collection: str, name: str) -> int | None:
        """Find the id of a role or permission by its name."""
        listed = self.call("GET", collection, params={"limit": 1000}).json()["items"]
        return next((item["id"] for item in listed if item["name"] == name), None)

    def create(self, collection: str, body: dict) -> int:
        """Create a resource and return its id."""
        created = self.call("POST", collection, json=body)
        assert created.status_code in (200, 201), created.text
        return created.json().get("id", 0)

    def stock_writer_role(self) -> str:
        """A new role holding stock.write, assigned to the stock service."""
        name = f"sdk-writer-{secrets.token_hex(4)}"
        role_id = self.create("/roles", {"name": name})
        permission_id = self.find_id("/permissions", "stock.write") or self.create(
            "/permissions", {"name": "stock.write"}
        )
        self.create("/role-permissions", {"role_id": role_id, "permission_id": permission_id})
        self.create("/service-roles", {"service_id": "stock", "role_id": role_id})
        return name

    def create_user(self, *, service: str | None = None, role: str | None = None) -> User:
        """Create an active user with an email, holding `role` in `service` if given."""
        username = f"sdk-{secrets.token_hex(5)}"
        password = f"pw-{secrets.token_urlsafe(12)}"
        email = f"{username}@example.com"
        body = {"username": username, "password": password, "email": email}
        user = User(self.create("/users", body), username, password, email)
        if service is not None:
            self.create(
                "/person-service-roles",
                {"user_id": user.id, "service_id": service, "role_id": self.find_id("/roles", role)},
            )
        return user


@pytest.fixture(scope="session")
def auth_url(live_server) -> str:
    return live_server.url


@pytest.fixture
def auth_client(auth_url):
    with AuthClient(auth_url) as auth_client:
        yield auth_client


@pytest.fixture(scope="session")
def admin(auth_url):
    admin = Admin(auth_url)
    yield admin
    admin.http.close()


@pytest.fixture
def clerk(admin) -> User:
    """A fresh user with the demo role `clerk` in `stock` (so stock.read)."""
    return admin.create_user(service="stock", role="clerk")


@pytest.fixture(scope="session")
def alice(auth_url) -> User:
    """The demo user alice: clerk in stock (stock.read), seller in sales."""
    password = "maple-harbor-17"
    with AuthClient(auth_url) as client:
        user_id = client.login("alice", password).user_id
    return User(user_id, "alice", password, "alice@example.com")


@pytest.fixture
def alice_token(auth_client, alice) -> str:
    """A fresh session of alice's, which a test may revoke."""
    return auth_client.login(alice.username, alice.password).token


@pytest.fixture
def transport() -> CountingTransport:
    with CountingTransport() as transport:
        yield transport


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def closed_port_url() -> str:
    """The URL of a local port nothing listens on: an auth service that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
