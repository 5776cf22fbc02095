"""soracom-keys / soracom-auth rules that the real clients forced, through the real gw."""

from __future__ import annotations

import json
import os

from tests.plugins.soracom.conftest import sora_config
from tests.plugins.soracom.soracom_testdata import AUTHKEY, SAM


def _totp_records(sora) -> list[str]:
    directory = sora.home.state / "totp"
    return sorted(p.name for p in directory.glob("*.last")) if directory.exists() else []


def test_authkey_with_mfa_code_is_a_warning_and_no_code_is_made(sora):
    """Issue 12: never send mfaOTPCode with an AuthKey, no TOTP step burnt; gw check warns."""
    sora.home.write_config(sora_config(sora.api.url) + f'''
[profiles.key-mfa]
steps = [{{ use = "soracom-keys", auth_key_id = "{AUTHKEY[0]}", auth_key = "vault:auth-key", mfa_code = "totp:vault:seed" }}]
[profiles.key-mfa-session]
steps = [
  {{ use = "soracom-keys", auth_key_id = "{AUTHKEY[0]}", auth_key = "vault:auth-key", mfa_code = "prompt" }},
  {{ use = "soracom-auth", endpoint = "{sora.api.url}" }},
]
''')
    check = sora.run("check")
    assert check.returncode == 0, check.stderr
    warnings = [line for line in check.stderr.splitlines() if "AuthKey sign-in takes no MFA code" in line]
    assert len(warnings) == 2 and all(w.startswith("gw: warning: ") for w in warnings), check.stderr
    proc = sora.run("soracom-profile", "--profile", "key-mfa")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == {"authKeyId", "authKey"}
    session = sora.run("soracom-token", "--profile", "key-mfa-session")  # "prompt" is never asked
    assert session.returncode == 0, session.stderr
    assert _totp_records(sora) == []  # no time step burnt
    assert sora.api.accepted_codes == [] and sora.api.calls["auth"] >= 1


def test_authkey_profile_sends_no_mfa_code(sora):
    doc = json.loads(sora.run("soracom-profile", "--profile", "sora-key").stdout)
    assert set(doc) == {"authKeyId", "authKey"}
    assert _totp_records(sora) == []


def test_sandbox_and_endpoint_rules(sora):
    sora.home.write_config(sora_config(sora.api.url) + f'''
[profiles.both]
steps = [
  {{ use = "soracom-keys", auth_key_id = "{AUTHKEY[0]}", auth_key = "vault:auth-key" }},
  {{ use = "soracom-auth", endpoint = "{sora.api.url}", sandbox = true }},
]
''')
    check = sora.run("check")
    assert check.returncode != 0 and "give endpoint or sandbox = true, not both" in check.stderr


def test_sandbox_endpoints():
    from gw_plugins.soracom.api import api_base, normalise_endpoint

    assert api_base(None, "jp", sandbox=True) == "https://api-sandbox.soracom.io"
    assert api_base(None, "g", sandbox=True) == "https://g.api-sandbox.soracom.io"
    assert api_base(None, "g") == "https://g.api.soracom.io"
    for given in ("https://x.example/v1", "https://x.example/v1/", "https://x.example/", " https://x.example/v1//"):
        assert normalise_endpoint(given) == "https://x.example"


def _reference_config(sora, extra: str) -> None:
    sora.home.write_config(sora_config(sora.api.url) + extra)


def test_operator_id_and_username_from_env_references(sora):
    _reference_config(sora, '''
[profiles.sam-env]
steps = [{ use = "soracom-keys", operator_id = "env:SORA_OP", username = "env:SORA_USER", password = "vault:reader-pw" }]
''')
    proc = sora.run("soracom-profile", "--profile", "sam-env", extra={"SORA_OP": SAM[0], "SORA_USER": "reader"})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["operatorId"], doc["username"]) == (SAM[0], "reader")


def test_operator_id_and_username_from_1password(sora):
    _reference_config(sora, '''
[profiles.sam-op]
steps = [{ use = "soracom-keys", operator_id = "op://Private/SORACOM SAM deploy/operator id", username = "op://Private/SORACOM SAM deploy/username", password = "op://Private/SORACOM SAM deploy/password", mfa_code = "op-otp://Private/SORACOM SAM deploy" }]
''')
    proc = sora.run("soracom-profile", "--profile", "sam-op")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["operatorId"], doc["username"]) == (SAM[0], SAM[1]) and doc["mfaOTPCode"].isdigit()


def test_no_secret_in_world_readable_files(sora):
    assert sora.run("soracom-token", "--profile", "sora-session").returncode == 0
    for root, dirs, files in os.walk(sora.home.state):
        for name in dirs + files:
            mode = os.stat(os.path.join(root, name)).st_mode
            assert mode & 0o077 == 0, os.path.join(root, name)


def test_mfa_required_recognised_by_the_default_code_alone(sora, monkeypatch):
    # a message gw cannot read (neither English nor Japanese words): the code AUM0063 decides
    import gw_emulators.soracom_api as emulator

    monkeypatch.setitem(emulator.MESSAGES, "mfa_required", ("Código necesario.", "Código necesario."))
    proc = sora.run("soracom-token", "--profile", "sora-nomfa")
    lines = sora.errors(proc)
    assert proc.returncode == 1 and len(lines) == 1
    assert "SORACOM MFA code required (AUM0063): add mfa_code" in lines[0]
