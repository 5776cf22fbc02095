"""``gw check --live``: each profile resolved for real against moto, a ✓/✗ row each
(issue 18, "A demo to keep using")."""

from __future__ import annotations

import json
import re

from tests.core.core_helpers import store_user

KEYS = '{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:secret" }'
CONFIG = f"""
[profiles.good]
steps = [ {KEYS}, {{ use = "session-token", duration = 3600 }} ]

[profiles.broken]
steps = [ {KEYS}, {{ use = "assume-role", role_arn = "arn:aws:iam::123456789012:role/Nope" }} ]
"""


def test_live_check_shows_each_profile_and_fails_on_a_broken_one(aws_home, iam_user, moto):
    aws_home.write_config(CONFIG)
    store_user(aws_home, iam_user)
    moto.reset_counts()
    moto.inject("AssumeRole", status=403)
    first = aws_home.run_in_process("check", "--live")
    assert first.returncode == 3, first.stderr
    rows = {line.split()[1]: line for line in first.stdout.splitlines()[1:]}
    assert re.fullmatch(r"✓\s+good\s+fetched\s+\d+\.\d\d s\s+in (59|60) min", rows["good"]), rows["good"]
    assert re.fullmatch(r"✗\s+broken\s+failed\s+\d+\.\d\d s\s+-\s+\S.*403.*", rows["broken"]), rows["broken"]
    assert "1 of 2 profile(s) failed" in first.stderr and iam_user[1] not in first.stdout + first.stderr
    second = aws_home.run_in_process("check", "--live", "--profile", "good", "--json")
    assert second.returncode == 0, second.stderr
    [row] = json.loads(second.stdout)
    assert (row["profile"], row["ok"], row["source"], row["error"]) == ("good", True, "cached", None)
    assert row["expires_at"].endswith("Z")
    assert moto.calls["GetSessionToken"] == 1  # the second check was a cache hit
