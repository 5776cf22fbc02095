"""Config snippets shared by the core tests."""

from __future__ import annotations

import json

ROLE = "arn:aws:iam::123456789012:role/Admin"
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def admin_profile(name: str = "admin", mfa: str = '"prompt"', role: str = ROLE, extra: str = "") -> str:
    return f"""
[profiles.{name}]
description = "admin role with MFA"
steps = [
  {{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:secret" }},
  {{ use = "assume-role", role_arn = "{role}", mfa_serial = "arn:aws:iam::123456789012:mfa/me", mfa_code = {mfa} }},
]
{extra}
"""


def store_user(home, iam_user) -> None:
    home.vault_set("akid", iam_user[0])
    home.vault_set("secret", iam_user[1])


def parse_credential_process(stdout: str) -> dict:
    """Parse credential-process output exactly as botocore demands: one JSON object, Version 1."""
    doc = json.loads(stdout)
    assert isinstance(doc, dict)
    assert doc["Version"] == 1 and isinstance(doc["Version"], int)
    for key in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"):
        assert isinstance(doc[key], str) and doc[key]
    assert doc["Expiration"].endswith("Z")
    return doc
