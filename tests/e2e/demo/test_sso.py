"""The SSO part of `gw demo`: one sign-in, the roles table, a profile per role, boto3 through one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gw.testing import gw_executable


def test_demo_sso_part(tmp_path):
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    result = subprocess.run([gw_executable(), "demo", "--only", "sso"], env=env, capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL, start_new_session=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    flat = " ".join(result.stdout.split())
    assert "signed in to https://d-9067000000.awsapps.com/start" in flat
    assert "123456789012 Sandbox ReadOnly" in flat
    assert "added gw profile demo.sandbox.ReadOnly" in flat
    assert "assumed-role/ReadOnly/alice@example.com" in flat
    assert "(1 CreateToken, 1 GetRoleCredentials;" in flat
    assert not list(tmp_path.glob("gw-demo-*"))
