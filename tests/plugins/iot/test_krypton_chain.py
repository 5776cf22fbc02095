"""Krypton aws-iot-bootstrap (emulated SIM) -> iot-certificate, as one profile: the SIM gets
the device a certificate, the certificate gets it AWS credentials."""

from __future__ import annotations

import json
import stat

from gw_emulators.krypton import KryptonEmulator
from tests.conftest import GW
from tests.plugins.krypton.conftest import IMSI, OPC, K, write_sim

from .conftest import ALIAS, credential_process


def _krypton_options(krypton: KryptonEmulator, sim: str) -> str:
    return f'endpoint = "{krypton.url}", reader = "emulated", sim_file = "{sim}"'


def test_two_step_chain(aws_home, moto, ca, iot, tmp_path):
    iot.trust_issuer(ca.ca_path)  # Krypton registers each certificate it creates as ACTIVE
    with KryptonEmulator(ca) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        sim = write_sim(tmp_path / "sim.json")
        aws_home.write_config(f"""
[profiles.device]
steps = [
  {{ use = "krypton", operation = "aws-iot-bootstrap", {_krypton_options(krypton, sim)} }},
  {{ use = "iot-certificate", endpoint = "{iot.endpoint}", role_alias = "{ALIAS}" }},
]
""")
        doc = credential_process(aws_home, "device")
        issued = moto.lookup(doc["AccessKeyId"])
        assert issued is not None and ":assumed-role/IotDevice/" in issued.arn
        assert krypton.calls["aws/iot/bootstrap"] == 1 and iot.calls["credentials"] == 1
        # the bootstrap's files are private
        key = next(aws_home.state.rglob("private-key.pem"))
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        # gw cache clear drops the shared chain steps too: the SIM bootstraps again
        assert aws_home.run_in_process("cache", "clear", "--profile", "device").returncode == 0
        credential_process(aws_home, "device")
        assert krypton.calls["aws/iot/bootstrap"] == 2 and iot.calls["credentials"] == 2


def test_two_step_chain_keeps_the_certificate_when_the_credentials_expire(aws_home, moto, ca, iot, tmp_path):
    """gw caches the bootstrap result (a chain step whose expiry is the certificate's notAfter):
    fifty minutes later the 1-hour AWS credentials are due (under 15 minutes left) and are fetched
    again with the same certificate, without the SIM. Time moves for gw only (libfaketime), so
    not further than the upstream's credentials live: gw refuses credentials its clock calls expired."""
    import os
    import shutil
    import subprocess

    import pytest

    faketime = shutil.which("faketime")
    if faketime is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("faketime is not installed (tests/install-tools.sh installs it) and CI=true")
        pytest.skip("faketime is not installed (apt-get install faketime)")
    iot.trust_issuer(ca.ca_path)
    with KryptonEmulator(ca) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        sim = write_sim(tmp_path / "sim.json")
        aws_home.write_config(f"""
[profiles.device]
steps = [
  {{ use = "krypton", operation = "aws-iot-bootstrap", {_krypton_options(krypton, sim)} }},
  {{ use = "iot-certificate", endpoint = "{iot.endpoint}", role_alias = "{ALIAS}" }},
]
""")
        keys = []
        for offset in ("+0", "+50m"):
            result = subprocess.run([faketime, "-f", offset, GW, "credential-process", "--profile", "device"],
                                    env=aws_home.env, capture_output=True, text=True, timeout=120,
                                    start_new_session=True, stdin=subprocess.DEVNULL, check=False)
            assert result.returncode == 0, (offset, result.stderr)
            keys.append(json.loads(result.stdout)["AccessKeyId"])
        assert keys[0] != keys[1] and iot.calls["credentials"] == 2
        assert krypton.calls["aws/iot/bootstrap"] == 1 and krypton.handshakes == 1


def test_bootstrap_table_reuses_the_certificate(aws_home, moto, ca, iot, tmp_path):
    iot.trust_issuer(ca.ca_path)
    with KryptonEmulator(ca) as krypton:
        krypton.add_subscriber(IMSI, K, OPC)
        sim = write_sim(tmp_path / "sim.json")
        aws_home.write_config(f"""
[profiles.device]
steps = [
  {{ use = "iot-certificate", endpoint = "{iot.endpoint}", role_alias = "{ALIAS}", bootstrap = {{ {_krypton_options(krypton, sim)} }} }},
]
""")
        first = credential_process(aws_home, "device")
        assert krypton.calls["aws/iot/bootstrap"] == 1 and krypton.handshakes == 1
        assert aws_home.run_in_process("cache", "clear", "--profile", "device").returncode == 0
        second = credential_process(aws_home, "device")
        assert second["AccessKeyId"] != first["AccessKeyId"]
        assert moto.lookup(second["AccessKeyId"]) is not None
        # the SIM and Krypton were used once; the certificate served both fetches
        assert krypton.calls["aws/iot/bootstrap"] == 1 and krypton.handshakes == 1
        assert iot.calls["credentials"] == 2
        # A revoked bootstrap certificate: one clear line, and the next run bootstraps anew.
        for cert in list(iot.certificates.values()):
            iot.revoke(cert.pem)
        assert aws_home.run_in_process("cache", "clear", "--profile", "device").returncode == 0
        result = aws_home.run_in_process("credential-process", "--profile", "device")
        assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
        assert "closed the connection right after the TLS handshake" in result.stderr
        assert result.stderr.strip().endswith("the next run gets a new certificate with Krypton aws-iot-bootstrap")
        assert first["SecretAccessKey"] not in result.stderr
        third = credential_process(aws_home, "device")
        assert moto.lookup(third["AccessKeyId"]) is not None
        assert krypton.calls["aws/iot/bootstrap"] == 2 and iot.calls["credentials"] == 3
