"""gw.commands.vault: ``gw vault set | list | rm`` (in-process)."""

from __future__ import annotations


def test_set_list_and_remove(keys_home):
    stored = keys_home.run_in_process("vault", "set", "api-key", input="Zq9xLw2Kf7Hd3Vn8\n")
    assert (stored.returncode, stored.stdout) == (0, "stored api-key\n")
    keys_home.run_in_process("vault", "set", "another", input="value", check=True)
    listed = keys_home.run_in_process("vault", "list")
    assert sorted(listed.stdout.splitlines()) == ["another", "api-key"]
    assert "Zq9xLw2Kf7Hd3Vn8" not in listed.stdout + listed.stderr
    removed = keys_home.run_in_process("vault", "rm", "api-key")
    assert (removed.returncode, removed.stdout) == (0, "removed api-key\n")
    assert keys_home.run_in_process("vault", "list").stdout == "another\n"


def test_mistakes_are_one_line_and_status_two(keys_home):
    empty = keys_home.run_in_process("vault", "set", "x", input="\n")
    assert (empty.returncode, empty.stderr) == (2, "gw: refusing to store an empty secret\n")
    missing = keys_home.run_in_process("vault", "rm", "nope")
    assert (missing.returncode, missing.stderr) == (2, "gw: no secret named 'nope' in the vault\n")
    no_action = keys_home.run_in_process("vault")
    assert no_action.returncode == 2 and "the following arguments are required: ACTION" in no_action.stderr
