"""Lazy plugin loading (issue 20): running a profile loads the plugins its steps need.

Plugins name what they provide in the ``gw.provides`` entry-point group (docs/plugins.md "Lazy
loading"). Each test installs a distribution's metadata (a ``.dist-info`` with real
``entry_points.txt``) on ``sys.path``, as pip would, and loads the registry through
importlib.metadata like gw does.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from gw.loading import load_registry, needs_of

STEP = '''
from gw.plugin import AWS, AwsCredentials, StepType, hookimpl


def _run(ctx, options, upstream):
    return AwsCredentials(access_key_id="AKIAGWTESTLAZY000000", secret_access_key="lazy-test-secret")


@hookimpl
def gw_step_types():
    return [StepType("{step}", run=_run, produces=AWS)]
'''


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A third-party distribution with a lazy plugin (it names its step type) and an old-style one."""
    (tmp_path / "gwtest_lazy.py").write_text(STEP.format(step="gwtest-lazy-step"))
    (tmp_path / "gwtest_eager.py").write_text(STEP.format(step="gwtest-eager-step"))
    info = tmp_path / "gwtest_third_party-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gwtest-third-party\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [gw]
        gwtest-lazy = gwtest_lazy
        gwtest-eager = gwtest_eager

        [gw.provides]
        step:gwtest-lazy-step = gwtest_lazy
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("gwtest_lazy", "gwtest_eager"):
        sys.modules.pop(name, None)


def _steps(*names: str) -> list[dict]:
    return [{"use": name} for name in names]


def test_a_profile_loads_only_the_plugins_its_steps_need(third_party):
    registry = load_registry(needs=needs_of(_steps("krypton")))
    assert registry.plugin_names() == ["core", "gwtest-eager", "krypton"]  # an old-style plugin loads always
    assert set(registry.step_types) == {"krypton", "gwtest-eager-step"}
    assert "gwtest-lazy" in registry.deferred and "aws" in registry.deferred and registry.partial


def test_a_third_party_plugin_that_names_its_step_loads_for_it(third_party):
    registry = load_registry(needs=needs_of(_steps("gwtest-lazy-step", "assume-role")))
    assert registry.plugin_names() == ["aws", "core", "gwtest-eager", "gwtest-lazy"]


def test_a_secret_reference_loads_its_scheme_and_a_table_its_plugin(third_party):
    steps = [{"use": "aws-keys", "access_key_id": "op://Private/aws/id", "secret_access_key": "env:S"}]
    registry = load_registry(needs=needs_of(steps, {"login": {}}))
    assert registry.plugin_names() == ["aws", "core", "federation", "gwtest-eager", "onepassword"]
    assert any(s.prefix == "op://" for s in registry.schemes)


def test_a_partial_registry_completes_itself_and_all_commands_load_everything(third_party):
    registry = load_registry(needs=needs_of(_steps("krypton")))
    registry.complete()
    full = load_registry()
    assert not registry.partial and not full.partial
    assert registry.plugin_names() == full.plugin_names()
    assert {"aws", "krypton", "sso", "gwtest-lazy", "gwtest-eager"} <= set(full.plugin_names())


def test_an_unknown_step_is_reported_as_before(gw_home):
    """The partial registry cannot know the step: gw loads every plugin, then names the mistake."""
    gw_home.write_config('[profiles.p]\nsteps = [{ use = "asume-role", role_arn = "arn:aws:iam::1:role/x" }]\n')
    result = gw_home.run("credential-process", "--profile", "p")
    assert result.returncode != 0
    assert "unknown step type 'asume-role' (did you mean 'assume-role'?)" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_development_venv_declares_every_built_in_step():
    """Every step type of a built-in plugin is named in gw.provides (else its plugin loads for every profile)."""
    import importlib.metadata

    provided = {ep.name for ep in importlib.metadata.entry_points(group="gw.provides")}
    registry = load_registry()
    built_in = {name for name, step in registry.step_types.items() if step.plugin in
                {ep.name for ep in importlib.metadata.entry_points(group="gw") if ep.value.startswith("gw_plugins")}}
    assert built_in and {f"step:{name}" for name in built_in} <= provided
    # each entry names a plugin module of the gw group (a stale one would leave its plugin eager)
    modules = {ep.value for ep in importlib.metadata.entry_points(group="gw")}
    assert {ep.value for ep in importlib.metadata.entry_points(group="gw.provides")} <= modules
