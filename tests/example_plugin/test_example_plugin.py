"""The example third-party plugin, tested the way a plugin author tests theirs: with gw.testing.

The plugin (``gw_example_plugin``) contributes a step type (``example-token``), a secret scheme
(``rot13:``), a command (``gw example-whoami``) and an audit hook writing to
``$GW_EXAMPLE_AUDIT``; its upstream is emulated by ``example_emulator.ExampleTokenService``
(HTTPS on 127.0.0.1). ``GwHome.install_plugin`` registers it through the entry points of its
``pyproject.toml``, as installing it would, without touching the running environment; gw runs in
the test's own process (``GwHome.run_in_process``) except where a test needs a real process
(the hot path ends with ``os._exit``).
"""

from __future__ import annotations

import ast
import codecs
import json
from pathlib import Path

import pytest

from gw.testing import assert_clean_failure

from .example_emulator import ExampleTokenService

PROJECT = Path(__file__).resolve().parent
PACKAGE = PROJECT / "gw_example_plugin"
CLIENT_ID = "client-one"
SECRET = "example-secret-Zq8-value"
PROFILE = """\
[profiles.example]
steps = [{{ use = "example-token", endpoint = "{url}", client_id = "{client_id}", client_secret = "rot13:GWT_SECRET" }}]
"""


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    from gw_emulators.tls import LocalCA

    return LocalCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def service(ca):
    with ExampleTokenService(ca, {CLIENT_ID: SECRET}) as emulator:
        yield emulator


@pytest.fixture
def plugin_home(gw_home, service, ca, tmp_path):
    gw_home.ca_path = str(ca.ca_path)  # write_config puts it in [settings] ca_bundle
    gw_home.install_plugin(PROJECT)
    gw_home.env["GWT_SECRET"] = codecs.encode(SECRET, "rot13")
    gw_home.env["GW_EXAMPLE_AUDIT"] = str(tmp_path / "audit.log")
    gw_home.env["COLUMNS"] = "200"
    gw_home.write_config(PROFILE.format(url=service.url, client_id=CLIENT_ID))
    return gw_home


def _issued(service: ExampleTokenService) -> dict[str, str]:
    return {token: client for token, (client, _) in service.tokens.items()}


def test_it_registers_through_the_gw_entry_point_group(plugin_home):
    assert "GW_PLUGINS" not in plugin_home.env  # found as an installed package's entry point, nothing else
    result = plugin_home.run_in_process("plugins")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("example\t"))  # plain on a pipe
    assert "example-token (source -> bearer-token)" in row and "rot13:" in row and "gw example-whoami" in row
    assert "FAILED" not in result.stdout


def test_its_step_fetches_a_token_from_the_emulator_and_gw_caches_it(plugin_home, service, tmp_path):
    first = plugin_home.run_in_process("env", "--profile", "example", "--format", "json")
    assert first.returncode == 0, first.stderr
    token = json.loads(first.stdout)["GW_BEARER_TOKEN"]
    assert _issued(service) == {token: CLIENT_ID}  # the emulator issued it, over HTTPS, to the decoded secret
    second = plugin_home.run_in_process("env", "--profile", "example", "--format", "json")
    assert second.stdout == first.stdout
    assert service.calls["token"] == 1  # the second call was a cache hit
    cached = plugin_home.cache_file("example").read_bytes()
    assert token.encode() not in cached and SECRET.encode() not in cached  # sealed
    audit = (tmp_path / "audit.log").read_text()
    assert audit.splitlines()[0] == "example\tbearer-token\tfrom_cache=false"
    assert audit.count("from_cache=false") == 1
    assert token not in audit and SECRET not in audit
    assert SECRET not in first.stderr + second.stderr


def test_the_upstreams_refusals_are_one_line(plugin_home, service):
    service.inject("token", status=503)
    assert_clean_failure(plugin_home.run_in_process("env", "--profile", "example"),
                         contains="the example token service answered HTTP 503")
    service.inject("token", garbage=True)
    assert_clean_failure(plugin_home.run_in_process("env", "--profile", "example"),
                         contains="sent an answer without token and expires_in")
    plugin_home.env["GWT_SECRET"] = codecs.encode("not-the-secret", "rot13")
    line = assert_clean_failure(plugin_home.run_in_process("env", "--profile", "example"),
                                contains="refused client 'client-one': check client_id and client_secret")
    assert "not-the-secret" not in line
    assert service.calls["token"] == 3 and service.tokens == {}


def test_its_secret_scheme_resolves_and_is_checked(plugin_home, service):
    ok = plugin_home.run_in_process("token", "--profile", "example")
    assert ok.returncode == 0, ok.stderr
    assert _issued(service) == {ok.stdout.strip(): CLIENT_ID}  # the emulator accepts only the decoded secret
    plugin_home.write_config(PROFILE.format(url=service.url, client_id="other").replace("GWT_SECRET", "GWT_UNSET"))
    assert_clean_failure(plugin_home.run_in_process("env", "--profile", "example"),
                         contains="environment variable GWT_UNSET is not set")
    assert plugin_home.run_in_process("check").returncode == 0  # a well-formed rot13: reference, unresolved
    plugin_home.write_config(PROFILE.format(url=service.url, client_id="other").replace("GWT_SECRET", "not a name"))
    check = plugin_home.run_in_process("check")
    assert check.returncode != 0 and "rot13: needs an environment variable name" in check.stdout + check.stderr
    assert service.calls["token"] == 1


def test_its_options_are_checked_by_the_core(plugin_home, service):
    plugin_home.write_config(PROFILE.format(url=service.url, client_id=CLIENT_ID).replace(f'"{CLIENT_ID}"', "5"))
    assert_clean_failure(plugin_home.run_in_process("env", "--profile", "example"), contains="client_id must be")
    plugin_home.write_config(PROFILE.format(url=service.url.replace("https:", "http:"), client_id=CLIENT_ID))
    assert_clean_failure(plugin_home.run_in_process("env", "--profile", "example"),
                         contains="endpoint must be an https:// URL")
    assert service.calls["token"] == 0


def test_its_command_runs_with_the_profiles_token(plugin_home, service):
    result = plugin_home.run_in_process("example-whoami", "--profile", "example")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{CLIENT_ID}\n"
    again = plugin_home.run_in_process("example-whoami", "--profile", "example")
    assert again.stdout == result.stdout
    assert service.calls["whoami"] == 2 and service.calls["token"] == 1  # the token came from gw's cache
    service.advance(service.lifetime)  # the service's clock says the cached token has expired
    assert_clean_failure(plugin_home.run_in_process("example-whoami", "--profile", "example"),
                         contains="did not accept the token of profile 'example' (HTTP 401)")
    assert "example-whoami" in plugin_home.run_in_process("--help").stdout


def test_a_cache_hit_of_gw_token_is_served_without_loading_the_plugin(plugin_home, service, tmp_path):
    fetched = plugin_home.run_in_process("token", "--profile", "example")
    assert fetched.returncode == 0, fetched.stderr
    token = fetched.stdout.strip()
    # the hot path ends the process with os._exit: a real process
    header = plugin_home.run("token", "--profile", "example", "--format", "header", env={"PYTHONVERBOSE": "1"})
    assert header.stdout == f"Authorization: Bearer {token}\n"
    assert "gw_example_plugin" not in header.stderr and "pluggy" not in header.stderr
    doc = json.loads(plugin_home.run_in_process("token", "--profile", "example", "--format", "json").stdout)
    assert doc["token"] == token and doc["token_type"] == "Bearer" and doc["expiration"].endswith("Z")
    assert service.calls["token"] == 1
    assert (tmp_path / "audit.log").read_text().count("from_cache=false") == 1


def test_its_step_runs_in_the_stub_context(step_context, service, ca, monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT))
    from gw_example_plugin.step import run

    step_context._tls_verify = str(ca.ca_path)
    token = run(step_context, {"endpoint": service.url, "client_id": CLIENT_ID, "client_secret": SECRET}, None)
    assert _issued(service) == {token.access_token: CLIENT_ID}
    assert (token.expiration - token.issued_at).total_seconds() == service.lifetime
    assert step_context.infos == ["Asking the example token service for a token ..."]


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, function-level imports included (relative ones as ``.name``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_the_plugin_imports_only_the_public_api_and_never_its_emulator():
    modules = sorted(PACKAGE.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "step.py", "scheme.py", "command.py"}
    offenders = [f"{m.name}: {name}" for m in modules for name in _imports(m)
                 if name.split(".")[0] in {"gw", "gw_plugins", "gw_emulators", "tests", "example_emulator"}
                 and name != "gw.plugin"]
    assert offenders == []
    assert "gw.plugin" in _imports(PACKAGE / "__init__.py")
    emulator = _imports(PROJECT / "example_emulator.py")
    assert not any(name == "gw" or name.startswith(("gw.", "gw_example_plugin")) for name in emulator), emulator
