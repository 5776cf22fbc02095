"""Issue 8, secret items: every form of a secret scrubbed, hostile values safe in every
``gw env`` format, and the parent's credential variables cleared for ``gw exec``/``gw env``.
"""

from __future__ import annotations

import json
import os
import subprocess
from urllib.parse import quote, quote_plus

import pytest

from gw.envvars import POWERSHELL_SINGLE_QUOTES, conflicting, render
from gw.ui import Scrubber
from tests.core.gw_test_support import ROLE

SECRET = 'FwoGZXIvYXdzEJr//////////wEaDPäss"w\\ord+/=&%x'
HOSTILE = [
    "x\u2019; New-Item -Path PWNED; \u2018",
    "x'; touch PWNED; echo '",
    "a\u2018b\u2019c\u201ad\u201be''f",
    "$(touch PWNED)`touch PWNED`${IFS}\\",
    "line1\nline2\r\nend\\'",
    "fish \\' \\\\' end",
    "\u202e\u2028\u00a0 unicode",
]


# -- the scrubber --------------------------------------------------------------------------
def _forms(secret: str) -> list[str]:
    msg = "upstream said: "
    return [
        f"{msg}{secret} (raw)",
        f"{msg}{secret!r}",
        f"Invalid header value {secret.encode()!r}",
        json.dumps({"error": f"bad token {secret}"}),
        json.dumps({"error": f"bad token {secret}"}, ensure_ascii=False),
        f"{msg}{quote(secret, safe='')}",
        f"{msg}{quote_plus(secret)}",
        f"{msg}{quote(secret)}",
        (msg + secret)[:40],
        (msg + secret)[:40] + "...",
        (msg + secret)[:40] + "\u2026",
        (msg + json.dumps(secret))[:30],
        secret[-20:] + " was the end of it",
    ]


@pytest.mark.parametrize("secret", [SECRET, SECRET + "\n", "AKIA" + "Q" * 16, "ab\r\ncd\tefgh\x00ij"])
def test_every_form_of_a_secret_is_scrubbed(secret):
    scrubber = Scrubber()
    scrubber.add(secret)
    for message in _forms(secret):
        out = scrubber.scrub(message)
        assert "****" in out, message
        for form in Scrubber.forms(secret):
            assert form not in out
        core = secret.strip()
        for cut in range(8, len(core) + 1):  # no 8-character piece of it survives
            assert core[:cut] not in out or cut < 8
            assert core[-cut:] not in out


AWS_SHAPED = ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
              "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+9xU2ZR5X1iKCAbc=="]


def _pieces(text: str, n: int = 8) -> set[str]:
    return {text[i:i + n] for i in range(len(text) - n + 1)}


@pytest.mark.parametrize("secret", AWS_SHAPED)
def test_no_piece_of_a_secret_survives_any_cut_of_any_form(secret):
    """Secret keys and session tokens hold '/', '+' and '=': their URL-encoded forms share a
    prefix with the raw one. A cut of any form, at its start, its end or both, in any message,
    leaves no 8-character piece of the secret in any spelling."""
    scrubber = Scrubber()
    scrubber.add(secret)
    forms = set(Scrubber.forms(secret))
    assert "%2f" in "".join(forms) and any("K7MDENG%2f" in f or "%2b" in f for f in forms)  # lower-case escapes
    secret_pieces = set().union(*(_pieces(f) for f in forms))
    for form in forms:
        for start in range(0, len(form) - 8, 3):
            for end in range(start + 8, len(form) + 1, 5):
                for message in (f"upstream said: {form[start:end]}... (cut)", form[start:end],
                                f"x{form[start:end]}{form}y"):
                    out = scrubber.scrub(message)
                    assert not _pieces(out) & secret_pieces, (form[start:end], out)
    message = f"AccessDenied for key {secret} in request /abc"
    assert scrubber.scrub(message[:60]).startswith("AccessDenied for key ****")


def test_scrubbing_leaves_other_text_alone():
    scrubber = Scrubber()
    scrubber.add(SECRET)
    text = "gw: AssumeRole failed: AccessDenied: not authorized to perform sts:AssumeRole"
    assert scrubber.scrub(text) == text


def test_a_session_token_with_a_newline_does_not_leak(aws_home, iam_user):
    """The reproduction from the issue: http.client prints repr() of the header value."""
    home = aws_home
    token = "FwoGZXIvYXdzEJrTOKEN" + "x" * 40 + "\n"
    home.env.update(GWT_AKID=iam_user[0], GWT_SECRET=iam_user[1], GWT_TOK=token)
    home.write_config(f"""
[profiles.p]
steps = [
  {{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET", session_token = "env:GWT_TOK" }},
  {{ use = "assume-role", role_arn = "{ROLE}" }},
]
""")
    result = home.run_in_process("credential-process", "--profile", "p")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and result.stdout == ""
    out = result.stdout + result.stderr
    core = token.strip()
    for cut in range(8, len(core) + 1):
        assert core[:cut] not in out, out
    assert "xxxxxxxx" not in out


# -- gw env formats with hostile values ------------------------------------------------------
def _powershell_decode(line: str) -> tuple[str, str]:
    """Parse ``$Env:K = '...'`` the way PowerShell's tokenizer scans a single-quoted string
    (PowerShell/PowerShell src/System.Management.Automation/engine/parser/tokenizer.cs,
    ScanStringLiteral: any of the five quote characters ends the string unless another
    quote character follows, which it then stands for). Returns (value, rest of line)."""
    prefix, _, rest = line.partition(" = ")
    assert prefix.startswith("$Env:") and rest[0] in POWERSHELL_SINGLE_QUOTES
    value, i = [], 1
    while True:
        c = rest[i]
        if c in POWERSHELL_SINGLE_QUOTES:
            if i + 1 < len(rest) and rest[i + 1] in POWERSHELL_SINGLE_QUOTES:
                value.append(rest[i + 1])
                i += 2
                continue
            return "".join(value), rest[i + 1 :]
        value.append(c)
        i += 1


def _fish_decode(line: str) -> tuple[str, str]:
    """Parse ``set -gx K '...';`` by fish's single-quote rules (only \\\\ and \\' are escapes)."""
    head, _, rest = line.partition(" '")
    assert head.startswith("set -gx ")
    value, i = [], 0
    while True:
        c = rest[i]
        if c == "\\" and rest[i + 1] in "\\'":
            value.append(rest[i + 1])
            i += 2
            continue
        if c == "'":
            return "".join(value), rest[i + 1 :]
        value.append(c)
        i += 1


@pytest.mark.parametrize("value", HOSTILE)
def test_powershell_output_keeps_hostile_values_inside_the_string(value):
    out = render({"AWS_ACCESS_KEY_ID": value, "AWS_SESSION_TOKEN": value + "2"}, "powershell")
    statements = out.split("\n$Env:")
    decoded = [_powershell_decode(s if s.startswith("$Env:") else "$Env:" + s) for s in statements]
    assert [d[0] for d in decoded] == [value, value + "2"]
    assert all(rest == "" for _, rest in decoded)


def test_powershell_escapes_each_of_the_four_typographic_quotes():
    for quote_char in "\u2018\u2019\u201a\u201b'":
        line = render({"K": f"a{quote_char}b"}, "powershell")
        assert line == f"$Env:K = 'a{quote_char}{quote_char}b'"


@pytest.mark.parametrize("value", HOSTILE)
def test_fish_output_keeps_hostile_values_inside_the_string(value):
    out = render({"AWS_ACCESS_KEY_ID": value}, "fish")
    line = out[out.index("set -gx"):]
    decoded, rest = _fish_decode(line)
    assert decoded == value and rest == ";"


@pytest.mark.parametrize("shell", ["sh", "bash", "dash"])
def test_sh_output_round_trips_hostile_values_in_a_real_shell(shell, tmp_path):
    path = subprocess.run(["sh", "-c", f"command -v {shell}"], check=False, capture_output=True, text=True).stdout.strip()
    if not path:
        pytest.skip(f"{shell} is not installed")
    values = {f"GWT_V{i}": v for i, v in enumerate(HOSTILE)}
    script = render(values, "sh")
    dump = "; ".join(f'printf "%s\\0" "${name}"' for name in values)
    result = subprocess.run([path, "-c", f"eval \"$GWT_SCRIPT\"; {dump}"], check=False, cwd=tmp_path, capture_output=True,
                            env={"PATH": os.environ["PATH"], "GWT_SCRIPT": script}, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split("\0")[:-1] == list(values.values())
    assert not (tmp_path / "PWNED").exists()


def test_json_output_round_trips_hostile_values():
    values = {f"V{i}": v for i, v in enumerate(HOSTILE)}
    assert json.loads(render(values, "json")) == values


def test_an_env_value_with_a_nul_byte_is_one_clear_line():
    from gw.errors import GwError

    with pytest.raises(GwError, match="NUL"):
        render({"K": "a\0b"}, "sh")


def test_gw_env_and_exec_end_to_end_with_a_hostile_upstream_value(aws_home, iam_user, tmp_path):
    home = aws_home
    hostile = HOSTILE[0]
    home.env.update(GWT_AKID=hostile, GWT_SECRET=iam_user[1])
    home.write_config("""
[profiles.p]
steps = [{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }]
""")
    for fmt in ("sh", "fish", "powershell", "json"):
        result = home.run_in_process("env", "--profile", "p", "--format", fmt)
        assert result.returncode == 0, result.stderr
        if fmt == "powershell":
            line = next(ln for ln in result.stdout.splitlines() if ln.startswith("$Env:AWS_ACCESS_KEY_ID"))
            assert _powershell_decode(line) == (hostile, "")
    result = home.run("exec", "--profile", "p", "--", "sh", "-c", 'printf %s "$AWS_ACCESS_KEY_ID"')
    assert result.returncode == 0 and result.stdout == hostile


# -- the parent's credential variables ---------------------------------------------------------
PARENT = {"SORACOM_AUTH_KEY_ID": "keyId-parent", "SORACOM_AUTH_KEY": "secret-parent",
          "AWS_SESSION_EXPIRATION": "2001-01-01T00:00:00Z"}


def test_the_parents_soracom_keys_and_session_expiration_are_cleared(aws_home, iam_user):
    assert set(PARENT) <= set(conflicting())
    home = aws_home
    home.env.update(GWT_AKID=iam_user[0], GWT_SECRET=iam_user[1], **PARENT)
    home.write_config("""
[profiles.p]
steps = [{ use = "aws-keys", access_key_id = "env:GWT_AKID", secret_access_key = "env:GWT_SECRET" }]
""")
    result = home.run("exec", "--profile", "p", "--", "env")
    assert result.returncode == 0, result.stderr
    names = {line.partition("=")[0] for line in result.stdout.splitlines()}
    assert not names & set(PARENT)
    assert "AWS_ACCESS_KEY_ID" in names
    shown = home.run_in_process("env", "--profile", "p", "--format", "sh")
    unset = next(line for line in shown.stdout.splitlines() if line.startswith("unset "))
    assert set(PARENT) <= set(unset.split()[1:])
