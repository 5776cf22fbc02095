"""The IoT plugin's fixtures (tests/plugins/iot/conftest.py) for its end-to-end tests."""

from tests.plugins.iot.conftest import device, iot, iot_role

__all__ = ["device", "iot", "iot_role"]
