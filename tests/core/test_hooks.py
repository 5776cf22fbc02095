"""Every hook is called one way: through pluggy, each plugin's implementation guarded (core/hooks.py).

In-process: plugins are small modules handed to ``load_registry(extra_plugins=...)``, loaded
beside the installed ones, and the hooks are called through the registry's relay
(``registry.hook``: pluggy's ``pm.hook``), as the core calls them.
"""

from __future__ import annotations

import types
from pathlib import Path

import pluggy
import pytest

from gw.hooks import Guard
from gw.loading import Registry, load_registry
from gw.plugin import AWS, AwsCredentials, StepType, hookimpl

ROOT = Path(__file__).resolve().parents[2]
hookspec = pluggy.HookspecMarker("gw")


def plugin(name: str, **functions) -> types.ModuleType:
    """A plugin module ``name`` holding ``functions`` (under their keyword names)."""
    module = types.ModuleType(name)
    for attr, function in functions.items():
        function.__name__ = attr
        setattr(module, attr, function)
    return module


def _credential() -> AwsCredentials:
    return AwsCredentials(access_key_id="AKIAGWHOOKTEST000000", secret_access_key="hook-test-secret")


def test_a_plugin_raising_in_a_hook_is_named_and_the_others_still_answer(capsys):
    heard: list[str] = []

    @hookimpl
    def raising(profile, credential, from_cache):
        raise ValueError("audit backend down")

    @hookimpl
    def listening(profile, credential, from_cache):
        heard.append(profile)

    registry = load_registry(extra_plugins=(plugin("gwt_early", gw_credentials_issued=listening),
                                            plugin("gwt_raising", gw_credentials_issued=raising),
                                            plugin("gwt_late", gw_credentials_issued=listening)))
    capsys.readouterr()
    assert registry.hook.gw_credentials_issued(profile="p", credential=_credential(), from_cache=False) == []
    assert heard == ["p", "p"]  # pluggy alone stops at the first raise: one of them would be missed
    err = capsys.readouterr().err
    assert err == "gw: warning: plugin 'gwt_raising' failed in gw_credentials_issued (ValueError)\n"
    assert "audit backend down" not in err


def test_a_plugin_raising_while_declaring_is_skipped_with_its_name_and_the_rest_load(capsys):
    @hookimpl
    def broken():
        raise KeyError("collecting went wrong")

    @hookimpl
    def steps():
        return [StepType("gwt-hook-step", run=lambda ctx, options, upstream: _credential(), produces=AWS)]

    registry = load_registry(extra_plugins=(plugin("gwt_broken", gw_step_types=broken),
                                            plugin("gwt_fine", gw_step_types=steps)))
    assert registry.failed == {"gwt_broken": "gw_step_types raised KeyError: 'collecting went wrong'"}
    assert "gwt_broken" not in registry.plugin_names()
    assert registry.step_types["gwt-hook-step"].plugin == "gwt_fine"
    assert "aws-keys" in registry.step_types  # the installed plugins are untouched
    assert "gw: warning: plugin 'gwt_broken' skipped: gw_step_types raised KeyError" in capsys.readouterr().err


def test_an_unknown_hook_is_found_by_check_pending_with_the_nearest_name():
    @hookimpl
    def typo():
        return []

    @hookimpl(optionalhook=True)
    def other_plugins_hook():
        return []

    registry = load_registry(extra_plugins=(plugin("gwt_typo", gw_step_type=typo),
                                            plugin("gwt_optional", gw_absent_plugins_hook=other_plugins_hook)))
    assert registry.failed["gwt_typo"] == "implements unknown hook gw_step_type (did you mean gw_step_types?)"
    assert "gwt_optional" in registry.plugin_names()  # optionalhook: another plugin's hook, maybe absent
    registry.pm.check_pending()  # what is left passes pluggy's own check


def test_a_gw_function_without_hookimpl_is_refused_not_silently_ignored():
    def gw_step_types():  # forgot @hookimpl: pluggy would never call it
        return []

    registry = load_registry(extra_plugins=(plugin("gwt_unmarked", gw_step_types=gw_step_types),))
    assert registry.failed["gwt_unmarked"] == "gw_step_types is not marked with @hookimpl"


def test_gw_add_hookspecs_is_historic_and_its_hooks_are_called_through_pluggy(capsys):
    specs = types.ModuleType("gwt_specs")

    @hookspec
    def gw_test_things() -> list:
        """A hook of a plugin's own."""

    specs.gw_test_things = gw_test_things

    @hookimpl
    def add(pluginmanager):
        pluginmanager.add_hookspecs(specs)

    @hookimpl
    def things_raising():
        raise RuntimeError("reader gone")

    @hookimpl
    def things():
        return ["thing"]

    registry = load_registry(extra_plugins=(plugin("gwt_things_a", gw_test_things=things_raising),
                                            plugin("gwt_offers", gw_add_hookspecs=add),
                                            plugin("gwt_things_b", gw_test_things=things)))
    assert {"gwt_offers", "gwt_things_a", "gwt_things_b"} <= set(registry.plugin_names()), registry.failed
    assert registry.pm.hook.gw_add_hookspecs.is_historic()
    capsys.readouterr()
    assert registry.hook.gw_test_things() == [["thing"]]
    assert capsys.readouterr().err == "gw: warning: plugin 'gwt_things_a' failed in gw_test_things (RuntimeError)\n"

    replayed: list[object] = []

    @hookimpl
    def late(pluginmanager):
        replayed.append(pluginmanager)

    Guard(registry.pm).register(plugin("gwt_late", gw_add_hookspecs=late))  # pluggy replays the history
    assert replayed == [registry.pm]


def test_a_plugin_whose_gw_add_hookspecs_raises_is_skipped():
    @hookimpl
    def add(pluginmanager):
        raise RuntimeError("no specs today")

    registry = load_registry(extra_plugins=(plugin("gwt_no_specs", gw_add_hookspecs=add),))
    assert registry.failed["gwt_no_specs"] == "gw_add_hookspecs failed: RuntimeError: no specs today"
    assert "gwt_no_specs" not in registry.plugin_names()


def test_the_answers_of_a_hook_come_in_the_order_the_plugins_were_registered():
    pm = pluggy.PluginManager("gw")
    from gw import hookspecs

    pm.add_hookspecs(hookspecs)
    guard = Guard(pm)
    for name in ("gwt_one", "gwt_two", "gwt_three"):
        guard.register(plugin(name, gw_environment=hookimpl(lambda name=name: [name])), name=name)
    assert [a.plugin for a in guard.answers("gw_environment")] == ["gwt_one", "gwt_two", "gwt_three"]
    assert pm.hook.gw_environment() == [["gwt_three"], ["gwt_two"], ["gwt_one"]]  # pluggy's own order
    module = pm.get_plugin("gwt_one").plugin
    assert guard.register(module, name="gwt_one_again") is None  # one module registers once


def test_there_is_one_way_to_call_a_hook():
    """No hand loop over implementations, and no direct call of a plugin's function, in the core."""
    assert not hasattr(Registry, "call")
    for path in sorted((ROOT / "core").glob("*.py")):
        text = path.read_text()
        assert ".function(" not in text and "getattr(plugin, hook" not in text, path


@pytest.fixture(autouse=True)
def _no_plugin_env(monkeypatch):
    monkeypatch.delenv("GW_PLUGINS", raising=False)
    monkeypatch.delenv("GW_DISABLE_PLUGINS", raising=False)
