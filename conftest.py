"""Shared pytest fixtures for the service's tests and the SDK's (tests/fixtures.py).

The tests run the service in development mode (its secrets and defaults), set before
config.py is first imported; a test of production mode passes its own environment.
"""

import os

os.environ["APP_ENV"] = "development"

pytest_plugins = ["tests.fixtures"]
