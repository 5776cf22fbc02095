"""``gw exec --profile P`` with no command opens ``$SHELL`` with the credentials (as aws-vault
does); a nested ``gw exec`` warns and says how to leave (issue 18, "Everyday habits")."""

from __future__ import annotations

from gw.testing import gw_executable
from tests.core.pty_session import PtySession

KEYS = """
[profiles.dev]
steps = [ { use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:secret" } ]
"""


def test_exec_without_a_command_opens_the_shell_and_a_nested_one_warns(gw_home):
    gw_home.write_config(KEYS)
    gw_home.vault_set("akid", "AKIAEXAMPLEKEY000001")
    gw_home.vault_set("secret", "s3cr3t-value-of-the-key")
    env = gw_home.env | {"SHELL": "/bin/sh", "PS1": "$ "}
    session = PtySession([gw_executable(), "exec", "--profile", "dev"], env, cwd=str(gw_home.root))
    session.expect(r"starting /bin/sh with the credentials of profile 'dev'")
    session.send('echo "in=$GW_EXEC_PROFILE key=$AWS_ACCESS_KEY_ID"')
    session.expect(r"in=dev key=AKIAEXAMPLEKEY000001")
    session.send(f"{gw_executable()} exec --profile dev -- true; echo nested=$?")
    session.expect(r"already inside gw exec for profile 'dev'.*\n?.*exit")
    session.expect(r"nested=0")
    session.send("exit 7")
    assert session.wait() == 7
    assert "s3cr3t-value-of-the-key" not in session.seen


def test_exec_without_a_command_falls_back_to_bin_sh(gw_home):
    gw_home.write_config(KEYS)
    gw_home.vault_set("akid", "AKIAEXAMPLEKEY000001")
    gw_home.vault_set("secret", "s3cr3t-value-of-the-key")
    env = {k: v for k, v in gw_home.env.items() if k != "SHELL"}
    session = PtySession([gw_executable(), "exec", "--profile", "dev"], env, cwd=str(gw_home.root))
    session.expect(r"starting /bin/sh")
    session.send("exit")
    assert session.wait() == 0
