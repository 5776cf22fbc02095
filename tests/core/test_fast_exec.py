"""The fast path of plugin commands that exec a program with a credential (``CommandContext.exec_with``).

Driven through a generic test plugin (tests/core/good_plugins/gwtest_exec.py: ``gw pass-run
--profile P -- ARGS`` execs ``gwtest-child`` with a ``test-pass`` credential), with the real gw
executable in a temp home. Whether the slow path ran is seen from the outside: the plugin's
command appends to ``$GWTEST_SLOW`` (plugin code runs only on the slow path), and the import
log of ``python -X importtime`` shows which modules gw loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gw.commands import WORDS as CORE_WORDS
from gw.crypto import unseal
from gw.fastpath import command_word, fill
from gw.jsonscan import parse_json
from gw.store import Store, open_recipe, read_entry, recipe_path, seal_recipe
from gw.testing import GwHome
from tests.core.gw_test_support import GW, NOBODY, cache_file, cache_key, imported_modules, run_importtime

PLUGINS = Path(__file__).resolve().parent / "good_plugins"
COMMAND = "pass-run"
FORBIDDEN = ("pluggy", "argparse", "tomllib", "json", "requests", "boto3", "botocore", "importlib.metadata", "rich",
             "dataclasses")

CONFIG = """
[profiles.p]
steps = [{ use = "test-pass", user = "alice", endpoint = "https://one.test" }]

[profiles.q]
steps = [{ use = "test-pass", user = "bob" }]
"""

CHILD = """import json, os, sys
with open(os.environ["GWTEST_CHILD_LOG"], "a") as f:
    f.write(json.dumps({"name": %r, "argv0": sys.argv[0], "argv": sys.argv[1:],
                        "env": {k: v for k, v in os.environ.items() if k.startswith(("GWTEST_", "GW_PROFILE"))}}) + "\\n")
print("child ran")
if "--cat" in sys.argv:
    sys.stdout.write(sys.stdin.read())
sys.exit(int(sys.argv[sys.argv.index("--exit-with") + 1]) if "--exit-with" in sys.argv else 0)
"""


def run_verbose(home, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run gw under ``python -v`` (every import, also those by importlib, which -X importtime
    does not log): (the run, the modules gw imported). The child is not verbose."""
    proc = subprocess.run([sys.executable, "-v", GW, *args], env=home.env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, start_new_session=True, cwd=home.root)
    modules = {line.split("'")[1] for line in proc.stderr.splitlines() if line.startswith("import '")}
    return proc, modules


def install_child(directory: Path, name: str = "gwtest-child") -> Path:
    """An executable ``gwtest-child`` in ``directory`` that logs its argv and GWTEST_* environment."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "gwtest-child"
    path.write_text(f"#!{sys.executable} -S\n" + CHILD % name)
    path.chmod(0o755)
    return path


@dataclass
class PassHome:
    home: GwHome  # tests/conftest.py gw_home
    tmp: Path

    def run(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return self.home.run(*args, env=env)

    def call(self, *rest: str, profile: str = "p", env: dict | None = None) -> subprocess.CompletedProcess:
        return self.run(COMMAND, "--profile", profile, "--", *rest, env=env)

    def _lines(self, name: str) -> list[str]:
        path = self.tmp / name
        return path.read_text().splitlines() if path.exists() else []

    @property
    def slow_runs(self) -> int:
        return len(self._lines("slow.log"))

    @property
    def fetches(self) -> int:
        path = self.tmp / "fetches"
        return path.stat().st_size if path.exists() else 0

    def child_runs(self) -> list[dict]:
        return [json.loads(line) for line in self._lines("child.log")]

    def recipe(self, profile: str = "p", command: str = COMMAND) -> Path:
        return Path(recipe_path(str(self.home.cache_dir), command, profile, str(self.home.config_path)))

    def assert_fast(self, proc: subprocess.CompletedProcess, slow_before: int) -> dict:
        """The call was served by the fast path: the child ran, the plugin's command did not."""
        assert proc.returncode == 0, proc.stderr
        assert self.slow_runs == slow_before, "the slow path ran"
        return self.child_runs()[-1]

    def assert_slow(self, proc: subprocess.CompletedProcess, slow_before: int, code: int = 0) -> None:
        assert proc.returncode == code, proc.stderr
        assert self.slow_runs == slow_before + 1, "the fast path served it"


@pytest.fixture
def px(gw_home, tmp_path) -> PassHome:
    gw_home.load_plugin("gwtest_exec", PLUGINS)
    bindir = install_child(tmp_path / "bin").parent
    gw_home.env["PATH"] = f"{bindir}{os.pathsep}{gw_home.env['PATH']}"
    gw_home.env.update(GWTEST_FETCHES=str(tmp_path / "fetches"), GWTEST_SLOW=str(tmp_path / "slow.log"),
                       GWTEST_CHILD_LOG=str(tmp_path / "child.log"), GWTEST_REMOVED="from the user")
    gw_home.write_config(CONFIG)
    return PassHome(gw_home, tmp_path)


@pytest.fixture
def warm(px) -> PassHome:
    """``p`` has a fresh cache entry and a recipe (one slow run)."""
    first = px.call("first")
    assert first.returncode == 0, first.stderr
    assert px.slow_runs == 1 and px.fetches == 1 and px.recipe().exists()
    return px


def secret_of(serial: int) -> str:
    return f"pass-secret-{serial}-Zq9xLw2Kf7Hd3Vn8"


# -- the fast path serves -------------------------------------------------------------------
def test_first_call_is_slow_and_execs_with_the_credential(px):
    proc = px.call("a", "b")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "child ran\n" and proc.stderr == ""
    run = px.child_runs()[-1]
    assert run["argv"] == [f"--secret={secret_of(1)}", "--user", "alice", "--braces={x}", "a", "b"]
    assert run["env"]["GWTEST_SECRET"] == secret_of(1)
    assert run["env"]["GWTEST_ENDPOINT"] == "https://one.test/v1"
    assert "GWTEST_REMOVED" not in run["env"]  # None in env removes a variable
    assert px.slow_runs == 1


def test_a_cache_hit_execs_without_plugins_and_passes_args_untouched(warm):
    odd = ["list", "--", "--profile", "q", "{secret}", "{{x}}", "", "a b 'c' \"d\" $HOME ; | &", "ü\u00e9", "-"]
    hit = run_importtime(warm.home, COMMAND, "--profile", "p", "--", *odd)
    run = warm.assert_fast(hit, 1)
    assert hit.stdout == "child ran\n"
    # exactly what the slow path gives the child, ARGS as they were (no placeholder filled in them)
    assert run["argv"] == [f"--secret={secret_of(1)}", "--user", "alice", "--braces={x}", *odd]
    assert run["env"]["GWTEST_SECRET"] == secret_of(1) and run["env"]["GWTEST_ENDPOINT"] == "https://one.test/v1"
    assert "GWTEST_REMOVED" not in run["env"]
    assert warm.fetches == 1
    modules = imported_modules(hit.stderr)
    assert {"gw", "gw.fastpath", "gw.store", "gw.crypto"} <= modules  # the import log was read correctly
    # gw.commands itself is the index of the core's words (it imports nothing); no command module loads
    heavy = sorted(m for m in modules if m.startswith(("gw_plugins", "gwtest_", "gw.commands.")) or m.split(".")[0] in FORBIDDEN
                   or m in ("gw.app", "gw.loading", "gw.config", "gw.command_context", "gw.steps", "gw.builtin"))
    assert heavy == []
    assert [line for line in hit.stderr.splitlines() if not line.startswith("import time:")] == []


def test_a_cache_hit_from_a_regular_install_loads_cryptographys_binding_alone(warm, tmp_path):
    """Started as the installed launcher starts it (``-I -S``, gw beside its dependencies), the exec
    fast path loads cryptography's compiled binding without the package's ``__init__`` modules, as a
    credential-process hit does (gw.cachehit.load_binding)."""
    from tests.core.test_hot_path import _regular_install

    python, launcher = _regular_install(tmp_path / "prefix")
    hit = subprocess.run([str(python), "-I", "-S", "-X", "importtime", str(launcher), COMMAND, "--profile", "p", "--",
                          "x"], env=warm.home.env, capture_output=True, text=True, timeout=60,
                         stdin=subprocess.DEVNULL, cwd=warm.home.root)
    warm.assert_fast(hit, 1)
    modules = imported_modules(hit.stderr)
    assert {"gw.fastpath", "_cffi_backend"} <= modules  # the binding loaded (directly: no import log line of its own)
    assert not {"cryptography", "cryptography.hazmat", "cryptography.hazmat.bindings"} & modules


def test_the_slow_path_is_what_the_probes_would_catch(warm):
    """Guards the test above: on a miss the same probes see pluggy, argparse and the plugin."""
    warm.recipe().unlink()
    miss = run_importtime(warm.home, COMMAND, "--profile", "p", "--", "x")
    warm.assert_slow(miss, 1)
    assert {"pluggy", "argparse", "gw.app", "gw.loading"} <= imported_modules(miss.stderr)
    warm.recipe().unlink()
    miss, modules = run_verbose(warm.home, COMMAND, "--profile", "p", "--", "y")
    warm.assert_slow(miss, 2)
    assert {"pluggy", "argparse", "gwtest_exec", "gw_plugins"} <= modules


def test_a_cache_hit_loads_no_plugin_module(warm):
    """-X importtime does not see modules loaded by importlib (plugins): python -v does."""
    hit, modules = run_verbose(warm.home, COMMAND, "--profile", "p", "--", "v")
    warm.assert_fast(hit, 1)
    assert {"gw.fastpath", "gw.crypto"} <= modules
    assert sorted(m for m in modules if m.split(".")[0] in ("gwtest_exec", "gw_plugins", "pluggy", "argparse")) == []


def test_other_forms_of_the_command_line(warm):
    assert warm.assert_fast(warm.run(COMMAND, "--profile=p", "--", "eq"), 1)["argv"][-1] == "eq"
    by_env = warm.run(COMMAND, "--", "env", env={"GW_PROFILE": "p"})
    assert warm.assert_fast(by_env, 1)["argv"][-1] == "env"
    nothing = warm.run(COMMAND, "--profile", "p", "--")
    assert warm.assert_fast(nothing, 1)["argv"] == [f"--secret={secret_of(1)}", "--user", "alice", "--braces={x}"]
    # anything else goes through argparse, with the same result
    no_dashes = warm.run(COMMAND, "--profile", "p", "plain")
    warm.assert_slow(no_dashes, 1)
    assert warm.child_runs()[-1]["argv"][-1] == "plain"
    global_option = warm.run("--config", str(warm.home.config_path), COMMAND, "--profile", "p", "--", "g")
    warm.assert_slow(global_option, 2)
    assert warm.fetches == 1


def test_the_child_exit_code_and_streams_are_gws(warm):
    proc = warm.call("--exit-with", "7")
    assert proc.returncode == 7 and proc.stdout == "child ran\n"
    fed = warm.home.run(COMMAND, "--profile", "p", "--", "--cat", input="from stdin\n")
    assert fed.returncode == 0 and fed.stdout == "child ran\nfrom stdin\n"
    assert warm.slow_runs == 1  # both served by the fast path


def test_the_program_gets_default_signal_dispositions(px):
    """Python ignores SIGPIPE; the program must not inherit that (``cmd | head`` must end it)."""
    script = px.tmp / "sigs"
    script.write_text(f"#!/bin/sh\ngrep SigIgn /proc/$$/status >> {px.tmp / 'sigs.log'}\n")
    script.chmod(0o755)
    env = {"GWTEST_PROGRAM": str(script)}
    assert px.call("slow", env=env).returncode == 0
    assert px.call("fast", env=env).returncode == 0
    assert px.slow_runs == 1  # the second was the fast path's
    masks = [int(line.split()[1], 16) for line in (px.tmp / "sigs.log").read_text().splitlines()]
    assert len(masks) == 2
    for mask in masks:
        assert not mask & (1 << (13 - 1)), "SIGPIPE ignored"  # signal 13
        assert not mask & (1 << (25 - 1)), "SIGXFSZ ignored"  # signal 25 on Linux


def test_the_recipe_holds_no_secret_and_is_private(warm):
    path = warm.recipe()
    raw = path.read_bytes()
    assert path.stat().st_mode & 0o777 == 0o600 and path.stat().st_uid == os.getuid()
    assert path.parent == warm.home.cache_dir and path.name.startswith(f"_exec.{COMMAND}.")
    secret = secret_of(1)
    for form in (secret, secret[:12], secret[-12:], json.dumps(secret), secret.encode().hex()):
        assert form.encode() not in raw
    doc = json.loads(raw)
    recipe = doc["recipe"]
    assert set(doc) == {"mac", "recipe"}
    assert recipe["argv"] == ["gwtest-child", "--secret={secret}", "--user", "{user}", "--braces={{x}}"]
    assert recipe["env"] == {"GWTEST_SECRET": "{secret}", "GWTEST_ENDPOINT": "{endpoint}/v{serial}", "GWTEST_REMOVED": None}
    assert recipe["program"] == str(warm.tmp / "bin" / "gwtest-child")
    assert (recipe["command"], recipe["profile"], recipe["kind"]) == (COMMAND, "p", "test-pass")
    assert recipe["config"] == str(warm.home.config_path)
    header, _ = read_entry(str(cache_file(warm.home, "p")))[:2]
    assert recipe["digest"] == header.digest
    assert recipe["depends_on"] == {"GWTEST_PROGRAM": None}


def test_the_recipe_is_case_safe_and_per_profile(px):
    px.home.write_config(CONFIG + '\n[profiles.P]\nsteps = [{ use = "test-pass", user = "carol" }]\n')
    for profile in ("p", "P", "q"):
        assert px.call("x", profile=profile).returncode == 0
    names = {px.recipe(p).name for p in ("p", "P", "q")}
    assert len(names) == 3 and len({n.lower() for n in names}) == 3
    slow = px.slow_runs
    for profile, user in (("P", "carol"), ("p", "alice"), ("q", "bob")):
        assert px.assert_fast(px.call("y", profile=profile), slow)["argv"][2] == user


# -- whatever is not certain goes the slow way, safely -----------------------------------------
def test_a_changed_config_file_goes_slow_once_then_fast_again(warm):
    text = warm.home.config_path.read_text()
    warm.home.config_path.write_text(text + "\n# a comment\n")
    warm.assert_slow(warm.call("x"), 1)
    assert warm.fetches == 1  # the profile did not change: the entry was reused (and restamped)
    assert warm.assert_fast(warm.call("y"), 2)["argv"][-1] == "y"


def test_a_changed_profile_fetches_anew_and_an_old_recipe_is_never_replayed(warm):
    old_recipe = warm.recipe().read_bytes()
    warm.home.write_config(CONFIG.replace('user = "alice"', 'user = "alice2"'))
    warm.assert_slow(warm.call("x"), 1)
    assert warm.fetches == 2
    assert warm.child_runs()[-1]["argv"][:3] == [f"--secret={secret_of(2)}", "--user", "alice2"]
    assert warm.recipe().read_bytes() != old_recipe  # bound to the new digest
    warm.recipe().write_bytes(old_recipe)  # the previous profile's recipe, authentic but stale
    warm.assert_slow(warm.call("y"), 2)
    assert warm.child_runs()[-1]["argv"][:3] == [f"--secret={secret_of(2)}", "--user", "alice2"]
    assert warm.assert_fast(warm.call("z"), 3)["argv"][2] == "alice2"


def test_an_expired_entry_goes_slow_and_fetches(warm):
    key = cache_key(warm.home)
    header, line, body = read_entry(str(cache_file(warm.home, "p")))
    plaintext = unseal(key, body, line)
    header.refresh_at = int(time.time()) - 1
    Store(str(warm.home.cache_dir), str(warm.home.config_path)).store("p", header, plaintext, key)
    warm.assert_slow(warm.call("x"), 1)
    assert warm.fetches == 2 and warm.child_runs()[-1]["argv"][0] == f"--secret={secret_of(2)}"


def test_no_cache_and_a_missing_entry_go_slow(warm):
    warm.assert_slow(warm.call("x", env={"GW_NO_CACHE": "1"}), 1)
    cache_file(warm.home, "p").unlink()
    warm.assert_slow(warm.call("y"), 2)
    assert warm.fetches == 2  # GW_NO_CACHE turns off only the fast paths


@pytest.mark.parametrize("edit", ["program", "kind", "digest", "argv", "env", "profile", "mac"])
def test_an_edited_recipe_is_never_trusted(warm, edit):
    evil_log = warm.tmp / "evil.log"
    evil = warm.tmp / "evil"
    evil.write_text(f"#!/bin/sh\necho \"$@\" >> {evil_log}\n")
    evil.chmod(0o755)
    doc = json.loads(warm.recipe().read_bytes())
    recipe = doc["recipe"]
    if edit == "program":
        recipe["program"] = str(evil)
        recipe["argv"][0] = str(evil)
    elif edit == "kind":
        recipe["kind"] = "soracom-session"
    elif edit == "digest":
        recipe["digest"] = "0" * 64
    elif edit == "argv":
        recipe["argv"][2] = "{secret}"
    elif edit == "env":
        recipe["env"]["GWTEST_LEAK"] = "{secret}"
    elif edit == "profile":
        recipe["profile"] = "q"
    else:
        doc["mac"] = "0" * len(doc["mac"])
    body = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    warm.recipe().write_text(f'{{"mac":"{doc["mac"]}","recipe":{body}}}\n')
    proc = warm.call("x")
    warm.assert_slow(proc, 1)
    assert not evil_log.exists()
    run = warm.child_runs()[-1]
    assert run["argv"] == [f"--secret={secret_of(1)}", "--user", "alice", "--braces={x}", "x"]
    assert "GWTEST_LEAK" not in run["env"]
    assert json.loads(warm.recipe().read_bytes())["recipe"]["program"] == str(warm.tmp / "bin" / "gwtest-child")


def test_a_recipe_resealed_for_another_profile_is_not_replayed(warm):
    """Even an authentic recipe (sealed with the right key) serves only the profile it names."""
    key = cache_key(warm.home)
    assert warm.call("q-first", profile="q").returncode == 0
    slow = warm.slow_runs
    recipe = json.loads(warm.recipe("p").read_bytes())["recipe"]  # p's recipe, at q's place
    warm.recipe("q").write_bytes(seal_recipe(key, json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode()))
    warm.assert_slow(warm.call("x", profile="q"), slow)
    assert warm.child_runs()[-1]["argv"][2] == "bob"


def test_an_unsafe_recipe_file_is_ignored(warm):
    path = warm.recipe()
    path.chmod(0o644)
    warm.assert_slow(warm.call("x"), 1)
    assert path.stat().st_mode & 0o777 == 0o600  # rewritten privately
    # a symlink to a valid recipe is not followed
    elsewhere = warm.tmp / "recipe-copy.json"
    shutil.copy(path, elsewhere)
    elsewhere.chmod(0o600)
    path.unlink()
    path.symlink_to(elsewhere)
    warm.assert_slow(warm.call("y"), 2)
    assert not path.is_symlink()
    warm.assert_fast(warm.call("z"), 3)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_recipe_owned_by_another_user_is_ignored(warm):
    os.chown(warm.recipe(), NOBODY, NOBODY)
    warm.assert_slow(warm.call("x"), 1)
    assert warm.recipe().stat().st_uid == os.getuid()


def test_a_dependency_variable_or_path_change_goes_slow(warm):
    other = install_child(warm.tmp / "other-bin", name="other")
    proc = warm.call("x", env={"GWTEST_PROGRAM": str(other)})
    warm.assert_slow(proc, 1)
    assert warm.child_runs()[-1]["name"] == "other"
    warm.assert_fast(warm.call("y", env={"GWTEST_PROGRAM": str(other)}), 2)
    assert warm.child_runs()[-1]["name"] == "other"
    warm.assert_slow(warm.call("z"), 2)  # the variable unset again
    assert warm.child_runs()[-1]["name"] == "gwtest-child"
    # another gwtest-child earlier on PATH: the fast path finds the program again, as the slow path would
    path = f"{other.parent}{os.pathsep}{warm.home.env['PATH']}"
    warm.assert_slow(warm.call("w", env={"PATH": path}), 3)
    assert warm.child_runs()[-1]["name"] == "other"
    assert warm.fetches == 1


def test_a_program_gone_since_the_recipe_is_one_line_and_127(warm):
    (warm.tmp / "bin" / "gwtest-child").unlink()
    proc = warm.call("x")
    assert proc.returncode == 127 and proc.stdout == ""
    assert proc.stderr == "gw: command not found: gwtest-child\n"
    assert warm.slow_runs == 2


def test_a_program_that_cannot_run_is_one_line_and_126(warm):
    broken = warm.tmp / "broken"
    broken.write_bytes(b"\x7fELF-not-really\x00\x01")
    broken.chmod(0o755)
    proc = warm.call("x", env={"GWTEST_PROGRAM": str(broken)})
    assert proc.returncode == 126 and proc.stdout == "", proc.stderr
    assert proc.stderr.startswith(f"gw: cannot run {broken}: ") and proc.stderr.count("\n") == 1


def test_a_placeholder_naming_no_field_is_a_plugin_bug_without_a_secret(warm):
    proc = warm.run("pass-bad", "--profile", "p", "--", "x")
    assert proc.returncode == 70 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "placeholder" in proc.stderr and secret_of(1) not in proc.stderr
    assert not Path(recipe_path(str(warm.home.cache_dir), "pass-bad", "p", str(warm.home.config_path))).exists()


def test_no_recipe_when_a_secret_is_written_literally(warm):
    for _ in range(2):
        proc = warm.run("pass-literal", "--profile", "p", "--", "x")
        assert proc.returncode == 0, proc.stderr
        assert warm.child_runs()[-1]["argv"] == [f"--secret={secret_of(1)}", "x"]  # it still runs
    assert not Path(recipe_path(str(warm.home.cache_dir), "pass-literal", "p", str(warm.home.config_path))).exists()
    assert warm.fetches == 1


def test_no_recipe_with_the_key_in_a_keyring(px, askpass, tmp_path):
    px.home.env.update(PYTHON_KEYRING_BACKEND="gw_test_keyring.FileKeyring",
                       GW_TEST_KEYRING_FILE=str(tmp_path / "keyring.json"))
    px.home.env["PYTHONPATH"] += os.pathsep + str(Path(__file__).parent)
    px.home.extra_settings.update(askpass=askpass[0], key_store="keyring")
    px.home.write_config(CONFIG)
    for n in range(2):
        px.assert_slow(px.call("x"), n)
    assert px.fetches == 1 and not px.recipe().exists()


# -- the pieces --------------------------------------------------------------------------------
def test_core_words_are_gws_own_top_level_commands(gw_home):
    from gw.app import App
    from gw.cli import build_parser

    parser = build_parser(App(config_path=str(gw_home.config_path)), ["exec"])
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == CORE_WORDS
    assert not any(command_word(w) for w in CORE_WORDS)
    assert command_word("soracom") and command_word("pass-run")
    for bad in ("", "-x", "Soracom", "a b", "a/b", "../x", "a.b", "ü"):
        assert not command_word(bad)


def test_fill():
    fields = {"api_key": "K", "token": "T{x}", "n": 3, "none": None, "flag": True, "list": ["x"]}
    assert fill("--api-key={api_key}", fields) == "--api-key=K"
    assert fill("{token}", fields) == "T{x}"  # a value is never filled again
    assert fill("v{n}/{{literal}}", fields) == "v3/{literal}"
    assert fill("plain", fields) == "plain"
    for bad in ("{missing}", "{none}", "{flag}", "{list}", "{api_key", "api_key}", "}", "{"):
        assert fill(bad, fields) is None


@settings(max_examples=200, deadline=None)
@given(st.text(), st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text() | st.integers()))
def test_fill_escaped_text_is_the_text(text, fields):
    """Any text, braces escaped, fills to itself; a placeholder of each field fills to its value."""
    assert fill(text.replace("{", "{{").replace("}", "}}"), fields) == text
    for name, value in fields.items():
        assert fill(f"<{{{name}}}>", fields) == f"<{value}>"


def test_parse_json_matches_json_loads():
    for text in ('{"a": [1, 2.5, "x\\u00e9\\n", null, true, false, {"b": {}}]}', " [] ", '"s"', "0"):
        assert parse_json(text) == json.loads(text)
    for bad in ("", "{", '{"a": 1} x', "NaN", '{"a": Infinity}', "[1,]"):
        with pytest.raises((ValueError, StopIteration)):
            parse_json(bad)


def test_open_recipe_checks_the_mac():
    key, other = os.urandom(32), os.urandom(32)
    body = json.dumps({"version": 1, "argv": ["x"]}, separators=(",", ":")).encode()
    sealed = seal_recipe(key, body)
    assert json.loads(sealed)["recipe"] == {"version": 1, "argv": ["x"]}
    assert open_recipe(key, sealed) == {"version": 1, "argv": ["x"]}
    assert open_recipe(other, sealed) is None
    assert open_recipe(key, sealed.replace(b'"x"', b'"y"')) is None
    assert open_recipe(key, sealed[:-1]) is None
    assert open_recipe(key, b"") is None
    assert open_recipe(key, seal_recipe(key, b'{"version":2}')) is None



def test_cache_clear_drops_the_recipes(warm):
    """``gw cache clear`` (the profile's, or all) removes the exec recipes with the entries."""
    assert warm.recipe().exists()
    assert warm.run("cache", "clear", "--profile", "q").returncode == 0  # another profile: p's recipe stays
    assert warm.recipe().exists()
    assert warm.run("cache", "clear", "--profile", "p").returncode == 0
    assert not warm.recipe().exists()
    assert warm.call("again").returncode == 0 and warm.recipe().exists()
    assert warm.run("cache", "clear").returncode == 0
    assert not warm.recipe().exists()
