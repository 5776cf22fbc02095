"""``gw init`` on a real terminal (a pty drives the real process) and ``gw config example``
(issue 18, "A demo to keep using")."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from gw.testing import gw_executable
from tests.core.pty_session import PtySession

ROOT = Path(__file__).resolve().parents[2]


def _answer(session: PtySession, prompt: str, line: str) -> None:
    session.expect(prompt)
    session.seen = session.seen[session.expect(prompt).end():]  # the next expect looks further on
    session.send(line)


def test_init_adds_an_aws_keys_profile_with_a_session_token(aws_home, iam_user, moto):
    akid, secret = iam_user
    config = aws_home.root / "fresh" / "config.toml"
    env = aws_home.env | {"GW_CONFIG": str(config)}
    session = PtySession([gw_executable(), "init"], env, cwd=str(aws_home.root))
    _answer(session, r"Choose 1-4 \[1\]: ", "1")
    _answer(session, r"Profile name \[default\]: ", "work")
    _answer(session, r"AWS access key ID: ", "not-a-key")  # asked again
    _answer(session, r"AWS access key ID: ", akid)
    _answer(session, r"AWS secret access key \(not shown\): ", secret)
    _answer(session, r"MFA device ARN \(empty: no MFA\): ", "")
    _answer(session, r"Role ARN to assume with it \(empty: none\): ", "")
    _answer(session, r"Region \(empty: none\): ", "eu-west-1")
    session.expect(r"all valid")
    assert session.wait() == 0, session.seen
    assert secret not in session.seen  # asked without echo, never printed
    assert config.stat().st_mode & 0o777 == 0o600 and config.parent.stat().st_mode & 0o777 == 0o700
    text = config.read_text()
    assert text.startswith("# added by gw init") and secret not in text and akid not in text
    profile = tomllib.loads(text)["profiles"]["work"]
    assert [s["use"] for s in profile["steps"]] == ["aws-keys", "session-token"] and profile["region"] == "eu-west-1"
    done = aws_home.run_in_process("credential-process", "--profile", "work", env={"GW_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    assert moto.lookup(json.loads(done.stdout)["AccessKeyId"]).kind == "session-token"


def test_init_appends_and_never_replaces_a_profile(gw_home):
    before = '# mine\n[profiles.work]\nsteps = [{ use = "aws-keys", access_key_id = "env:A", secret_access_key = "env:S" }]\n'
    gw_home.config_path.write_text(before)
    gw_home.config_path.chmod(0o640)
    session = PtySession([gw_executable(), "init", "--profile", "work"], gw_home.env, cwd=str(gw_home.root))
    assert session.wait() == 2  # refused before any question
    assert "profile 'work' already exists" in session.seen and gw_home.config_path.read_text() == before
    session = PtySession([gw_executable(), "init"], gw_home.env, cwd=str(gw_home.root))
    _answer(session, r"Choose 1-4 \[1\]: ", "3")
    _answer(session, r"Profile name \[default\]: ", "sam")
    _answer(session, r"SORACOM operator ID: ", "OP0012345678")
    _answer(session, r"SAM user name: ", "deploy")
    _answer(session, r"SAM user password \(not shown\): ", "pa55-w0rd-of-sam")
    _answer(session, r"TOTP seed.*: ", "")
    assert session.wait() == 0, session.seen
    text = gw_home.config_path.read_text()
    assert text.startswith(before) and gw_home.config_path.stat().st_mode & 0o777 == 0o640
    steps = tomllib.loads(text)["profiles"]["sam"]["steps"]
    assert steps == [{"use": "soracom-keys", "operator_id": "OP0012345678", "username": "deploy",
                      "password": "vault:sam.soracom_password"}]
    assert "pa55-w0rd-of-sam" not in session.seen + text
    assert "sam.soracom_password" in gw_home.run_in_process("vault", "list").stdout


def test_init_without_a_terminal_says_so(gw_home):
    result = gw_home.run_in_process("init")
    assert result.returncode == 2 and "terminal" in result.stderr and not gw_home.config_path.exists()


def test_config_example_prints_the_shipped_file(gw_home):
    result = gw_home.run_in_process("config", "example")
    assert result.returncode == 0
    assert result.stdout.encode() == (ROOT / "config.example.toml").read_bytes()
