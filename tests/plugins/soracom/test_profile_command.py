"""profileCommand lines survive soracom-cli's argv splitting, or are refused."""

from __future__ import annotations

import shlex

import pytest

from gw.errors import UsageError
from gw_plugins.soracom import profile_command, split_profile_command


def test_split_like_soracom_cli():
    assert split_profile_command("a 'b c' \"d\\\"e\" f\\ g") == ["a", "b c", 'd"e', "f g"]
    assert split_profile_command("gw x; rm -rf /") == ["gw", "x"]
    assert split_profile_command("gw x|y") == ["gw", "x"]
    assert split_profile_command("gw '$HOME' ~") == ["gw", "$HOME", "~"]


@pytest.mark.parametrize("path", ["/usr/local/bin/gw", "/opt/My Tools/bin/gw", "/x/a;b/gw", "/x/a&b|c<d>/gw"])
def test_paths_are_quoted_to_survive(path):
    line = profile_command(path, "prod@eu")
    expected = [path, "soracom-profile", "--profile", "prod@eu"]
    assert split_profile_command(line) == expected
    assert shlex.split(line) == expected


@pytest.mark.parametrize("path", ["/x/it's/gw", "/x/new\nline/gw", "/x/$(id)/gw", '/x/"q"/gw', "/x/b\\s/gw"])
def test_unsafe_paths_refused(path):
    with pytest.raises(UsageError):
        profile_command(path, "p")
