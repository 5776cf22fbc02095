"""``gw token --profile P [--format raw|header|json]`` with a cognito-m2m profile.

``gw token`` is a core command (core/cli.py, core/fastpath.py, core/commands.py): the token as-is
(raw, the default), as an ``Authorization: Bearer`` header line, or as JSON; a cache hit loads
no plugin, like credential-process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.core.gw_test_support import (
    assert_clean_failure,
    imported_modules,
    run_importtime,
)
from tests.plugins.cognito.conftest import write_m2m

IN_CI = os.environ.get("CI", "").lower() == "true"
# What the credential-process cache hit never imports (tests/core/test_hot_path.py), plus PyJWT.
HEAVY = {"pluggy", "boto3", "botocore", "requests", "jwt", "tomllib", "argparse", "rich"}


def token_of(home, *args: str) -> str:
    result = home.run_in_process("token", "--profile", "m2m", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1, result.stdout
    return result.stdout[:-1]


def test_formats(gw_home, pool):
    write_m2m(gw_home, pool)
    raw = token_of(gw_home)
    assert raw == pool.issued[-1].token
    assert token_of(gw_home, "--format", "raw") == raw
    assert token_of(gw_home, "--format", "header") == f"Authorization: Bearer {raw}"
    document = json.loads(token_of(gw_home, "--format", "json"))
    assert isinstance(document, dict) and raw in document.values()
    assert pool.calls["token"] == 1


def test_curl_with_the_header_reaches_the_api(gw_home, pool, api, ca):
    """The recipe of docs/plugins/cognito.md: curl -H "$(gw token --profile P --format header)" URL."""
    if shutil.which("curl") is None:
        if IN_CI:
            pytest.fail("curl is not installed (make install-sim installs it)")
        pytest.skip("curl is not installed")
    write_m2m(gw_home, pool)
    script = 'curl -sS --cacert "$1" -H "$(gw token --profile m2m --format header)" "$2"'
    result = subprocess.run(["sh", "-c", script, "sh", str(ca.ca_path), f"{api.url}/orders"], env=gw_home.env,
                            check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["client_id"] == "reader"
    assert api.calls["verified"] == 1


def test_cache_hit_loads_no_plugin(gw_home, pool):
    write_m2m(gw_home, pool)
    token_of(gw_home)
    result = run_importtime(gw_home, "token", "--profile", "m2m", "--format", "header")
    assert result.returncode == 0
    assert result.stdout == f"Authorization: Bearer {pool.issued[-1].token}\n"
    modules = imported_modules(result.stderr)
    heavy = {m for m in modules if m.startswith(("gw_plugins", "importlib.metadata")) or m.split(".")[0] in HEAVY}
    assert heavy == set(), sorted(heavy)
    assert pool.calls["token"] == 1


def test_a_profile_without_a_token_is_one_line(gw_home, pool):
    gw_home.write_config('[profiles.keys]\nsteps = [{ use = "aws-keys", access_key_id = "AKIAEXAMPLE", '
                         'secret_access_key = "env:NOPE" }]\n')
    assert_clean_failure(gw_home.run_in_process("token", "--profile", "keys"))
