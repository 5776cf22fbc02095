"""``Option.validate``: the one check of an option's value (steps, profile tables, [settings], defaults).

In-process unit tests of the method, then the same refusal seen through each of its four users:
a step's options (``chain.check_options``), a plugin's setting (``chain.check_settings``), gw's own
settings (``config.parse_config``) and a declared default (the plugin loader).
"""

from __future__ import annotations

import math
import types

import pytest

from gw.chain import check_options, check_settings
from gw.config import parse_config
from gw.loading import load_registry
from gw.plugin import AWS, AwsCredentials, Duration, Option, Setting, StepType, hookimpl


@pytest.mark.parametrize(("option", "value", "expected"), [
    (Option(str), "x", "x"),
    (Option(int), 3, 3),
    (Option((int, float)), 2.5, 2.5),
    (Option(bool), False, False),
    (Option(dict), {"a": 1}, {"a": 1}),
    (Option(Duration), 900, 900),
    (Option(Duration), "1h30m", 5400),
    (Option(Duration), " 90s ", 90),
    (Option(str, choices=("jp", "g")), "g", "g"),
])
def test_a_fitting_value_comes_back_in_the_form_a_step_gets(option, value, expected):
    assert option.validate(value) == expected
    assert type(option.validate(value)) is type(expected)


@pytest.mark.parametrize(("option", "value", "message"), [
    (Option(str), 3, "must be a string, not an integer"),
    (Option(int), True, "must be an integer, not true/false"),  # TOML's true is never 1
    (Option(int), "3", "must be an integer, not a string"),
    (Option((int, float)), [1], "must be an integer, not an array"),
    (Option(float), math.nan, "must be a finite number, not nan"),
    (Option((int, float)), math.inf, "must be a finite number, not inf"),
    (Option(dict), "x", "must be a table, not a string"),
    (Option(Duration), "an hour", "must be a duration: seconds or a string (e.g. 900, 90s, 30m, 2h, 1h30m), "
                                  "not 'an hour'"),
    (Option(Duration), -5, "must be a duration: seconds or a string (e.g. 900, 90s, 30m, 2h, 1h30m), not -5"),
    (Option(Duration), True, "must be a duration: seconds or a string (e.g. 900, 90s, 30m, 2h, 1h30m), not True"),
    (Option(str, choices=("jp", "g")), "us", "must be one of jp, g, not 'us'"),
])
def test_a_wrong_value_is_one_line_naming_what_was_given(option, value, message):
    with pytest.raises(ValueError) as caught:
        option.validate(value)
    assert str(caught.value) == message


def test_choices_are_checked_after_the_type():
    option = Option(int, choices=(1, 2))
    with pytest.raises(ValueError, match="must be an integer, not a string"):
        option.validate("1")
    with pytest.raises(ValueError) as caught:
        option.validate(3)
    assert caught.value.rule == "choices"  # the loader words a bad default by the rule it broke


# -- one check, four users: the same line wherever a value is refused ----------------------------
BAD = [(Option(int), "three", "must be an integer, not a string"),
       (Option(str, choices=("a", "b")), "c", "must be one of a, b, not 'c'"),
       (Option(float), math.nan, "must be a finite number, not nan")]


@pytest.mark.parametrize(("option", "value", "message"), BAD)
def test_a_step_option_is_refused_by_validate(option, value, message):
    step = StepType("gwt-step", run=lambda ctx, options, upstream: None, produces=AWS, options={"x": option})
    _, problems = check_options(step, {"use": "gwt-step", "x": value}, [])
    assert problems == [f"x {message}"]


@pytest.mark.parametrize(("option", "value", "message"), BAD)
def test_a_plugin_setting_is_refused_by_validate(option, value, message):
    registry = types.SimpleNamespace(settings={"gwt_x": Setting("gwt_x", option, plugin="gwt")}, failed={}, disabled=[])
    config = parse_config({"settings": {"gwt_x": value}}, "/c.toml")
    values, problems = check_settings(config.settings, registry, "/c.toml")
    assert problems == [f"/c.toml: settings.gwt_x: {message}"]


def test_gws_own_settings_are_refused_by_validate_and_ranges_say_their_range():
    config = parse_config({"settings": {"ca_bundle": 3, "key_store": ["file"], "lock_timeout": math.nan,
                                        "disable_plugins": "aws"}}, "/c.toml")
    assert config.settings.problems == {
        "ca_bundle": "/c.toml: settings.ca_bundle: must be a string, not an integer",
        "key_store": "/c.toml: settings.key_store: must be a string, not an array",
        "lock_timeout": "/c.toml: settings.lock_timeout: must be a number of seconds from 0.001 to 86400, not nan",
        "disable_plugins": "/c.toml: settings.disable_plugins: must be an array, not a string",
    }


@pytest.mark.parametrize(("option", "problem"), [
    (Option(int, default="three"), "option 'x' has default 'three', not of its type int"),
    (Option(str, default="fast", choices=("slow",)), "option 'x' has default 'fast', not one of its choices"),
    (Option(Duration, default="1h"), "option 'x' has default '1h', not seconds (int)"),
    (Option((int, float), default=True), "option 'x' has default True, not of its type int/float"),
])
def test_a_declared_default_is_checked_by_validate(option, problem, monkeypatch):
    monkeypatch.delenv("GW_PLUGINS", raising=False)

    @hookimpl
    def gw_step_types():
        return [StepType("gwt-default", run=lambda ctx, options, upstream: AwsCredentials("A", "B"),
                         produces=AWS, options={"x": option})]

    module = types.ModuleType("gwt_default")
    module.gw_step_types = gw_step_types
    registry = load_registry(extra_plugins=(module,))
    assert registry.failed["gwt_default"] == f"step type 'gwt-default': {problem}"


def test_a_duration_default_in_seconds_and_a_secret_default_pass(monkeypatch):
    monkeypatch.delenv("GW_PLUGINS", raising=False)

    @hookimpl
    def gw_step_types():
        return [StepType("gwt-defaults", run=lambda ctx, options, upstream: AwsCredentials("A", "B"), produces=AWS,
                         options={"ttl": Option(Duration, default=3600), "code": Option(str, secret=True, default="prompt")})]

    module = types.ModuleType("gwt_defaults")
    module.gw_step_types = gw_step_types
    registry = load_registry(extra_plugins=(module,))
    assert "gwt_defaults" not in registry.failed and "gwt-defaults" in registry.step_types
