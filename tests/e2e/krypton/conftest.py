"""The Krypton plugin's fixtures (tests/plugins/krypton/conftest.py) for its end-to-end tests."""

from tests.plugins.krypton.conftest import moto_endpoint, sim_file, step_ctx

__all__ = ["moto_endpoint", "sim_file", "step_ctx"]
