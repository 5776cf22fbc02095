"""Fixtures for the SORACOM (and 1Password) tests: the SORACOM API emulator with MFA
users (on the root conftest's CA), the ``op`` emulator with its fixture, the soracom-cli
stand-in on PATH, and ``sora``: the root conftest's isolated gw home wired to all three."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gw_emulators.op_cli import install_op_shim
from tests.plugins.soracom import soracom_cli_standin
from tests.plugins.soracom.soracom_testdata import (
    AUTHKEY,
    PERIOD,
    READER_PW,
    ROOT,
    SAM,
    SEED,
    make_emulator,
    op_fixture_doc,
)

SECRETS = [ROOT[1], SAM[2], AUTHKEY[1], SEED, READER_PW, "emuSecretKey/abcdefghijklmnopqrstuvwxyz0"]


@pytest.fixture
def soracom_api(ca):
    """The SORACOM API emulator (TLS from the shared test CA) with MFA users."""
    emu = make_emulator(ca).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def op_shim(tmp_path) -> tuple[Path, Path]:
    """(bin dir holding an executable ``op``, fixture path)."""
    fixture = tmp_path / "op-fixture.json"
    fixture.write_text(json.dumps(op_fixture_doc()))
    bindir = tmp_path / "opbin"
    install_op_shim(bindir, fixture)
    return bindir, fixture


def noise(line: str) -> bool:
    """Lines from other, unfinished plugins that are not this suite's business."""
    return line.startswith("gw: warning: plugin ") and "failed to load" in line


@dataclass
class Sora:
    """The root conftest's isolated gw home, plus the SORACOM emulator, the soracom-cli
    stand-in and a record of all stderr (checked for secrets at the end)."""

    home: object  # tests/conftest.py GwHome
    api: object
    cli_log: Path
    stderr_seen: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return self.home.env

    def run(self, *args: str, input: str | None = None, extra: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """``gw ARGS`` in-process; ``gw exec`` and ``gw soracom`` (which hand over to or supervise
        another program, with its signals) as the real executable."""
        run = self.home.run if args[:1] in (("exec",), ("soracom",)) else self.home.run_in_process
        proc = run(*args, input=input, env=extra, timeout=timeout)
        self.stderr_seen.append(proc.stderr)
        return proc

    def soracom(self, *args: str, extra: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the soracom-cli stand-in as this user (``soracom ARGS``)."""
        proc = subprocess.run(["soracom", *args], env={**self.env, **(extra or {})}, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, cwd=self.home.root,
                              start_new_session=True, check=False)
        self.stderr_seen.append(proc.stderr)
        return proc

    def cli_runs(self) -> list[dict]:
        if not self.cli_log.exists():
            return []
        return [json.loads(line) for line in self.cli_log.read_text().splitlines()]

    def errors(self, proc: subprocess.CompletedProcess) -> list[str]:
        return [line for line in proc.stderr.splitlines() if line.strip() and not noise(line)]

    @property
    def profile_dir(self) -> Path:
        return self.home.home / ".soracom"


def stop_forwarder_daemon(state: Path) -> None:
    """Remove the forwarder daemon's socket: the daemon sees it gone and exits within a second."""
    from gw_plugins.soracom.control import SOCKET_NAME

    (state / "run" / SOCKET_NAME).unlink(missing_ok=True)


def sora_config(api_url: str) -> str:
    mfa = f'{{ totp = "vault:seed", period = {PERIOD} }}'
    return f'''
[profiles.sora-root]
steps = [{{ use = "soracom-keys", email = "{ROOT[0]}", password = "vault:root-pw", mfa_code = {mfa} }}]

[profiles.sora-sam]
steps = [{{ use = "soracom-keys", operator_id = "{SAM[0]}", username = "{SAM[1]}", password = "vault:sam-pw", mfa_code = {mfa} }}]

[profiles.sora-key]
steps = [{{ use = "soracom-keys", auth_key_id = "{AUTHKEY[0]}", auth_key = "vault:auth-key", coverage = "g" }}]

[profiles.sora-op]
steps = [{{ use = "soracom-keys", email = "{ROOT[0]}", password = "op://Private/SORACOM root/password", mfa_code = "op-otp://Private/SORACOM root" }}]

[profiles.sora-op-item]
steps = [{{ use = "onepassword", item = "SORACOM SAM deploy", vault = "Private", otp = true, fields = {{ operator_id = "operator id", username = "username", password = "password" }} }}]

[profiles.sora-op-root]
steps = [{{ use = "onepassword", item = "SORACOM root", vault = "Private", otp = true, fields = {{ email = "username", password = "password" }} }}]

[profiles.sora-session]
steps = [
  {{ use = "soracom-keys", operator_id = "{SAM[0]}", username = "reader", password = "vault:reader-pw" }},
  {{ use = "soracom-auth", endpoint = "{api_url}", token_timeout = 900 }},
]

[profiles.sora-mfa-session]
steps = [
  {{ use = "soracom-keys", email = "{ROOT[0]}", password = "vault:root-pw", mfa_code = {mfa} }},
  {{ use = "soracom-auth", endpoint = "{api_url}/v1", token_timeout = 900 }},
]

[profiles.sora-switch]
steps = [
  {{ use = "soracom-keys", email = "{ROOT[0]}", password = "vault:root-pw", mfa_code = {mfa} }},
  {{ use = "soracom-auth", endpoint = "{api_url}/v1/", switch_to = {{ operator_id = "{SAM[0]}", username = "reader" }} }},
]

[profiles.sora-nomfa]
steps = [
  {{ use = "soracom-keys", email = "{ROOT[0]}", password = "vault:root-pw" }},
  {{ use = "soracom-auth", endpoint = "{api_url}" }},
]

[profiles.sora-nomfa-ja]
steps = [
  {{ use = "soracom-keys", email = "{ROOT[0]}", password = "vault:root-pw" }},
  {{ use = "soracom-auth", endpoint = "{api_url}", lang = "ja", mfa_required_code = "XXX0000" }},
]

[profiles.sora-badpw]
steps = [
  {{ use = "soracom-keys", operator_id = "{SAM[0]}", username = "reader", password = "vault:sam-pw" }},
  {{ use = "soracom-auth", endpoint = "{api_url}" }},
]

[profiles.aws-op]
steps = [{{ use = "onepassword", item = "AWS ci", vault = "Work", produces = "aws-credentials", fields = {{ access_key_id = "access key id", secret_access_key = "k2" }} }}]

[profiles.op-missing-item]
steps = [{{ use = "onepassword", item = "nope", vault = "Private", fields = {{ email = "username", password = "password" }} }}]

[profiles.op-missing-field]
steps = [{{ use = "onepassword", item = "SORACOM root", vault = "Private", fields = {{ email = "e-mail", password = "password" }} }}]

[profiles.op-slow]
steps = [{{ use = "onepassword", item = "SORACOM root", vault = "Private", timeout = 1, fields = {{ email = "username", password = "password" }} }}]
'''


@pytest.fixture
def sora(gw_home, soracom_api, op_shim, tmp_path) -> Sora:
    bindir, fixture = op_shim
    soracom_cli_standin.install(bindir)
    gw_home.write_config(sora_config(soracom_api.url))
    gw_home.env["PATH"] = f"{bindir}{os.pathsep}{gw_home.env['PATH']}"
    gw_home.env["GW_OP_FIXTURE"] = str(fixture)
    gw_home.env["SSL_CERT_FILE"] = str(soracom_api.ca.ca_path)  # the stand-in trusts the test CA like Go would
    log = tmp_path / "soracom-cli.log"
    gw_home.env["SORACOM_STANDIN_LOG"] = str(log)
    gw_home.env["GW_SORACOM_FORWARDER_IDLE"] = "60"  # a backstop: the forwarder daemon is stopped below
    sora = Sora(gw_home, soracom_api, log)
    for name, value in (("root-pw", ROOT[1]), ("sam-pw", SAM[2]), ("auth-key", AUTHKEY[1]),
                        ("reader-pw", READER_PW), ("seed", SEED)):
        proc = sora.run("vault", "set", name, input=value + "\n")
        assert proc.returncode == 0, proc.stderr
    yield sora
    stop_forwarder_daemon(gw_home.state)
    for text in sora.stderr_seen:  # no secret on any path
        for secret in SECRETS + soracom_api.accepted_codes + soracom_api.rejected_codes:
            assert secret not in text, "a secret reached stderr"
