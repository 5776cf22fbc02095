"""Re-stamping a cache entry after a config edit never races a fetch or gw cache clear."""

from __future__ import annotations

import fcntl
import os

from tests.core.core_helpers import admin_profile, parse_credential_process, store_user
from tests.core.gw_test_support import cache_file


def test_restamp_waits_for_a_free_profile_lock(aws_home, iam_user, askpass, moto):
    home = aws_home
    home.extra_settings["askpass"] = askpass[0]
    home.write_config(admin_profile())
    store_user(home, iam_user)
    first = home.run_in_process("credential-process", "--profile", "admin")
    assert first.returncode == 0, first.stderr
    entry = cache_file(home, "admin")
    stamped = entry.read_bytes()

    # Edit the file elsewhere: the fast path no longer trusts the entry, the slow path still serves it.
    home.config_path.write_text(home.config_path.read_text() + "\n# an unrelated edit\n")
    lock_path = home.state / "locks" / "admin.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as if another gw were fetching or clearing this profile
        held = home.run_in_process("credential-process", "--profile", "admin")
        assert held.returncode == 0, held.stderr
        assert parse_credential_process(held.stdout) == parse_credential_process(first.stdout)
        assert entry.read_bytes() == stamped, "the entry was rewritten while another process held the lock"
    finally:
        os.close(fd)

    before = moto.count("AssumeRole")
    free = home.run_in_process("credential-process", "--profile", "admin")
    assert free.returncode == 0 and free.stdout == first.stdout
    assert entry.read_bytes() != stamped, "with the lock free the entry is re-stamped"
    assert moto.count("AssumeRole") == before
