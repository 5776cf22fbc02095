"""profileCommand lines survive soracom-cli's argv splitting (modelled in the stand-in from
go-shellwords), or are refused; profile names survive its sanitize.BaseName, or are refused."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gw.plugin import UsageError
from gw_plugins.soracom.profile_command import (
    profile_command,
    soracom_profile_name_problem,
    split_profile_command,
)
from tests.plugins.soracom.soracom_cli_standin import (
    CliError,
    sanitize_base_name,
    shellwords_parse,
)


def test_split_like_soracom_cli():
    for line, words in [
        ("a 'b c' \"d\\\"e\" f\\ g", ["a", "b c", 'd"e', "f g"]),
        ("gw x; rm -rf /", ["gw", "x"]),
        ("gw x|y", ["gw", "x"]),
        ("gw '$HOME' ~", ["gw", "$HOME", "~"]),
        ('gw "a\\qb"', ["gw", "aqb"]),  # a backslash escapes any character, also inside double quotes
    ]:
        assert split_profile_command(line) == words == shellwords_parse(line)


@pytest.mark.parametrize("path", ["/usr/local/bin/gw", "/opt/My Tools/bin/gw", "/x/a;b/gw", "/x/a&b|c<d>/gw",
                                  "/x/(paren)/gw"])
def test_paths_are_quoted_to_survive(path):
    line = profile_command(path, "prod-eu")
    expected = [path, "soracom-profile", "--profile", "prod-eu"]
    assert shellwords_parse(line) == expected
    assert shlex.split(line) == expected
    assert "--coverage" not in line


@pytest.mark.parametrize("path", ["/x/it's/gw", "/x/new\nline/gw", "/x/$(id)/gw", '/x/"q"/gw', "/x/b\\s/gw"])
def test_unsafe_paths_refused(path):
    with pytest.raises(UsageError):
        profile_command(path, "p")


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40))
def test_written_lines_split_back_exactly(path):
    try:
        line = profile_command("/" + path, "p")
    except UsageError:
        return
    assert shellwords_parse(line) == ["/" + path, "soracom-profile", "--profile", "p"]


@given(st.text(min_size=1, max_size=30))
def test_accepted_names_are_kept_by_sanitize_base_name(name):
    problem = soracom_profile_name_problem(name)
    if problem is None:
        assert sanitize_base_name(name) == name
    else:
        # the suggestion is a name soracom-cli keeps, and is what it would open (when ASCII)
        assert "--soracom-profile" in problem or "choose one" in problem


@pytest.mark.parametrize("name,opens", [("my_work", "my-work"), ("a.b", "a-b"), ("x y", "x-y"), ("a:b=c+d&e", "a-b-c-d-e"),
                                        ("a--b", "a-b"), ("tab\tx", "tabx")])
def test_standin_base_name(name, opens):
    assert sanitize_base_name(name) == opens
    assert soracom_profile_name_problem(name) is not None
    assert f"--soracom-profile {opens}" in soracom_profile_name_problem(name)


def test_standin_refuses_bare_parenthesis():
    with pytest.raises(CliError):
        shellwords_parse("gw (x)")
