"""Reading and checking the TOML config (structure only).

Step types and their options are checked against the plugins in
:mod:`gw.chain`; this module checks everything that needs no plugin and keeps
the location of every value for error messages (``profiles.admin.steps[1]``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .steps import Option, type_name

PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")
PROFILE_NAME_RULE = "profile names use letters, digits and _ . @ - (starting with a letter or digit)"
PROFILE_KEYS = {"description", "steps", "region"}
MAX_CONFIG = 1024 * 1024  # bytes
# Every number in [settings]: (lowest, highest) allowed; NaN and infinities never are.
SETTING_RANGES: dict[str, tuple[float, float]] = {
    "lock_timeout": (0.001, 86400.0),
    "prompt_timeout": (1.0, 86400.0),
}
KEY_STORES = ("file", "keyring")


@dataclass
class Settings:
    """``[settings]``: options that apply to every profile."""

    lock_timeout: float = 120.0
    ca_bundle: str | None = None
    key_store: str = "file"
    askpass: str | None = None
    prompt_timeout: float = 300.0
    disable_plugins: list[str] = field(default_factory=list)
    plugin_values: dict[str, Any] = field(default_factory=dict)  # keys plugins declare (gw_settings), unchecked
    plugin_tables: dict[str, Any] = field(default_factory=dict)  # top-level tables plugins declare, unchecked
    problems: dict[str, str] = field(default_factory=dict)  # setting -> its one-line error (default kept)

    def __getattribute__(self, name: str) -> Any:
        # A wrong setting fails only the commands that read it (the default stands in for the rest).
        problems = object.__getattribute__(self, "problems")
        if name in problems:
            raise ConfigError(problems[name])
        return object.__getattribute__(self, name)


CORE_SETTINGS: dict[str, Option] = {  # gw's own [settings] keys (plugins declare theirs: gw_settings)
    "lock_timeout": Option((int, float)),
    "ca_bundle": Option(str),
    "key_store": Option(str),
    "askpass": Option(str),
    "prompt_timeout": Option((int, float)),
    "disable_plugins": Option(list),
}


@dataclass
class Profile:
    name: str
    steps: list[dict[str, Any]]
    description: str = ""
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    region: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """SHA-256 of the profile's configuration: the cache key beside its name."""
        canonical = json.dumps({"name": self.name, "profile": self.raw}, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def where(self, index: int | None = None) -> str:
        if index is None:
            return f"profiles.{self.name}"
        use = self.steps[index].get("use", "?") if index < len(self.steps) else "?"
        return f"profiles.{self.name}.steps[{index}] ({use})"


@dataclass
class Config:
    path: str
    settings: Settings
    profiles: dict[str, Profile]
    stamp: tuple[int, int, int, int] = (0, 0, 0, 0)
    problems: list[str] = field(default_factory=list)  # config-wide mistakes (a misspelt top-level table)
    broken: dict[str, list[str]] = field(default_factory=dict)  # profile -> its structural mistakes

    def profile(self, name: str) -> Profile:
        """The profile ``name``; a broken one fails alone, a typo gets the nearest name."""
        if name in self.profiles:
            return self.profiles[name]
        if name in self.broken:
            found = self.broken[name]
            more = f" (and {len(found) - 1} more: run gw check)" if len(found) > 1 else ""
            raise ConfigError(found[0] + more)
        names = sorted([*self.profiles, *self.broken])
        hint = suggest(name, names)
        listed = "" if hint else f" (profiles: {', '.join(names) if len(names) <= 8 else 'run gw profiles'})"
        if not names:
            listed = " (it defines none)"
        # [profile.x] for [profiles.x], or a name no command line can give: said beside the miss
        also = "".join(f"; {p}" for p in self.problems if "'profiles'" in p or PROFILE_NAME_RULE in p)
        raise ConfigError(f"no profile named {name!r} in {self.path}{hint or listed}{also}")

    def all_problems(self) -> list[str]:
        """Every mistake found without plugins: config-wide, settings, then each profile's."""
        return [*self.problems, *self.settings.problems.values(),
                *(line for found in self.broken.values() for line in found)]


def suggest(word: str, choices: Any) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_config(path: str | None = None) -> Config:
    """Read and structurally check the config file."""
    import tomllib

    from .paths import UnsafePath, config_path, open_regular

    path = os.path.abspath(path or config_path())
    try:
        fd = open_regular(path, follow=True)  # a FIFO or directory at the path is refused, never waited on
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            problem = _config_file_problem(path, st)
            if problem:
                raise ConfigError(f"refusing to use the config: {problem}")
            if st.st_size > MAX_CONFIG:
                raise ConfigError(f"{path} is {st.st_size} bytes; a gw config is at most {MAX_CONFIG} bytes")
            raw = f.read(MAX_CONFIG + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"no config file at {path}; create one (see config.example.toml) or set GW_CONFIG"
        ) from None
    except UnsafePath as exc:
        raise ConfigError(f"cannot read the config: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line} (offset {exc.start}); save it as UTF-8"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    config = parse_config(data, path)
    config.stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
    return config


def _config_file_problem(path: str, st: os.stat_result) -> str | None:
    """Why the config file is unsafe to obey, or None.

    The config names programs gw runs (``askpass``), endpoints that receive your keys and
    the CA bundle that vouches for them, so - like OpenSSH with ``~/.ssh/config``
    (readconf.c, ``secure_permissions``) - it must be yours (or root's) and writable by
    nobody else. Readable by others is fine: it holds no secrets.
    """
    uid = os.getuid() if hasattr(os, "getuid") else None
    if uid is not None and st.st_uid not in (uid, 0):
        return f"{path} belongs to another user (uid {st.st_uid}); fix it with: chown {uid} {path}"
    if st.st_mode & 0o022:
        return f"{path} is writable by others (mode {st.st_mode & 0o777:04o}); fix it with: chmod go-w {path}"
    return None


def parse_config(data: dict[str, Any], path: str) -> Config:
    """Check the structure; every mistake is recorded where it belongs, so each fails alone."""
    plugin_tables: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in data.items():
        if key in ("settings", "profiles"):
            continue
        hint = suggest(key, ("settings", "profiles"))
        if hint or not isinstance(value, dict):  # a misspelt core table, or no table at all
            problems.append(f"{path}: {key}: unknown top-level table{hint}")
            continue
        plugin_tables[key] = value  # a plugin's (Setting(top_level=True)), checked with the plugins (gw.chain)
    settings = _parse_settings(data.get("settings", {}), path)
    if "settings" in settings.problems:  # settings = 3: no setting to blame, so the whole file's
        problems.append(settings.problems.pop("settings"))
    settings.plugin_tables = plugin_tables
    profiles_raw = data.get("profiles", {})
    if not isinstance(profiles_raw, dict):
        problems.append(f"{path}: profiles: must be a table of profiles")
        profiles_raw = {}
    profiles: dict[str, Profile] = {}
    broken: dict[str, list[str]] = {}
    for name, raw in profiles_raw.items():
        profile, found = _parse_profile(name, raw, path)
        if found and not PROFILE_NAME.match(name):
            problems += found  # no command can select it: a config-wide mistake
        elif found:
            broken[name] = found
        else:
            assert profile is not None
            profiles[name] = profile
    return Config(path=path, settings=settings, profiles=profiles, problems=problems, broken=broken)


def _parse_settings(raw: Any, path: str) -> Settings:
    settings = Settings()
    if not isinstance(raw, dict):
        settings.problems["settings"] = f"{path}: settings: must be a table"
        return settings
    problems: dict[str, str] = {}
    for key, value in raw.items():
        if key not in CORE_SETTINGS:  # a plugin's, checked once the plugins are loaded (gw.chain)
            settings.plugin_values[key] = value
            continue
        low, high = SETTING_RANGES.get(key, (0, 0))
        number = key in SETTING_RANGES and isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and not (math.isfinite(value) and low <= value <= high):
            problems[key] = f"{path}: settings.{key}: must be a number of seconds from {low:g} to {high:g}, not {value!r}"
            continue
        try:
            setattr(settings, key, CORE_SETTINGS[key].validate(value))
        except ValueError as exc:
            problems[key] = f"{path}: settings.{key}: {exc}"
    if "disable_plugins" not in problems and not all(isinstance(n, str) for n in settings.disable_plugins):
        problems["disable_plugins"] = f"{path}: settings.disable_plugins: must be an array of plugin names"
        settings.disable_plugins = []
    if "key_store" not in problems and settings.key_store not in KEY_STORES:
        problems["key_store"] = (f"{path}: settings.key_store: must be one of {', '.join(KEY_STORES)}"
                                 f"{suggest(settings.key_store, KEY_STORES)}")
    if settings.ca_bundle:
        settings.ca_bundle = os.path.expanduser(settings.ca_bundle)
    settings.problems = problems
    return settings


def _parse_profile(name: str, raw: Any, path: str) -> tuple[Profile | None, list[str]]:
    """The profile, or its mistakes (every one of them, each ``path: where: message``)."""
    where = f"profiles.{name}"
    if not PROFILE_NAME.match(name):
        return None, [f"{path}: {where}: {PROFILE_NAME_RULE}"]
    if not isinstance(raw, dict):
        return None, [f"{path}: {where}: must be a table"]
    problems: list[str] = []
    # Any other key may be a plugin's profile table ([profiles.x.login]): checked with the plugins
    # (gw.chain.check_profile), which tell a misspelt option from a known table of the wrong type.
    tables: dict[str, Any] = {key: value for key, value in raw.items() if key not in PROFILE_KEYS}
    steps = raw.get("steps")
    if not isinstance(steps, list) or not steps:
        problems.append(f"{path}: {where}.steps: must be a non-empty array of steps like {{ use = \"...\" }}")
        steps = []
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            problems.append(f"{path}: {where}.steps[{i}]: must be a table, not {type_name(step)}")
        elif not isinstance(step.get("use"), str) or not step["use"]:
            problems.append(f"{path}: {where}.steps[{i}]: needs use = \"<step type>\"")
    description = raw.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{path}: {where}.description: must be a string, not {type_name(description)}")
    region = raw.get("region")
    if region is not None and not isinstance(region, str):
        problems.append(f"{path}: {where}.region: must be a string, not {type_name(region)}")
    if problems:
        return None, problems
    return Profile(name=name, steps=steps, description=description, tables=tables, region=region, raw=raw), []
