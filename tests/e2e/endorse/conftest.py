"""The Endorse plugin's fixtures (tests/plugins/endorse/conftest.py) for its end-to-end tests."""

from tests.plugins.endorse.conftest import base_settings, device_role, endorse, exchange_server, local_exchange

__all__ = ["base_settings", "device_role", "endorse", "exchange_server", "local_exchange"]
