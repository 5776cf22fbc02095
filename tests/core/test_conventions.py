"""Conventions aws-vault / granted users expect: GW_PROFILE, --refresh, --min-ttl, --region,
AccountId, --json, plain tables on a pipe, help with examples, exit codes, completion.

Real gw, the real AWS CLI and moto's STS.
"""

from __future__ import annotations

import argparse
import json
import subprocess

import pytest

from tests.conftest import AWS_CLI
from tests.core.gw_test_support import GW, ROLE, keys_from_env, role_profile

ACCOUNT = "123456789012"


@pytest.fixture
def role_home(aws_home, iam_user):
    keys_from_env(aws_home, iam_user)
    aws_home.write_config(role_profile("admin") + role_profile("eu", extra='region = "eu-central-1"')
                          + '[profiles.keys]\nsteps = [{ use = "aws-keys", access_key_id = "env:GWT_AKID", '
                            'secret_access_key = "env:GWT_SECRET" }]\n')
    return aws_home


def _json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- GW_PROFILE ---------------------------------------------------------------------------
def test_gw_profile_is_the_default_profile(role_home, moto):
    first = _json(role_home.run_in_process("credential-process", env={"GW_PROFILE": "admin"}))  # the ordinary path
    cached = _json(role_home.run_in_process("credential-process", env={"GW_PROFILE": "admin"}))  # the fast path
    assert cached == first and moto.lookup(first["AccessKeyId"]).kind == "assume-role"
    env = _json(role_home.run_in_process("env", "--format", "json", env={"GW_PROFILE": "admin"}))
    assert env["AWS_ACCESS_KEY_ID"] == first["AccessKeyId"]
    explicit = _json(role_home.run_in_process("env", "--profile", "keys", "--format", "json", env={"GW_PROFILE": "admin"}))
    assert explicit["AWS_ACCESS_KEY_ID"] != first["AccessKeyId"]  # --profile wins
    # a plugin command's --profile too (gw login)
    login = role_home.run_in_process("login", "--print", "--destination", "https://console.aws.amazon.com/",
                          env={"GW_PROFILE": "admin"})
    assert "the following arguments are required: --profile" not in login.stderr
    # and a plugin subcommand's (gw krypton pin status: the profile has no krypton step)
    pin = role_home.run_in_process("krypton", "pin", "status", env={"GW_PROFILE": "admin"})
    assert "required: --profile" not in pin.stderr and "admin" in pin.stderr, pin.stderr


def test_without_gw_profile_the_profile_is_required(role_home):
    result = role_home.run_in_process("credential-process")
    assert result.returncode == 2 and "the following arguments are required: --profile" in result.stderr


# -- --refresh and --min-ttl ----------------------------------------------------------------
def test_refresh_and_min_ttl(role_home, moto):
    before = moto.count("AssumeRole")
    first = _json(role_home.run_in_process("credential-process", "--profile", "admin"))
    assert _json(role_home.run_in_process("credential-process", "--profile", "admin")) == first
    assert moto.count("AssumeRole") == before + 1
    refreshed = _json(role_home.run_in_process("credential-process", "--profile", "admin", "--refresh"))
    assert refreshed["AccessKeyId"] != first["AccessKeyId"] and moto.count("AssumeRole") == before + 2
    # 1 h credentials have more than 30 min left: cached; never 2 h: fetched
    assert _json(role_home.run_in_process("env", "--profile", "admin", "--format", "json", "--min-ttl", "30m")
                 )["AWS_ACCESS_KEY_ID"] == refreshed["AccessKeyId"]
    assert moto.count("AssumeRole") == before + 2
    again = _json(role_home.run_in_process("env", "--profile", "admin", "--format", "json", "--min-ttl", "2h"))
    assert again["AWS_ACCESS_KEY_ID"] != refreshed["AccessKeyId"] and moto.count("AssumeRole") == before + 3
    # the new credentials were cached: an ordinary call gets them
    assert _json(role_home.run_in_process("credential-process", "--profile", "admin"))["AccessKeyId"] == again["AWS_ACCESS_KEY_ID"]


def test_the_cache_hit_path_honours_gw_profile_and_min_ttl(role_home, moto):
    """GW_PROFILE and --min-ttl keep the no-plugin, no-boto3 fast path; more than is left does not."""
    from tests.core.gw_test_support import imported_modules, run_importtime

    first = _json(role_home.run_in_process("credential-process", "--profile", "admin"))
    before = moto.count("AssumeRole")
    for args, env in ((["--min-ttl", "30m", "--profile", "admin"], {}), (["--min-ttl=900"], {"GW_PROFILE": "admin"}),
                      ([], {"GW_PROFILE": "admin"})):
        role_home.env.update(env)
        hit = run_importtime(role_home, "credential-process", *args)
        for key in env:
            del role_home.env[key]
        assert hit.returncode == 0 and json.loads(hit.stdout) == first
        modules = imported_modules(hit.stderr)
        assert "gw.cachehit" in modules and not {"argparse", "boto3", "pluggy", "gw.cli"} & modules, args
    assert moto.count("AssumeRole") == before
    miss = run_importtime(role_home, "credential-process", "--profile", "admin", "--min-ttl", "2h")
    assert miss.returncode == 0 and "gw.app" in imported_modules(miss.stderr)  # the ordinary path (no argparse: cli._plain_miss)
    assert json.loads(miss.stdout)["AccessKeyId"] != first["AccessKeyId"] and moto.count("AssumeRole") == before + 1


@pytest.mark.parametrize("text, seconds", [("900", 900), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400)])
def test_durations(text, seconds):
    from gw.cli_options import parse_duration
    from gw.durations import duration_seconds as _seconds

    assert parse_duration(text) == seconds == _seconds(text)


@pytest.mark.parametrize("text", ["", "m", "1d", "-5", "10 m", "h1"])
def test_bad_durations(text, role_home):
    from gw.cli_options import parse_duration
    from gw.durations import duration_seconds as _seconds

    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)
    assert _seconds(text) is None
    if text:
        result = role_home.run_in_process("env", "--profile", "admin", "--min-ttl", text)
        assert result.returncode == 2 and "is not a duration" in result.stderr and "Traceback" not in result.stderr


# -- region precedence and the account ------------------------------------------------------------
def _region(home, profile: str, *args: str, env: dict | None = None) -> str | None:
    values = _json(home.run_in_process("env", "--profile", profile, "--format", "json", *args, env=env))
    assert values.get("AWS_REGION") == values.get("AWS_DEFAULT_REGION")
    return values.get("AWS_REGION")


def test_region_precedence(aws_home, iam_user):
    keys_from_env(aws_home, iam_user)
    # the assume-role step's STS region (ap-northeast-1) is only the last resort
    step = f'{{ use = "assume-role", role_arn = "{ROLE}", region = "ap-northeast-1" }}'
    source = '{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }'
    aws_home.write_config(f'[profiles.withregion]\nregion = "eu-west-1"\nsteps = [{source}, {step}]\n'
                          f"[profiles.stepregion]\nsteps = [{source}, {step}]\n")
    del aws_home.env["AWS_DEFAULT_REGION"]
    assert _region(aws_home, "withregion", "--region", "us-west-2") == "us-west-2"  # --region first
    assert _region(aws_home, "withregion") == "eu-west-1"  # then the profile's region
    assert _region(aws_home, "withregion", env={"AWS_REGION": "sa-east-1"}) == "eu-west-1"
    assert _region(aws_home, "stepregion", env={"AWS_REGION": "sa-east-1"}) is None  # the caller's stays
    assert _region(aws_home, "stepregion", env={"AWS_DEFAULT_REGION": "sa-east-1"}) is None
    assert _region(aws_home, "stepregion") == "ap-northeast-1"  # then what the step used
    # gw exec: the child sees the caller's own region untouched
    out = aws_home.run("exec", "--profile", "stepregion", "--", "sh", "-c", 'echo "$AWS_REGION"',
                       env={"AWS_REGION": "sa-east-1"})
    assert out.returncode == 0 and out.stdout.strip() == "sa-east-1"
    out = aws_home.run("exec", "--profile", "stepregion", "--region", "us-west-1", "--", "sh", "-c", 'echo "$AWS_REGION"',
                       env={"AWS_REGION": "sa-east-1"})
    assert out.stdout.strip() == "us-west-1"


def test_account_id_in_credential_process_and_env(role_home):
    doc = _json(role_home.run_in_process("credential-process", "--profile", "admin"))
    assert doc["AccountId"] == ACCOUNT
    env = _json(role_home.run_in_process("env", "--profile", "admin", "--format", "json"))
    assert env["AWS_ACCOUNT_ID"] == ACCOUNT
    out = role_home.run("exec", "--profile", "admin", "--", "sh", "-c", 'echo "$AWS_ACCOUNT_ID"')
    assert out.stdout.strip() == ACCOUNT
    # long-term keys: unknown, so not set (and a caller's stale value is not passed on)
    keys = _json(role_home.run_in_process("credential-process", "--profile", "keys"))
    assert "AccountId" not in keys
    out = role_home.run("exec", "--profile", "keys", "--", "sh", "-c", 'echo "[$AWS_ACCOUNT_ID]"',
                        env={"AWS_ACCOUNT_ID": "999999999999"})
    assert out.stdout.strip() == "[]"


def test_botocore_reads_the_account_id(role_home):
    """The real AWS CLI loads gw's credential_process output including AccountId."""
    role_home.aws_config.write_text(f"[profile admin]\ncredential_process = {GW} credential-process --profile admin\n")
    result = subprocess.run(check=False, args=[AWS_CLI, "sts", "get-caller-identity", "--profile", "admin"], env=role_home.env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Account"] == ACCOUNT


# -- --json, plain tables, help and exit codes -------------------------------------------------------
def test_json_outputs(role_home):
    role_home.run_in_process("credential-process", "--profile", "admin", check=True)
    profiles = _json(role_home.run_in_process("profiles", "--json"))
    by_name = {p["name"]: p for p in profiles}
    assert by_name["admin"]["steps"] == ["aws-keys", "assume-role"]
    assert by_name["admin"]["output"] == "aws-credentials" and by_name["admin"]["cached_until"].endswith("Z")
    assert by_name["eu"]["region"] == "eu-central-1" and by_name["keys"]["cached_until"] is None
    cache = _json(role_home.run_in_process("cache", "list", "--json"))
    assert [(e["name"], e["kind"], e["state"]) for e in cache] == [("admin", "aws-credentials", "fresh")]
    plugins = {p["name"]: p for p in _json(role_home.run_in_process("plugins", "--json"))}
    assert any(s["name"] == "assume-role" for s in plugins["aws"]["step_types"])
    assert "cmd:" in plugins["core"]["secret_schemes"]
    check = _json(role_home.run_in_process("check", "--json"))
    assert check == {"config": str(role_home.config_path), "ok": True, "problems": [], "warnings": [], "profiles": 3}


def test_check_problems_have_their_own_exit_status(role_home):
    role_home.write_config('[profiles.bad]\nsteps = [{ use = "assume-role", role_arn = "x" }]\n')
    result = role_home.run_in_process("check", "--json")
    assert result.returncode == 3
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and any("cannot come first" in p for p in doc["problems"])
    role_home.config_path.write_text("[profiles.broken\n")
    result = role_home.run_in_process("check")
    assert result.returncode == 3 and "Traceback" not in result.stderr
    missing = role_home.run_in_process("check", "--json", env={"GW_CONFIG": str(role_home.root / "absent.toml")})
    assert missing.returncode == 3
    assert json.loads(missing.stdout)["config"] == str(role_home.root / "absent.toml")
    assert role_home.run_in_process("check", "--bogus").returncode == 2  # a usage error stays 2


def test_tables_are_plain_text_on_a_pipe(role_home):
    result = role_home.run_in_process("profiles")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "profile\tsteps\toutput\texpires\tcached"
    assert "admin\taws-keys -> assume-role\taws-credentials\t-\t0 of 2" in lines
    assert not any(ch in result.stdout for ch in "┃│━─┏└╇")
    plugins = role_home.run_in_process("plugins").stdout
    assert plugins.startswith("plugin\t") and not any(ch in plugins for ch in "┃│━─")


def _subcommands(parser: argparse.ArgumentParser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subcommands(sub, (*path, name))


def test_every_subcommand_has_a_description_and_examples(role_home):
    """Every command gw offers, the core's and every installed plugin's, down to subcommands."""
    from gw.app import App
    from gw.cli import build_parser

    app = App()
    parser = build_parser(app, [])
    seen, missing = [], []
    for path, sub in _subcommands(parser):
        seen.append(" ".join(path))
        if not sub.description:
            missing.append(f"gw {' '.join(path)}: no description")
        if not (sub.epilog and "example" in sub.epilog):
            missing.append(f"gw {' '.join(path)}: no examples")
    assert missing == []
    assert {"exec", "serve ecs", "completion", "import aws", "rotate", "login", "soracom", "krypton pin",
            "iot register", "demo"} <= set(seen)
    helped = role_home.run_in_process("serve", "ecs", "--help")
    assert helped.returncode == 0 and "examples:" in helped.stdout


def test_exit_codes_are_in_the_help(role_home):
    from gw.errors import EXIT_CODES

    text = role_home.run_in_process("--help").stdout
    for code, meaning in EXIT_CODES:
        assert f"  {code:<4} {meaning}" in text


# -- completion -----------------------------------------------------------------------------------
def _complete(script: str, words: list[str], env: dict[str, str]) -> list[str]:
    line = " ".join(words)
    bash = (f'source "{script}"\nCOMP_WORDS=({" ".join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n'
            f'COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}\n_shtab_gw\nprintf "%s\\n" "${{COMPREPLY[@]}}"\n')
    result = subprocess.run(check=False, args=["bash", "-c", bash], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [w for w in result.stdout.splitlines() if w]


def test_bash_completion_knows_commands_and_profile_names(role_home, tmp_path):
    script = tmp_path / "gw.bash"
    result = role_home.run_in_process("completion", "bash")
    assert result.returncode == 0, result.stderr
    script.write_text(result.stdout)
    # no gw on PATH while completing: no Python runs per TAB
    env = {"PATH": "/usr/bin:/bin", "GW_CONFIG": str(role_home.config_path), "HOME": str(role_home.home)}
    assert "credential-process" in _complete(str(script), ["gw", "cre"], env)
    assert set(_complete(str(script), ["gw", "env", "--profile", ""], env)) == {"admin", "eu", "keys"}
    assert _complete(str(script), ["gw", "exec", "--profile", "e"], env) == ["eu"]
    assert "ecs" in _complete(str(script), ["gw", "serve", ""], env)
    role_home.config_path.write_text(role_home.config_path.read_text() + '\n[profiles."quoted.name"]\nsteps = []\n')
    assert "quoted.name" in _complete(str(script), ["gw", "login", "--profile", "q"], env)


def _shell(name: str) -> str:
    """The shell's path; skipped when missing, except under CI=true (tests/install-tools.sh installs it)."""
    import os
    import shutil

    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} is missing under CI=true (tests/install-tools.sh installs it)")
        pytest.skip(f"{name} is not installed (tests/install-tools.sh installs it)")
    return path


@pytest.mark.parametrize("shell, marker", [("zsh", "#compdef gw"), ("fish", "complete -c gw")])
def test_zsh_and_fish_scripts(role_home, shell, marker, tmp_path):
    result = role_home.run_in_process("completion", shell)
    assert result.returncode == 0 and marker in result.stdout
    assert ("_gw_zsh_profiles" if shell == "zsh" else "__gw_profiles") in result.stdout
    script = tmp_path / f"gw.{shell}"
    script.write_text(result.stdout)
    checked = subprocess.run(check=False, args=[_shell(shell), "-n", str(script)], capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stderr


def test_zsh_completes_profile_names(role_home, tmp_path):
    """The zsh script's profile completer, run by zsh itself on the real config (compadd, the
    completion system's builtin, is replaced by a function printing what it was given)."""
    zsh = _shell("zsh")
    script = tmp_path / "_gw"
    script.write_text(role_home.run_in_process("completion", "zsh", check=True).stdout)
    env = {"PATH": "/usr/bin:/bin", "GW_CONFIG": str(role_home.config_path), "HOME": str(role_home.home)}
    code = (f"autoload -U compinit && compinit -u -D; source {script}; "
            "compadd() { [[ $1 == -a ]] && print -rl -- ${(P)2} }; _gw_zsh_profiles")
    done = subprocess.run([zsh, "-f", "-c", code], env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) == {"admin", "eu", "keys"}


def test_fish_completes_profiles_and_commands(role_home, tmp_path):
    fish = _shell("fish")
    script = tmp_path / "gw.fish"
    script.write_text(role_home.run_in_process("completion", "fish", check=True).stdout)
    env = {"PATH": "/usr/bin:/bin", "GW_CONFIG": str(role_home.config_path), "HOME": str(role_home.home)}

    def complete(line: str) -> list[str]:
        done = subprocess.run(check=False, args=[fish, "--no-config", "-c", f"source {script}; complete -C '{line}'"],
                              env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return [row.split("\t", 1)[0] for row in done.stdout.splitlines()]

    assert set(complete("gw env --profile ")) == {"admin", "eu", "keys"}
    assert "credential-process" in complete("gw cre")
    assert "ecs" in complete("gw serve ")


def test_fish_shows_each_profiles_own_description(gw_home, tmp_path):
    fish = _shell("fish")
    gw_home.write_config('[profiles.admin]  # the admins\ndescription = "admin role with \\"MFA\\""\n'
                         'steps = [{ use = "aws-keys", access_key_id = "a", secret_access_key = "env:S" }]\n\n'
                         '[profiles."eu"]\nsteps = [{ use = "aws-keys", access_key_id = "a", secret_access_key = "env:S" }]\n'
                         'description = "Frankfurt, read only"\n\n[profiles.bare]\n'
                         'steps = [{ use = "aws-keys", access_key_id = "a", secret_access_key = "env:S" }]\n')
    script = tmp_path / "gw.fish"
    script.write_text(gw_home.run_in_process("completion", "fish").stdout)
    env = {"PATH": "/usr/bin:/bin", "GW_CONFIG": str(gw_home.config_path), "HOME": str(gw_home.home)}
    done = subprocess.run([fish, "--no-config", "-c", f"source {script}; complete -C 'gw exec --profile '"],
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    rows = dict(row.partition("\t")[::2] for row in done.stdout.splitlines())
    assert rows["admin"] == 'admin role with "MFA"' and rows["eu"] == "Frankfurt, read only"
    assert rows["bare"] in ("", "the gw profile (default: $GW_PROFILE)")  # no description of its own
