"""Krypton's OpenID token turned into AWS credentials by the web-identity and cognito-identity steps."""

from __future__ import annotations

import json

from gw_emulators.krypton import KryptonEmulator

from .conftest import IMSI, OPC, K, write_sim

ROLE = "arn:aws:iam::123456789012:role/DeviceRole"


def _profiles(krypton: KryptonEmulator, sim: str) -> str:
    source = f'{{ use = "krypton", operation = "cognito-openid-token", endpoint = "{krypton.url}", reader = "emulated", sim_file = "{sim}" }}'
    return f"""
[profiles.web]
steps = [
  {source},
  {{ use = "web-identity", role_arn = "{ROLE}", session_name = "device", duration = 3600 }},
]

[profiles.cognito]
steps = [
  {source},
  {{ use = "cognito-identity", region = "ap-northeast-1" }},
]
"""


def test_openid_token_through_web_identity_and_cognito_identity(aws_home, moto, ca, tmp_path):
    with KryptonEmulator(ca, aws_endpoint=moto.url) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        aws_home.write_config(_profiles(krypton, write_sim(tmp_path / "sim.json")))
        before = moto.count("AssumeRoleWithWebIdentity")

        web = aws_home.run_in_process("credential-process", "--profile", "web")
        assert web.returncode == 0, web.stderr
        doc = json.loads(web.stdout)
        issued = moto.lookup(doc["AccessKeyId"])
        assert issued is not None and issued.kind == "web-identity" and not issued.chained
        assert issued.arn.endswith(":assumed-role/DeviceRole/device")
        assert moto.count("AssumeRoleWithWebIdentity") == before + 1

        cognito = aws_home.run_in_process("credential-process", "--profile", "cognito")
        assert cognito.returncode == 0, cognito.stderr
        other = json.loads(cognito.stdout)
        assert other["Version"] == 1 and other["AccessKeyId"] != doc["AccessKeyId"]
        assert other["Expiration"].endswith("Z") and other["SessionToken"]
        # one SIM handshake served both profiles: the Krypton session is shared
        assert krypton.handshakes == 1
        # ... and so did the OpenID token: both chains start with the same krypton step, whose
        # result is cached under that shared prefix
        assert krypton.calls["aws/cognito/open_id_tokens"] == 1
