"""Shared test data for tests/plugins/soracom and tests/plugins/onepassword (a uniquely named module, imported by conftest and tests)."""

from __future__ import annotations

import pyotp

from gw_emulators.soracom_api import SoracomApiEmulator
from gw_emulators.tls import LocalCA

READER_PW = "reader-Pa55word!z"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PERIOD = 2
ROOT = ("root@example.com", "root-Pa55word!x", "OP0012345678")
SAM = ("OP0012345678", "deploy", "sam-Pa55word!y")
IMSIS = ("440103000000001", "440103000000002", "440103000000003", "440103000000004", "440103000000005")
AUTHKEY = ("keyId-emulatorAAAAAAAAAAAAAAAAAAAAAAAA", "secret-emulatorBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "OP0012345678")


def make_emulator(ca: LocalCA, period: int = PERIOD) -> SoracomApiEmulator:
    emu = SoracomApiEmulator(ca, mfa_seed=SEED, totp_period=period)
    emu.add_root(ROOT[0], ROOT[1], ROOT[2], mfa=True)
    emu.add_sam_user(SAM[0], SAM[1], SAM[2], mfa=True)
    emu.add_auth_key(AUTHKEY[0], AUTHKEY[1], AUTHKEY[2])
    emu.add_sam_user(SAM[0], "reader", READER_PW, mfa=False)
    for imsi in IMSIS:
        emu.add_subscriber(imsi, operator_id=ROOT[2], group_id="grp-1")
    return emu


def op_fixture_doc(period: int = PERIOD) -> dict:
    return {
        "signed_out": False,
        "items": [
            {
                "id": "a1b2c3d4e5f6g7h8i9j0k1l2m3",
                "title": "SORACOM root",
                "vault": "Private",
                "fields": [
                    {"id": "username", "label": "username", "type": "STRING", "purpose": "USERNAME", "value": ROOT[0]},
                    {"id": "password", "label": "password", "type": "CONCEALED", "purpose": "PASSWORD", "value": ROOT[1]},
                    {"id": "totp_1", "label": "one-time password", "type": "OTP", "value": SEED, "period": period},
                ],
            },
            {
                "title": "SORACOM SAM deploy",
                "vault": "Private",
                "fields": [
                    {"id": "opid", "label": "operator id", "type": "STRING", "value": SAM[0]},
                    {"id": "username", "label": "username", "type": "STRING", "value": SAM[1]},
                    {"id": "password", "label": "password", "type": "CONCEALED", "value": SAM[2]},
                    {"id": "otp", "label": "one-time password", "type": "OTP",
                     "value": f"otpauth://totp/SORACOM:deploy?secret={SEED}&issuer=SORACOM&period={period}"},
                ],
            },
            {
                "title": "AWS ci",
                "vault": "Work",
                "fields": [
                    {"id": "k1", "label": "access key id", "type": "STRING", "value": "AKIAEMULATOR00000001"},
                    {"id": "k2", "label": "secret access key", "type": "CONCEALED", "value": "emuSecretKey/abcdefghijklmnopqrstuvwxyz0"},
                ],
            },
        ],
    }


def totp_now(period: int = PERIOD) -> str:
    return pyotp.TOTP(SEED, interval=period).now()
