"""The SSO plugin's fixtures (tests/plugins/sso/conftest.py) for its end-to-end tests."""

from tests.plugins.sso.conftest import sso, sso_home

__all__ = ["sso", "sso_home"]
