"""Secrets never reach stdout or stderr, whatever fails; every failure is one ``gw: `` line.

Known secrets are fed in (vault values, a TOTP seed, STS secrets and session tokens
that moto issued) and every error path we can reach is exercised. After each run,
every secret moto has ever issued is checked too, so credentials gw fetched during
the failing run are covered as well.
"""

from __future__ import annotations

import socket
import urllib.parse

import pyotp
import pytest

from gw.crypto import load_key
from gw.vault import Vault
from tests.core.gw_test_support import ROLE, assert_clean_failure


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def secrets_home(aws_home, iam_user, moto):
    """A home whose vault holds known secrets; returns (home, {name: secret value})."""
    home = aws_home
    sts = moto.client("sts", *iam_user)
    role = sts.assume_role(RoleArn=ROLE, RoleSessionName="leak-test")["Credentials"]
    session = sts.get_session_token(DurationSeconds=900)["Credentials"]
    values = {
        "akid": iam_user[0],
        "secret": iam_user[1],
        "seed": pyotp.random_base32(),
        "badseed": "NOT BASE32 " + pyotp.random_base32(),
        "ar_akid": role["AccessKeyId"],
        "ar_secret": role["SecretAccessKey"],
        "ar_token": role["SessionToken"],
        "st_akid": session["AccessKeyId"],
        "st_secret": session["SecretAccessKey"],
        "st_token": session["SessionToken"],
    }
    state = str(home.state)
    vault = Vault(state, lambda: load_key(state))
    for name, value in values.items():
        vault.set(name, value)
    secret_values = [v for k, v in values.items() if not k.endswith("akid")]
    return home, secret_values


def _assert_no_secret(result, secrets: list[str], moto) -> None:
    issued = [c.secret_access_key for c in moto.issued.values()]
    issued += [c.session_token for c in moto.issued.values() if c.session_token]
    output = result.stdout + result.stderr
    for value in secrets + issued:
        for form in {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}:
            assert form not in output, "a secret was printed"


USER = '{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:secret" }'
TOTP_MFA = 'mfa_serial = "arn:aws:iam::123456789012:mfa/me", mfa_code = "totp:vault:seed"'


def _profile(*steps: str, login: str = "") -> str:
    text = "[profiles.p]\nsteps = [\n" + "".join(f"  {s},\n" for s in steps) + "]\n"
    return text + (f"login = {{ {login} }}\n" if login else "")


def _assume(options: str = "") -> str:
    return f'{{ use = "assume-role", role_arn = "{ROLE}"{", " + options if options else ""} }}'


# name -> (config, gw arguments, expected text in the error line)
SCENARIOS = {
    "sts-unreachable": (
        lambda ctx: _profile(USER, _assume(f'{TOTP_MFA}, endpoint = "http://127.0.0.1:{ctx["port"]}"')),
        ("credential-process", "--profile", "p"), "AssumeRole",
    ),
    "sts-unreachable-env": (
        lambda ctx: _profile(USER, _assume(f'endpoint = "http://127.0.0.1:{ctx["port"]}"')),
        ("env", "--profile", "p", "--format", "sh"), "cannot reach AWS STS AssumeRole",
    ),
    "sts-unreachable-exec": (
        lambda ctx: _profile(USER, _assume(f'endpoint = "http://127.0.0.1:{ctx["port"]}"')),
        ("exec", "--profile", "p", "--", "true"), "cannot reach AWS STS AssumeRole",
    ),
    "bad-role-arn": (
        lambda ctx: _profile(USER, '{ use = "assume-role", role_arn = "arn:aws:iam::42:role/x" }'),
        ("credential-process", "--profile", "p"), "not an IAM role ARN",
    ),
    "mfa-serial-without-code": (
        lambda ctx: _profile(USER, _assume('mfa_serial = "arn:aws:iam::123456789012:mfa/me"')),
        ("credential-process", "--profile", "p"), "mfa_serial and mfa_code go together",
    ),
    "unusable-totp-seed": (
        lambda ctx: _profile(USER, _assume('mfa_serial = "arn:aws:iam::123456789012:mfa/me", mfa_code = "totp:vault:badseed"')),
        ("credential-process", "--profile", "p"), "TOTP seed is unusable",
    ),
    "missing-vault-entry": (
        lambda ctx: _profile('{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:nosuch" }'),
        ("env", "--profile", "p"), "no secret named 'nosuch'",
    ),
    "askpass-fails": (
        lambda ctx: _profile(USER, _assume('mfa_serial = "arn:aws:iam::123456789012:mfa/me", mfa_code = "prompt"')),
        ("credential-process", "--profile", "p"), "askpass",
    ),
    "plain-string-secret": (
        lambda ctx: _profile(f'{{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "{ctx["secret"]}" }}'),
        ("credential-process", "--profile", "p"), "not a secret reference",
    ),
    "bad-toml-around-a-secret": (
        lambda ctx: f'[profiles.p]\nsteps = [{{ use = "aws-keys", secret_access_key = "{ctx["secret"]}\n',
        ("env", "--profile", "p"), "not valid TOML",
    ),
    "session-token-after-role": (
        lambda ctx: _profile(USER, _assume(), '{ use = "session-token" }'),
        ("credential-process", "--profile", "p"), "needs long-term IAM user keys",
    ),
    "login-refused": (
        lambda ctx: _profile(
            '{ use = "aws-keys", access_key_id = "vault:st_akid", secret_access_key = "vault:st_secret", session_token = "vault:st_token" }',
            login=f'endpoint = "{ctx["federation"]}"'),
        ("login", "--profile", "p", "--print"), "refused the session (HTTP 400)",
    ),
    "login-unreachable": (
        lambda ctx: _profile(
            '{ use = "aws-keys", access_key_id = "vault:ar_akid", secret_access_key = "vault:ar_secret", session_token = "vault:ar_token" }',
            login=f'endpoint = "https://127.0.0.1:{ctx["port"]}/federation"'),
        ("login", "--profile", "p", "--print"), "cannot reach the federation endpoint",
    ),
    "login-untrusted-tls": (
        lambda ctx: _profile(
            '{ use = "aws-keys", access_key_id = "vault:ar_akid", secret_access_key = "vault:ar_secret", session_token = "vault:ar_token" }',
            login=f'endpoint = "{ctx["federation"]}"'),
        ("login", "--profile", "p", "--print"), "cannot reach the federation endpoint",
    ),
    "exec-missing-command": (
        lambda ctx: _profile(USER, _assume()),
        ("exec", "--profile", "p", "--", "gw-no-such-command-here"), "command not found",
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_failures_print_one_line_and_no_secret(secrets_home, moto, federation, tmp_path, scenario):  # noqa: F811
    home, secrets = secrets_home
    make_config, args, expected = SCENARIOS[scenario]
    if scenario == "askpass-fails":
        askpass = tmp_path / "askpass.sh"  # prints a secret, then fails: gw must not echo it
        askpass.write_text(f"#!/bin/sh\necho '{secrets[0]}'\necho '{secrets[0]}' >&2\nexit 1\n")
        askpass.chmod(0o700)
        home.extra_settings["askpass"] = str(askpass)
    if scenario == "login-untrusted-tls":
        home.ca_path = None
    ctx = {"port": _closed_port(), "federation": federation.federation_url, "secret": secrets[0]}
    home.write_config(make_config(ctx))
    run = home.run if args[0] == "exec" else home.run_in_process  # exec replaces the process: a real one
    result = run(*args, env={"GWT_SECRET_IN_PARENT": secrets[1]})
    assert_clean_failure(result, contains=expected)
    _assert_no_secret(result, secrets, moto)
    if scenario == "exec-missing-command":
        assert result.returncode == 127


def test_gw_check_does_not_echo_a_plain_string_secret(secrets_home, moto):
    home, secrets = secrets_home
    home.write_config(_profile(f'{{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "{secrets[0]}" }}'))
    result = home.run_in_process("check")
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert "secret_access_key: not a secret reference" in result.stderr
    _assert_no_secret(result, secrets, moto)
