"""The ``cmd:`` secret scheme: the first line a command prints, run without a shell.

Real gw, real child processes (small scripts standing in for pass / bw / ykman, which
print the secret on their first line).
"""

from __future__ import annotations

import json

from tests.core.gw_test_support import assert_clean_failure

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCMDSECRET1"


def _script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return str(path)


def _profile(home, akid_ref: str, secret_ref: str) -> None:
    home.write_config(f"[profiles.p]\nsteps = [{{ use = \"aws-keys\", access_key_id = {akid_ref}, "
                      f"secret_access_key = {secret_ref} }}]\n")


def _env(home, **kwargs):
    return home.run_in_process("env", "--profile", "p", "--format", "json", **kwargs)


def test_first_line_of_the_command_is_the_secret(gw_home, tmp_path):
    # like `pass show`: the password, then metadata lines
    fake_pass = _script(tmp_path, "fake-pass", f'[ "$1" = show ] && [ "$2" = "aws/work key" ] || exit 9\n'
                                                f'echo "{SECRET}"\necho "login: someone"\n')
    _profile(gw_home, '"cmd:echo AKIACMDSCHEMEEXAMPLE"', f"\"cmd:{fake_pass} show 'aws/work key'\"")
    result = _env(gw_home)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["AWS_ACCESS_KEY_ID"] == "AKIACMDSCHEMEEXAMPLE"
    assert values["AWS_SECRET_ACCESS_KEY"] == SECRET
    assert gw_home.run_in_process("check").returncode == 0


def test_no_shell_and_stdin_is_dev_null(gw_home, tmp_path):
    reader = _script(tmp_path, "reader", 'read line; echo "got:[$line]"\n')
    _profile(gw_home, '"cmd:echo $HOME; touch /tmp/gw-cmd-scheme-pwned"', f'"cmd:{reader}"')
    result = _env(gw_home, input="typed-into-gw\n")  # gw's own stdin carries data; the child must not see it
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["AWS_ACCESS_KEY_ID"] == "$HOME; touch /tmp/gw-cmd-scheme-pwned"  # literal: no shell ran
    assert values["AWS_SECRET_ACCESS_KEY"] == "got:[]"


def test_a_failing_command_never_shows_its_output(gw_home, tmp_path):
    leaky = _script(tmp_path, "leaky", f'echo "{SECRET}"\necho "{SECRET}" >&2\nexit 3\n')
    _profile(gw_home, '"cmd:echo AKIACMDSCHEMEEXAMPLE"', f'"cmd:{leaky}"')
    result = _env(gw_home)
    line = assert_clean_failure(result, contains="cmd: leaky exited with status 3")
    assert SECRET not in result.stderr and SECRET not in line


def test_timeout_and_missing_command(gw_home, tmp_path):
    slow = _script(tmp_path, "slow", "exec sleep 30\n")
    _profile(gw_home, '"cmd:echo AKIACMDSCHEMEEXAMPLE"', f'{{ cmd = "{slow}", timeout = 1 }}')
    result = _env(gw_home, timeout=20)
    assert_clean_failure(result, contains="cmd: slow did not finish within 1 s")
    _profile(gw_home, '"cmd:echo AKIACMDSCHEMEEXAMPLE"', '"cmd:no-such-password-manager get x"')
    assert_clean_failure(_env(gw_home), contains="cmd: command not found: no-such-password-manager")
    empty = _script(tmp_path, "empty", "echo\n")
    _profile(gw_home, '"cmd:echo AKIACMDSCHEMEEXAMPLE"', f'"cmd:{empty}"')
    assert_clean_failure(_env(gw_home), contains="printed nothing")


def test_check_rejects_malformed_cmd_references(gw_home):
    _profile(gw_home, '"cmd:"', '{ cmd = "pass show x", timeout = 0 }')
    result = gw_home.run_in_process("check")
    assert result.returncode == 3
    assert "cmd: needs a command after it" in result.stderr
    assert "cmd timeout must be a number of seconds from 1 to 3600" in result.stderr
    _profile(gw_home, '"cmd:pass show \'unclosed"', '{ cmd = "x", shell = true }')
    result = gw_home.run_in_process("check")
    assert result.returncode == 3
    assert "cannot split the command line" in result.stderr and "unknown key 'shell'" in result.stderr
