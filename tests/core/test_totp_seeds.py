"""TOTP seeds (issue 18): an otpauth:// URI is a seed; gw check validates seeds, naming the
vault entry and the profile, never the seed; a code that is not digits is refused before
anything is sent. Against moto's STS, which records each MFA code it is sent."""

from __future__ import annotations

import time

import pyotp

from tests.core.gw_test_support import ROLE

SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
URI = f"otpauth://totp/AWS:me@example.com?secret={SEED}&issuer=AWS&period=30&digits=6"
SERIAL = "arn:aws:iam::123456789012:mfa/me"


def _profile(mfa_code: str) -> str:
    return (f'[profiles.mfa]\nsteps = [\n  {{ use = "aws-keys", access_key_id = "env:GWT_AKID", '
            f'secret_access_key = "env:GWT_SECRET" }},\n  {{ use = "assume-role", role_arn = "{ROLE}", '
            f'mfa_serial = "{SERIAL}", mfa_code = {mfa_code} }},\n]\n')


def _home(aws_home, iam_user, mfa_code: str):
    aws_home.env["GWT_AKID"], aws_home.env["GWT_SECRET"] = iam_user
    aws_home.write_config(_profile(mfa_code))
    return aws_home


def test_an_otpauth_uri_is_a_seed(aws_home, iam_user, moto):
    home = _home(aws_home, iam_user, '"totp:vault:aws-mfa"')
    home.run_in_process("vault", "set", "aws-mfa", input=URI)
    moto.mfa_codes.clear()
    result = home.run_in_process("credential-process", "--profile", "mfa")
    assert result.returncode == 0, result.stderr
    (serial, code, at), = moto.mfa_codes
    assert serial == SERIAL and code in {pyotp.TOTP(SEED).at(at + d) for d in (-30, 0)}
    assert home.run_in_process("check").returncode == 0


def test_a_bad_seed_names_the_entry_and_the_profile_never_the_seed(aws_home, iam_user, moto):
    home = _home(aws_home, iam_user, '"totp:vault:aws-mfa"')
    bad = "otpauth://totp/AWS:me?issuer=AWS&period=30"  # no secret
    for value, reason in ((bad, "No secret found in URI"), ("NOT-BASE32-1!", "unusable")):
        home.run_in_process("vault", "set", "aws-mfa", input=value)
        moto.mfa_codes.clear()
        failed = home.run_in_process("credential-process", "--profile", "mfa")
        assert failed.returncode != 0 and moto.mfa_codes == []
        assert "profile 'mfa'" in failed.stderr and "vault:aws-mfa" in failed.stderr and reason in failed.stderr
        assert value not in failed.stderr and "NOT-BASE32" not in failed.stderr
        checked = home.run_in_process("check")
        assert checked.returncode == 3, checked.stderr
        line, = [x for x in checked.stderr.splitlines() if "vault:aws-mfa" in x]
        assert "profiles.mfa.steps[1] (assume-role): mfa_code: vault:aws-mfa: the TOTP seed" in line
        assert reason in line and "NOT-BASE32" not in checked.stderr


def test_a_non_numeric_code_is_refused_before_it_is_sent(aws_home, iam_user, moto):
    home = _home(aws_home, iam_user, '"env:GWT_CODE"')
    moto.mfa_codes.clear()
    for code in ("hunter2!", "12345", "１２３４５６"):  # a password, too short, full-width digits
        result = home.run_in_process("credential-process", "--profile", "mfa", env={"GWT_CODE": code})
        assert result.returncode == 1 and code not in result.stderr
        assert "mfa_code: a one-time code is 6 to 10 digits, and this one is not; nothing was sent" in result.stderr
    assert moto.mfa_codes == []
    spaced = pyotp.TOTP(SEED).at(time.time())
    result = home.run_in_process("credential-process", "--profile", "mfa",
                                 env={"GWT_CODE": f"{spaced[:3]} {spaced[3:]}"})
    assert result.returncode == 0 and moto.mfa_codes[-1][1] == spaced  # spaces as people type them are fine
