"""``gw profiles`` at 80 columns and on a pipe (issue 18, "80 columns and pipes"): names are
never cut, times are relative and on one line, and the steps-cached count is real."""

from __future__ import annotations

import re

from gw.profiles_view import relative, span
from gw.testing import gw_executable
from tests.core.test_shared_steps import home, shared_profiles  # noqa: F401 (the fixture)
from tests.core.test_terminal_output import run_in_terminal

LONG = "a-rather-long-profile-name-for-the-ci"
TWO_STEPS = f"""
[profiles.{LONG}]
steps = [ {{ use = "aws-keys", access_key_id = "vault:akid", secret_access_key = "vault:secret" }},
          {{ use = "session-token", duration = 3600 }} ]
"""


def test_profiles_fit_80_columns_with_relative_times_and_real_counts(home):  # noqa: F811
    home.write_config(shared_profiles() + TWO_STEPS)
    for profile in ("admin", LONG):
        assert home.run_in_process("credential-process", "--profile", profile).returncode == 0
    screen = run_in_terminal(f"COLUMNS=80 exec {gw_executable()} profiles", home.env)
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in screen.replace("\r", "").splitlines()]
    assert lines[0].startswith("profiles in ")  # the config's path, as long as it is
    assert all(len(line) <= 80 for line in lines[1:]), [(len(x), x) for x in lines]
    row = {line.split()[0]: line for line in lines if line and not line.startswith((" ", "profile"))}
    assert LONG in row, "\n".join(lines)  # the whole name, not cut
    assert re.search(r"  in (59|60) min\s+1 of 2$", row[LONG]), row[LONG]
    assert re.search(r"  in (59|60) min\s+2 of 3$", row["admin"]), row["admin"]  # its entry + the MFA session
    assert re.search(r"  -\s+1 of 3$", row["readonly"]), row["readonly"]  # the shared MFA session only
    assert "aws-keys -> session-token -> assume-role" in " ".join(lines)
    assert not re.search(r"\d\d:\d\d", screen)  # no timestamps (broken or not)


def test_profiles_on_a_pipe_are_one_row_per_line(home):  # noqa: F811
    home.write_config(shared_profiles() + TWO_STEPS)
    assert home.run_in_process("credential-process", "--profile", "admin").returncode == 0
    lines = home.run_in_process("profiles", env={"COLUMNS": "80"}).stdout.splitlines()
    assert lines[0].split("\t") == ["profile", "steps", "output", "expires", "cached"]
    rows = {cells[0]: cells for cells in (line.split("\t") for line in lines[1:])}
    assert len(lines) == 4 and all(len(cells) == 5 for cells in rows.values())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows["admin"][3]) and rows["admin"][4] == "2 of 3"
    assert rows["readonly"][3:] == ["-", "1 of 3"] and rows[LONG][3:] == ["-", "0 of 2"]


def test_relative_times():
    assert relative(1000 + 56 * 60, now=1000) == "in 56 min"
    assert relative(1000 - 180, now=1000) == "expired 3 min ago"
    assert span(12 * 3600 - 60) == "11 h 59 min" and span(30) == "30 s"
