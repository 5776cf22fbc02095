"""A plugin's own credential kind is cached and read back like a built-in one (no refetch)."""

from __future__ import annotations

import json
from pathlib import Path

PLUGINS = Path(__file__).resolve().parent / "good_plugins"


def test_a_plugin_kind_is_cached_and_read_back(gw_home, tmp_path):
    gw_home.load_plugin("gwtest_kind", PLUGINS)
    gw_home.env["GWTEST_COUNTER"] = str(tmp_path / "counter")
    gw_home.write_config('[profiles.t]\nsteps = [{ use = "test-ticket" }]\n')
    first = gw_home.run_in_process("env", "--profile", "t", "--format", "json")
    assert first.returncode == 0, first.stderr
    second = gw_home.run_in_process("env", "--profile", "t", "--format", "json")
    assert second.returncode == 0, second.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout) == {
        "TEST_TICKET": "ticket-secret-value-42", "TEST_TICKET_SERIAL": "1"}
    assert (tmp_path / "counter").read_text() == "x"  # ran once: the second call was a cache hit
    listed = gw_home.run_in_process("cache", "list", env={"COLUMNS": "200"})
    assert "test-ticket" in listed.stdout
    assert "ticket-secret-value-42" not in listed.stdout + listed.stderr


CORE = Path(__file__).resolve().parents[2] / "core"


def test_the_core_names_no_plugins_credential_kind():
    """A kind only one plugin knows lives in that plugin (gw_credential_kinds): the core's source
    names none of them, and gw.plugin exports none of them."""
    import gw.plugin
    from gw.credentials import KINDS
    from gw.loading import load_registry

    registry = load_registry()
    plugin_kinds = {kind: cls for kind, cls in registry.kinds.items() if kind not in KINDS}
    assert {"endorse-token", "json-document", "iot-wss-url"} <= set(plugin_kinds)  # registered by their plugins
    assert {cls.__module__ for cls in plugin_kinds.values()} >= {"gw_plugins.endorse.client", "gw_plugins.krypton"}
    source = "\n".join(path.read_text() for path in sorted(CORE.glob("*.py")))
    names = [name for kind, cls in plugin_kinds.items() for name in (kind, cls.__name__, kind.upper().replace("-", "_"))]
    assert [name for name in names if name in source] == []
    assert [name for name in names if name in gw.plugin.__all__] == []


def test_the_soracom_login_kind_is_the_soracom_plugins():
    from gw.plugin import SoracomCredentials
    from gw_plugins.soracom.credential_sets import CREDENTIAL_SETS, login_kind

    assert not hasattr(SoracomCredentials, "login_kind")
    assert login_kind(SoracomCredentials(auth_key_id="keyId-x", auth_key="secret-x")) == "authkey"
    assert login_kind(SoracomCredentials(email="a@example.com", password="pw")) == "root"
    assert login_kind(SoracomCredentials(operator_id="OP0000000000", username="u", password="pw")) == "sam"
    assert set(CREDENTIAL_SETS) == {"authkey", "root", "sam"}
