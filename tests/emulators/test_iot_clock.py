"""The IoT credentials provider emulator runs on its injected clock (the emulator base's clock)."""

from __future__ import annotations

import calendar
import time

import requests

from gw_emulators.iot import IotCredentialsEmulator


def test_minted_expiration_follows_the_injected_clock(ca, tmp_path):
    fixed = calendar.timegm((2031, 5, 6, 7, 8, 9))
    emulator = IotCredentialsEmulator(ca, tmp_path / "iot", clock=lambda: float(fixed)).start()
    try:
        emulator.add_role_alias("alias", "arn:aws:iam::123456789012:role/Device", duration=900)
        device = emulator.create_certificate("device")
        answer = requests.get(f"https://localhost:{emulator.port}/role-aliases/alias/credentials",
                              cert=(str(device.cert_path), str(device.key_path)), verify=str(ca.ca_path), timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["credentials"]["expiration"] == time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(fixed + 900))
        emulator.advance(3600)
        again = requests.get(f"https://localhost:{emulator.port}/role-aliases/alias/credentials",
                             cert=(str(device.cert_path), str(device.key_path)), verify=str(ca.ca_path), timeout=10)
        assert again.json()["credentials"]["expiration"] == time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(fixed + 3600 + 900))
    finally:
        emulator.stop()
