"""Issue 8, ``gw setup aws`` on hostile or unusual ``~/.aws/config`` files.

Each test runs the real ``gw setup aws`` and then reads the file with botocore (the
parser every AWS SDK for Python uses) and the real AWS CLI where it matters.
"""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from tests.core.gw_test_support import assert_clean_failure, keys_from_env, role_profile


@pytest.fixture
def setup_home(aws_home, iam_user):
    keys_from_env(aws_home, iam_user)
    aws_home.write_config(role_profile("p"))
    return aws_home


def _setup(home, *extra: str):
    return home.run_in_process("setup", "aws", "--profile", "p", *extra)


def _botocore_profile(home, name: str = "p") -> dict:
    import botocore.session

    session = botocore.session.Session(session_vars={"config_file": (None, None, str(home.aws_config), None)})
    return session.full_config["profiles"][name]


def test_a_key_spelled_in_another_case_is_replaced_not_duplicated(setup_home):
    home = setup_home
    home.aws_config.write_text("[profile p]\nCredential_Process = /old/tool --x\nREGION = us-west-2\n")
    result = _setup(home, "--region", "eu-west-1")
    assert result.returncode == 0, result.stderr
    text = home.aws_config.read_text()
    assert text.lower().count("credential_process") == 1 and text.lower().count("region") == 1
    profile = _botocore_profile(home)  # botocore parses it (a duplicate key would make it refuse)
    assert "credential-process --profile p" in profile["credential_process"]
    assert profile["region"] == "eu-west-1"


def test_continuation_lines_of_the_old_value_go_with_it(setup_home):
    home = setup_home
    home.aws_config.write_text(
        "[profile p]\ncredential_process = /old/tool\n    --flag one\n\n    --flag two\nregion = us-west-2\n"
        "\n[profile q]\nregion = ap-northeast-1\n")
    assert _setup(home).returncode == 0
    profile = _botocore_profile(home)
    assert "--flag" not in profile["credential_process"] and profile["credential_process"].endswith("--profile p")
    assert profile["region"] == "us-west-2"
    assert _botocore_profile(home, "q") == {"region": "ap-northeast-1"}


def test_crlf_endings_and_everything_else_stay_byte_for_byte(setup_home):
    home = setup_home
    before = (b"# my config\r\n[default]\r\nregion = us-east-1\r\n\r\n[profile p]\r\nregion = us-west-2\r\n"
              b"credential_process = /old\r\n\r\n[profile z]\r\noutput = json ; keep\r\n\xe2\x80\xa8 odd line\r\n")
    home.aws_config.write_bytes(before)
    assert _setup(home).returncode == 0
    after = home.aws_config.read_bytes()
    old_line = b"credential_process = /old\r\n"
    new_start = after.index(b"credential_process = ")
    new_line = after[new_start: after.index(b"\r\n", new_start) + 2]
    assert after == before.replace(old_line, new_line)
    assert b"\n" not in after.replace(b"\r\n", b"")  # only CRLF endings
    assert (home.aws_config.parent / "config.gw-backup").read_bytes() == before


def test_a_new_profile_in_a_crlf_file_uses_crlf(setup_home):
    home = setup_home
    home.aws_config.write_bytes(b"[default]\r\nregion = us-east-1")
    assert _setup(home).returncode == 0
    after = home.aws_config.read_bytes()
    assert after.startswith(b"[default]\r\nregion = us-east-1\r\n\r\n[profile p]\r\ncredential_process = ")
    assert b"\n" not in after.replace(b"\r\n", b"")


def test_a_symlinked_config_is_written_through_the_link(setup_home, tmp_path):
    home = setup_home
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "aws-config"
    real.write_text("[profile other]\nregion = us-east-1\n")
    real.chmod(0o640)
    home.aws_config.symlink_to(real)
    assert _setup(home).returncode == 0
    assert home.aws_config.is_symlink() and os.readlink(home.aws_config) == str(real)
    assert "credential-process --profile p" in _botocore_profile(home)["credential_process"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # its mode is kept


@pytest.mark.parametrize("region", ["eu-west-1\n[profile evil]\ncredential_process = /bin/evil", "eu west 1",
                                    "", "EU-WEST-1", "eu-west-1\r"])
def test_a_region_that_is_not_a_region_name_is_refused(setup_home, region):
    home = setup_home
    home.aws_config.write_text("[profile other]\nregion = us-east-1\n")
    before = home.aws_config.read_bytes()
    result = _setup(home, "--region", region) if region else _setup(home, f"--region={region}")
    if region == "":
        assert result.returncode == 0  # an empty --region means no region line, as before
        return
    assert_clean_failure(result, contains="region")
    assert home.aws_config.read_bytes() == before


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_directory_or_fifo_at_the_path_is_one_clear_line(setup_home, kind):
    home = setup_home
    home.aws_config.mkdir() if kind == "directory" else os.mkfifo(home.aws_config, 0o600)
    result = home.run_in_process("setup", "aws", "--profile", "p", timeout=30)
    line = assert_clean_failure(result)
    assert str(home.aws_config) in line and "internal error" not in line


def test_the_aws_cli_uses_the_written_profile(setup_home, moto):
    from tests.conftest import AWS_CLI

    if AWS_CLI is None:
        pytest.skip("the AWS CLI is not installed")
    home = setup_home
    home.aws_config.write_bytes(b"[profile p]\r\nCredential_Process = /old\r\n    --cont\r\n")
    assert _setup(home, "--region", "us-east-1").returncode == 0
    result = subprocess.run([AWS_CLI, "sts", "get-caller-identity", "--profile", "p", "--endpoint-url", moto.url], check=False,
                            env=home.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert ":assumed-role/Admin/" in result.stdout


# -- issue 15.7: gw's line is the one botocore reads, or nothing changes --------------
COMMAND = "/opt/gw/bin/gw credential-process --profile dev"


def _write_and_judge(path, before: bytes, profile: str, extra: dict[str, str] | None) -> str:
    """Run the editor on ``before``; check the outcome with botocore's own loader. Returns "written"/"refused"."""
    import botocore.configloader
    import botocore.exceptions

    from gw.plugin import ConfigError
    from gw_plugins.aws.awsconfig import set_credential_process

    path.write_bytes(before)
    try:
        old = botocore.configloader.load_config(str(path))
    except botocore.exceptions.ConfigParseError:
        old = None
    try:
        set_credential_process(str(path), profile, COMMAND, extra)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message, message  # one line
        assert path.read_bytes() == before  # byte-identical
        return "refused"
    assert old is not None, "gw wrote a file botocore could not parse before"
    new = botocore.configloader.load_config(str(path))
    assert new["profiles"][profile]["credential_process"] == COMMAND
    for key, value in (extra or {}).items():
        assert new["profiles"][profile][key] == value
    kept = {k: v for k, v in old["profiles"].get(profile, {}).items() if k not in ("credential_process", *(extra or {}))}
    assert kept.items() <= new["profiles"][profile].items()  # the profile's other settings stay
    assert {k: v for k, v in new["profiles"].items() if k != profile} == \
        {k: v for k, v in old["profiles"].items() if k != profile}  # every other profile too
    return "written"


@pytest.mark.parametrize("text, outcome", [
    ("[profile dev] ; x\nregion = us-west-2\n\n[profile  dev ]\noutput = json\n", "refused"),  # from issue 15.7
    ("[ profile dev]\nregion = us-west-2\n", "written"),  # not a profile to botocore: gw adds [profile dev]
    ("[profile dev]]\nregion = us-west-2\n", "written"),  # profile "dev]" to botocore
    ("[profile\tdev]\nregion = us-west-2\n", "refused"),  # profile "dev" to botocore, spelled otherwise
    ("[profile dev]\nregion = us-west-2\n[profile dev]\noutput = json\n", "refused"),  # botocore cannot parse it
    ("[profile dev]\nregion = us-west-2\nx = 1\n  [profile dev]\n  credential_process = /evil\n", "written"),
    ("[profile dev]\ncredential_process = /old\n# inside the value\n  --more\nregion = us-west-2", "written"),
    ("[profile dev]", "written"),
    ("[profile dev]\r[default]\rregion = us-west-2\r", "written"),
    ("[profile dev]\n [profile other]\nregion = us-west-2\n", "written"),  # gw's line must not swallow the next
    # written, then put back: the new section inherits [DEFAULT]'s s3 block, which botocore cannot parse
    ("[DEFAULT]\ns3 =\n  [x]\n[sso-session corp]\ns3 =\n", "refused"),
])
def test_the_spellings_found_by_the_attack_run(tmp_path, text, outcome):
    assert _write_and_judge(tmp_path / "config", text.encode(), "dev", None) == outcome


def test_a_refusal_through_gw_setup_aws_is_one_line_and_changes_nothing(setup_home):
    home = setup_home
    before = b"[profile p] ; mine\nregion = us-west-2\n\n[profile  p ]\noutput = json\n"
    home.aws_config.write_bytes(before)
    result = _setup(home)
    line = assert_clean_failure(result, contains="botocore also reads profile 'p' from section [profile  p ]")
    assert "updated" not in result.stdout + line
    assert home.aws_config.read_bytes() == before
    assert not (home.aws_config.parent / "config.gw-backup").exists()


def _header(draw, st) -> str:
    """A section header spelled in one of the ways people (and fuzzers) write them."""
    kind = draw(st.sampled_from(["profile", "default", "other", "sso", "DEFAULT", "garbage"]))
    if kind == "garbage" and draw(st.integers(0, 3)):
        kind = "profile"  # a broken header only now and then
    if kind == "default":
        inner = draw(st.sampled_from(["default", " default", "default ", "Default", "profile default"]))
    elif kind == "other":
        inner = draw(st.sampled_from(["profile other", "profile  other", "services s", "preview"]))
    elif kind == "sso":
        inner = "sso-session corp"
    elif kind == "DEFAULT":
        inner = "DEFAULT"
    elif kind == "garbage":
        return draw(st.sampled_from(["[", "]", "[]", "[profile dev", "profile dev]"]))
    else:
        word = draw(st.sampled_from(["profile", "Profile", "PROFILE", "profiles", '"profile"']))
        gap = draw(st.sampled_from([" ", "  ", "\t", " \t", ""]))
        name = draw(st.sampled_from(["dev", "Dev", "dev]", '"dev"', "'dev'", "dev x", "de v"]))
        inner = (draw(st.sampled_from(["", " ", "\t"])) + word + gap + name + draw(st.sampled_from(["", " ", "\t"])))
    close = draw(st.sampled_from(["]", "]]", "] ", "]\t"]))
    comment = draw(st.sampled_from(["", " ; x", " # x", ";x", " ; [y]"]))
    lead = draw(st.sampled_from(["", "", " ", "\t"]))
    return f"{lead}[{inner}{close}{comment}"


def _body(draw, st) -> list[str]:
    """A section's lines: settings (some spelled in another case), continuations, comments, rarely a broken line."""
    lines = draw(st.lists(st.sampled_from([
        "region = us-west-2", "Region=eu-central-1", "output: json", "credential_process = /old/tool --x",
        "Credential_Process = /old", "  --continued", "\t--tabbed-continuation", "; comment", "# comment",
        "  # indented comment", "", "   ", "role_arn = r ; inline", "s3 =", "  addressing_style = path",
        "  [profile dev]", "x = 1",
    ]), max_size=4, unique=True))
    if draw(st.integers(0, 9)) == 0:
        lines.append(draw(st.sampled_from(["= no name", "no delimiter here"])))
    return lines


def test_fuzzed_configs_end_with_gw_s_line_seen_by_botocore_or_unchanged(tmp_path_factory):
    """Hypothesis over header spellings (spaces, tabs, brackets, case), comments (; and #, inline), duplicate
    sections and continuations: every file is either written so that botocore reads exactly gw's line (and
    nothing else changed), or refused in one line and left byte-identical."""
    from hypothesis import HealthCheck, event, given, settings
    from hypothesis import strategies as st

    directory = tmp_path_factory.mktemp("fuzz")

    @st.composite
    def configs(draw):
        lines = [draw(st.sampled_from(["# top comment", "", "  ; indented"]))] if draw(st.booleans()) else []
        for _ in range(draw(st.integers(0, 4))):
            lines.append(_header(draw, st))
            lines += _body(draw, st)
        ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
        tail = draw(st.sampled_from([ending, ""]))
        return ending.join(lines) + (tail if lines else "")

    @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(text=configs(), profile=st.sampled_from(["dev", "default"]),
           extra=st.sampled_from([None, {"region": "eu-west-1"}]))
    def check(text, profile, extra):
        event(_write_and_judge(directory / "config", text.encode(), profile, extra))

    check()
