"""The 1Password tests share the SORACOM suite's fixtures: the op emulator, the SORACOM API
emulator and the ``sora`` home (1Password mostly holds SORACOM credentials)."""

from tests.plugins.soracom.conftest import op_shim, sora, soracom_api  # noqa: F401  (pytest fixtures)
