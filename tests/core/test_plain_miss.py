"""A credential-process / token miss reads its few options without argparse (``cli._plain_miss``):
whatever it takes, it reads exactly as argparse does; anything else is left to argparse."""

from __future__ import annotations

import pytest

from gw.app import App
from gw.cli import _plain_miss, build_parser
from gw.commands import credentials

TAKEN = [
    ["credential-process", "--profile", "a"],
    ["credential-process", "--profile=a", "--refresh", "--min-ttl", "30m"],
    ["credential-process", "--min-ttl=1h30m", "--profile", "a", "--profile", "b"],
    ["token", "--profile", "a", "--format", "json"],
    ["token", "--format=header", "--profile", "b", "--min-ttl=90", "--refresh"],
]
LEFT_TO_ARGPARSE = [
    ["credential-process"],
    ["credential-process", "--profile"],
    ["credential-process", "--profile", "a", "--format", "raw"],
    ["credential-process", "--profile", "a", "--min-ttl", "soon"],
    ["credential-process", "--help"],
    ["credential-process", "--prof", "a"],
    ["credential-process", "--profile", "a", "extra"],
    ["credential-process", "--profile", "-a"],
    ["token", "--profile", "a", "--format", "xml"],
    ["--config", "c.toml", "credential-process", "--profile", "a"],
    ["env", "--profile", "a"],
]


@pytest.fixture(autouse=True)
def _no_default_profile(monkeypatch):
    monkeypatch.delenv("GW_PROFILE", raising=False)


@pytest.mark.parametrize("args", TAKEN, ids=" ".join)
def test_what_it_takes_it_reads_as_argparse(args):
    quick = vars(_plain_miss(args))
    parsed = vars(build_parser(App(), args).parse_args(args))
    assert quick.pop("errors_on_tty") == parsed.pop("errors_on_tty", True)
    # argparse's handler runs the core command through its CommandContext; the quick one is that command's function
    parsed.pop("handler")
    assert quick.pop("handler") is getattr(credentials, args[0].replace("-", "_"))
    assert quick == parsed


@pytest.mark.parametrize("args", LEFT_TO_ARGPARSE, ids=" ".join)
def test_anything_else_is_left_to_argparse(args):
    assert _plain_miss(args) is None


def test_gw_profile_is_the_default_profile(monkeypatch):
    monkeypatch.setenv("GW_PROFILE", "from-env")
    assert _plain_miss(["credential-process"]).profile == "from-env"
