"""Shared pytest fixtures for the service's tests and the SDK's (tests/fixtures.py)."""

pytest_plugins = ["tests.fixtures"]
