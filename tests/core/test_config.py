"""gw.config: reading and structurally checking the config file (core/config.py), as functions."""

from __future__ import annotations

import pytest

from gw.config import load_config, parse_config, suggest
from gw.errors import ConfigError

PATH = "/c.toml"


def test_a_good_config_gives_profiles_and_settings():
    config = parse_config({"settings": {"lock_timeout": 5, "ca_bundle": "~/ca.pem"},
                           "profiles": {"dev": {"description": "d", "region": "eu-west-1",
                                                "steps": [{"use": "aws-keys"}], "login": {"x": 1}}}}, PATH)
    assert config.all_problems() == []
    assert config.settings.lock_timeout == 5 and not config.settings.ca_bundle.startswith("~")
    dev = config.profile("dev")
    assert (dev.description, dev.region, dev.steps, dev.tables) == ("d", "eu-west-1", [{"use": "aws-keys"}],
                                                                    {"login": {"x": 1}})
    assert dev.where() == "profiles.dev" and dev.where(0) == "profiles.dev.steps[0] (aws-keys)"


def test_the_digest_follows_the_profile_s_content_and_name():
    one = parse_config({"profiles": {"a": {"steps": [{"use": "x"}]}, "b": {"steps": [{"use": "x"}]}}}, PATH)
    two = parse_config({"profiles": {"a": {"steps": [{"use": "y"}]}}}, PATH)
    assert one.profile("a").digest != one.profile("b").digest  # same steps, another name
    assert one.profile("a").digest != two.profile("a").digest
    assert one.profile("a").digest == parse_config({"profiles": {"a": {"steps": [{"use": "x"}]}}}, PATH).profile("a").digest


def test_a_broken_profile_fails_alone_with_every_mistake():
    config = parse_config({"profiles": {"ok": {"steps": [{"use": "x"}]},
                                        "bad": {"steps": [{"use": ""}, 3], "description": 1}}}, PATH)
    assert config.profile("ok").name == "ok"
    with pytest.raises(ConfigError) as broken:
        config.profile("bad")
    assert "profiles.bad.steps[0]: needs use" in str(broken.value) and "(and 2 more: run gw check)" in str(broken.value)
    assert len(config.all_problems()) == 3


def test_a_misspelt_profile_name_gets_the_nearest():
    config = parse_config({"profiles": {"production": {"steps": [{"use": "x"}]}}}, PATH)
    with pytest.raises(ConfigError, match="did you mean 'production'"):
        config.profile("prodution")
    with pytest.raises(ConfigError, match=r"no profile named 'x' in /c.toml \(it defines none\)"):
        parse_config({}, PATH).profile("x")


def test_a_wrong_setting_fails_only_when_read():
    config = parse_config({"settings": {"lock_timeout": True, "key_store": "keyrng", "prompt_timeout": 0.5}}, PATH)
    assert config.settings.ca_bundle is None  # the rest still reads
    with pytest.raises(ConfigError, match="settings.lock_timeout: must be an integer, not true/false"):
        _ = config.settings.lock_timeout
    with pytest.raises(ConfigError, match="did you mean 'keyring'"):
        _ = config.settings.key_store
    with pytest.raises(ConfigError, match="from 1 to 86400, not 0.5"):
        _ = config.settings.prompt_timeout


def test_unknown_top_level_tables_are_a_plugin_s_or_a_typo():
    config = parse_config({"setings": {}, "soracom": {"x": 1}, "loose": 3}, PATH)
    assert config.settings.plugin_tables == {"soracom": {"x": 1}}
    assert config.problems == [f"{PATH}: setings: unknown top-level table (did you mean 'settings'?)",
                               f"{PATH}: loose: unknown top-level table"]
    assert suggest("zzz", ["settings"]) == ""


def test_load_config_reads_toml_and_refuses_what_it_must(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[profiles.dev]\nsteps = [{ use = "aws-keys" }]\n')
    path.chmod(0o644)
    config = load_config(str(path))
    assert list(config.profiles) == ["dev"] and config.stamp[1] == path.stat().st_size
    path.write_bytes(b'[profiles.dev]\nsteps = [{ use = "\xff" }]\n')
    with pytest.raises(ConfigError, match=r"not UTF-8 text: byte 0xff at line 2"):
        load_config(str(path))
    path.write_text("[profiles.dev\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(path))
    path.chmod(0o666)
    with pytest.raises(ConfigError, match="writable by others .* chmod go-w"):
        load_config(str(path))
    with pytest.raises(ConfigError, match="no config file at .* set GW_CONFIG"):
        load_config(str(tmp_path / "missing.toml"))
