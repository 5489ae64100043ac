"""The test OpenID provider (tests/sso_provider.py) as a fixture: a real oidc-provider on loopback per test."""

from contextlib import ExitStack

import pytest

from tests.sso_provider import Provider, require_node, running_provider


@pytest.fixture
def test_provider_factory():
    """Start a provider with these clients and accounts (and any other config keys); each one started is stopped at
    teardown. Skips when node is missing outside CI, fails in CI."""
    require_node()
    with ExitStack() as stack:

        def start(*, clients: list, accounts: list, **config) -> Provider:
            return stack.enter_context(running_provider({"clients": clients, "accounts": accounts, **config}))

        yield start
