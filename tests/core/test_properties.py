"""Keep it fixed (issue 8): property-based runs of gw over config files, command lines, cache
entries and the answers of every upstream (AWS STS, the federation endpoint, SORACOM /v1/auth,
each played byte for byte by a scripted HTTPS server on 127.0.0.1).

The properties, for every generated input:
- nothing escapes ``gw.cli.main`` but an exit code (argparse's own usage errors included);
- stderr holds only gw's one-line messages (``gw: ...``; argparse usage lines before its
  ``gw: error:`` line), never a traceback nor an ``internal error`` (gw's marker of a bug);
- no secret appears on stderr in any form (raw, repr, JSON, URL-encoded, cut to 8+ chars),
  nor on stdout unless it is the credential being emitted;
- a cache entry, however damaged, yields the right profile's credentials or a fresh fetch.

gw runs in-process (``gw.cli.main(argv)`` returns an exit code) for speed; a few examples run
the real executable. Bounded: the whole module takes well under a minute.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gw.testing import gw_executable, run_in_process  # noqa: E402
from gw.ui import Scrubber
from tests.core.hardening_upstream import ScriptedUpstream

GW = gw_executable()
FAST = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ROLE = "arn:aws:iam::123456789012:role/Admin"


# -- running gw in-process --------------------------------------------------------------------------
def run_gw(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[int, str, str]:
    """``gw argv`` in this process (gw.testing's runner): (exit code, stdout, stderr)."""
    result = run_in_process(argv, env, stdin)
    return result.returncode, result.stdout, result.stderr


def secret_forms(secret: str) -> list[str]:
    core = secret.strip()
    forms = {f for f in Scrubber.forms(secret) if len(f) >= 8}
    forms |= {core[:k] for k in range(8, len(core))} | {core[-k:] for k in range(8, len(core))}
    return sorted(forms, key=len)


def assert_clean(code: int, out: str, err: str, secrets: list[str], *, emits: bool = False,
                 report: str | None = None) -> None:
    """``report``: a config path whose ``gw check`` problem lines (``PATH: where: ...``) may appear too."""
    assert isinstance(code, int)
    assert "Traceback (most recent call last)" not in err and "gw: internal error" not in err, err
    lines = err.splitlines()
    prefixes = ("gw: ", f"{report}: ") if report else ("gw: ",)
    if lines and not all(line.startswith(prefixes) for line in lines):
        # argparse's own output: a usage error (usage lines, then "gw: error: ...") or the help
        # that a bare "gw" prints, both with exit status 2
        assert code == 2 and lines[0].startswith("usage: gw"), err
        assert lines[-1].startswith("gw") and ": error: " in lines[-1] or "commands:" in err, err
    if code != 0:
        assert len([line for line in lines if not line.startswith("gw: warning: ")]) >= 1 or out == ""
    for secret in secrets:
        for form in secret_forms(secret):
            assert form not in err, (form, err)
            if not emits or code != 0:
                assert form not in out, (form, out)


# -- generated secrets: random-looking, with the characters that break naive scrubbing -------------------
def secrets_strategy() -> st.SearchStrategy[str]:
    tail = st.text(alphabet=st.sampled_from(list("\n\r\t\"'\\/+=&%é\u2019 \u00a0x")), max_size=4)
    return st.builds(lambda n, t, lead: lead + f"S3cr{n:016x}" + t,
                     st.integers(0, 2**64 - 1), tail, st.sampled_from(["", "\n", " "]))


@pytest.fixture
def base_env(tmp_path, ca) -> dict[str, str]:
    from tests.conftest import clean_environ

    env = clean_environ()
    env.update(HOME=str(tmp_path / "home"), GW_QUIET="1", AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=str(tmp_path / "home" / "aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "home" / "aws-credentials"))
    (tmp_path / "home").mkdir()
    return env


def fresh_home(base_env: dict[str, str], root: Path, config: str | bytes) -> dict[str, str]:
    """A new GW_HOME and config file for one example."""
    d = Path(tempfile.mkdtemp(dir=root))
    path = d / "config.toml"
    path.write_bytes(config if isinstance(config, bytes) else config.encode())
    return dict(base_env, GW_HOME=str(d / "state"), GW_CONFIG=str(path))


# -- config files ----------------------------------------------------------------------------------------
SCALARS = st.one_of(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
                    st.booleans(), st.text(max_size=20), st.just("env:GWT_SECRET"), st.just("vault:x"),
                    st.just("prompt"), st.just("totp:env:GWT_SECRET"))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)
STEP_TYPES = ["aws-keys", "assume-role", "session-token", "federation-token", "web-identity", "soracom-keys",
              "soracom-auth", "krypton", "aws-profile", "nope"]
OPTION_NAMES = ["access_key_id", "secret_access_key", "session_token", "role_arn", "endpoint", "duration",
                "mfa_code", "mfa_serial", "timeout", "operator_id", "username", "password", "auth_key_id",
                "auth_key", "region", "reader", "operation", "token_timeout", "x"]
STEP = st.builds(lambda use, opts: {"use": use, **opts}, st.sampled_from(STEP_TYPES),
                 st.dictionaries(st.sampled_from(OPTION_NAMES), VALUES, max_size=4))
PROFILE = st.fixed_dictionaries({"steps": st.one_of(st.lists(STEP, min_size=1, max_size=3), VALUES)},
                                optional={"description": VALUES, "region": VALUES, "login": VALUES})
SETTINGS = st.dictionaries(st.sampled_from(["lock_timeout", "prompt_timeout", "ca_bundle", "key_store", "askpass",
                                            "disable_plugins", "bogus"]), VALUES, max_size=3)
CONFIG = st.fixed_dictionaries({"profiles": st.dictionaries(st.sampled_from(["p", "P", "a.b", "_x", "q r", "é"]),
                                                            PROFILE, max_size=3)},
                               optional={"settings": SETTINGS})


def _mutate(text: bytes, data: st.DataObject) -> bytes:
    if not text or not data.draw(st.booleans(), label="mutate"):
        return text
    at = data.draw(st.integers(0, len(text)), label="at")
    junk = data.draw(st.binary(max_size=4), label="junk")
    return text[:at] + junk + text[at + data.draw(st.integers(0, 3), label="cut"):]


@FAST
@given(doc=CONFIG, data=st.data(), secret=secrets_strategy())
def test_any_config_file_gives_gw_lines_only(base_env, tmp_path, doc, data, secret):
    import tomli_w

    try:
        text = tomli_w.dumps(doc).encode()
    except (TypeError, ValueError):
        text = repr(doc).encode()
    env = fresh_home(base_env, tmp_path, _mutate(text, data))
    env["GWT_SECRET"] = secret
    for argv in (["check"], ["profiles"], ["credential-process", "--profile", "p"],
                 ["env", "--profile", "P", "--format", "json"], ["cache", "list"]):
        code, out, err = run_gw(argv, env)
        assert_clean(code, out, err, [secret], emits=argv[0] in ("credential-process", "env"), report=env["GW_CONFIG"])


# -- command lines ---------------------------------------------------------------------------------------
WORDS = ["credential-process", "env", "profiles", "plugins", "check", "cache", "list", "clear", "vault", "set",
         "rm", "--profile", "p", "--format", "sh", "fish", "powershell", "json", "--config", "--help", "-h",
         "--version", "setup", "aws", "--region", "--aws-profile", "soracom-token", "--", "=", "--profile=p"]
ARGV = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=6)


@FAST
@given(argv=ARGV, secret=secrets_strategy())
def test_any_command_line_gives_gw_lines_only(base_env, tmp_path, argv, secret):
    assume(not ({"exec", "login", "demo", "serve"} & set(argv)))
    env = fresh_home(base_env, tmp_path, '[profiles.p]\nsteps = [{ use = "aws-keys", access_key_id = "env:GWT_A",'
                                         ' secret_access_key = "env:GWT_SECRET" }]\n')
    env.update(GWT_SECRET=secret, GWT_A="AKIAEXAMPLEEXAMPLE01")
    code, out, err = run_gw(argv, env, stdin=b"typed-value-1234\n")
    assert_clean(code, out, err, [secret], emits=True, report=env["GW_CONFIG"])


# -- AWS STS answers ----------------------------------------------------------------------------------------
@pytest.fixture
def upstream(ca):
    with ScriptedUpstream(ca) as server:
        yield server


def _echo(secret: str, how: str) -> str:
    return {"raw": secret, "repr": repr(secret), "json": json.dumps(secret), "url": quote(secret, safe=""),
            "cut": secret[: len(secret) // 2 + 4], "none": ""}[how]


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


FIELD = st.one_of(st.text(max_size=30), st.sampled_from(["", "ASIAEXAMPLE", "2999-01-01T00:00:00Z", "not a date",
                                                          "2000-01-01T00:00:00Z", "9" * 40]))


def sts_body(draw_ok: bool, fields: list[str], code: str, echo: str) -> bytes:
    if draw_ok:
        akid, secret_key, token, expiration = (_xml_escape(f) for f in fields)
        return (f'<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
                f"<Credentials><AccessKeyId>{akid}</AccessKeyId><SecretAccessKey>{secret_key}</SecretAccessKey>"
                f"<SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration></Credentials>"
                f"<AssumedRoleUser><Arn>{ROLE}</Arn><AssumedRoleId>AROA:x</AssumedRoleId></AssumedRoleUser>"
                f"</AssumeRoleResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
                f"</AssumeRoleResponse>").encode()
    return (f"<ErrorResponse><Error><Type>Sender</Type><Code>{_xml_escape(code)}</Code>"
            f"<Message>bad token {_xml_escape(echo)}</Message></Error><RequestId>r</RequestId></ErrorResponse>").encode()


@settings(FAST, max_examples=30)
@given(status=st.sampled_from([200, 400, 403, 404]), ok=st.booleans(), fields=st.lists(FIELD, min_size=4, max_size=4),
       code=st.sampled_from(["AccessDenied", "ExpiredToken", "InvalidClientTokenId", "", "<>&"]),
       how=st.sampled_from(["raw", "repr", "json", "url", "cut", "none"]), junk=st.booleans(),
       secret=secrets_strategy(), raw=st.binary(max_size=40))
def test_any_sts_answer_gives_gw_lines_only(base_env, tmp_path, upstream, ca, status, ok, fields, code, how, junk,
                                           secret, raw):
    env = fresh_home(base_env, tmp_path, f"""
[settings]
ca_bundle = "{ca.ca_path}"
[profiles.p]
steps = [
  {{ use = "aws-keys", access_key_id = "env:GWT_A", secret_access_key = "env:GWT_S", session_token = "env:GWT_SECRET" }},
  {{ use = "assume-role", role_arn = "{ROLE}", endpoint = "{upstream.url}", region = "us-east-1" }},
]
""")
    env.update(GWT_A="ASIAEXAMPLEEXAMPLE01", GWT_S="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", GWT_SECRET=secret)
    body = raw if junk else sts_body(ok and status == 200, fields, code, _echo(secret, how))
    upstream.answer(status, body, {"Content-Type": "text/xml"})
    before = len(upstream.requests)
    code_, out, err = run_gw(["credential-process", "--profile", "p"], env)
    assert_clean(code_, out, err, [secret, env["GWT_S"]], emits=False)
    assert len(upstream.requests) > before or code_ != 0  # a secret with CR/LF is refused before sending
    if code_ == 0:
        doc = json.loads(out)
        assert doc["Version"] == 1 and doc["AccessKeyId"] == fields[0]


# -- the federation endpoint ------------------------------------------------------------------------------------
JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
                       lambda inner: st.one_of(st.lists(inner, max_size=3),
                                               st.dictionaries(st.sampled_from(["SigninToken", "x"]), inner, max_size=2)),
                       max_leaves=5)


@settings(FAST, max_examples=25)
@given(status=st.sampled_from([200, 400, 500]), doc=JSONISH, junk=st.booleans(), raw=st.binary(max_size=30),
       secret=secrets_strategy())
def test_any_federation_answer_gives_gw_lines_only(base_env, tmp_path, upstream, ca, status, doc, junk, raw, secret):
    env = fresh_home(base_env, tmp_path, f"""
[settings]
ca_bundle = "{ca.ca_path}"
[profiles.p]
steps = [{{ use = "aws-keys", access_key_id = "env:GWT_A", secret_access_key = "env:GWT_S", session_token = "env:GWT_SECRET" }}]
login = {{ endpoint = "{upstream.url}/federation" }}
""")
    env.update(GWT_A="ASIAEXAMPLEEXAMPLE01", GWT_S="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", GWT_SECRET=secret)
    upstream.answer(status, raw if junk else json.dumps(doc).encode(), {"Content-Type": "application/json"})
    before = len(upstream.requests)
    code, out, err = run_gw(["login", "--profile", "p", "--print"], env)
    assert len(upstream.requests) == before + 1
    assert_clean(code, out, err, [secret, env["GWT_S"]], emits=False)  # the URL carries only the sign-in token
    if code == 0:
        assert out.startswith(f"{upstream.url}/federation?Action=login&") and out.count("\n") == 1


# -- SORACOM /v1/auth ---------------------------------------------------------------------------------------------
AUTH_DOC = st.fixed_dictionaries({}, optional={"apiKey": JSONISH, "token": JSONISH, "operatorId": JSONISH,
                                               "userName": JSONISH, "code": JSONISH, "message": JSONISH})


@settings(FAST, max_examples=25)
@given(status=st.sampled_from([200, 400, 401, 500]), doc=AUTH_DOC, junk=st.booleans(), raw=st.binary(max_size=30),
       secret=secrets_strategy(), how=st.sampled_from(["raw", "json", "cut", "none"]))
def test_any_soracom_auth_answer_gives_gw_lines_only(base_env, tmp_path, upstream, ca, status, doc, junk, raw, secret,
                                                    how):
    env = fresh_home(base_env, tmp_path, f"""
[settings]
ca_bundle = "{ca.ca_path}"
[profiles.s]
steps = [
  {{ use = "soracom-keys", auth_key_id = "keyId-0123456789abcdef", auth_key = "env:GWT_SECRET" }},
  {{ use = "soracom-auth", endpoint = "{upstream.url}" }},
]
""")
    env["GWT_SECRET"] = secret
    if how != "none" and status != 200:
        doc = dict(doc, message=f"auth key {_echo(secret, how)} is wrong")
    upstream.answer(status, raw if junk else json.dumps(doc).encode(), {"Content-Type": "application/json"})
    before = len(upstream.requests)
    code, out, err = run_gw(["env", "--profile", "s", "--format", "json"], env)
    assert len(upstream.requests) == before + 1
    assert_clean(code, out, err, [secret], emits=False)
    if code == 0:
        assert set(json.loads(out)) >= {"SORACOM_API_KEY", "SORACOM_TOKEN"}


# -- cache entries ---------------------------------------------------------------------------------------------------
@pytest.fixture
def cached(base_env, tmp_path, upstream, ca):
    """A home whose profile p has a cache entry from the scripted STS; yields (env, entry path, bytes)."""
    from gw.store import Store

    env = fresh_home(base_env, tmp_path, f"""
[settings]
ca_bundle = "{ca.ca_path}"
[profiles.p]
steps = [
  {{ use = "aws-keys", access_key_id = "env:GWT_A", secret_access_key = "env:GWT_S" }},
  {{ use = "assume-role", role_arn = "{ROLE}", endpoint = "{upstream.url}", region = "us-east-1" }},
]
[profiles.q]
steps = [{{ use = "aws-keys", access_key_id = "env:GWT_A", secret_access_key = "env:GWT_S" }}]
""")
    env.update(GWT_A="AKIAEXAMPLEEXAMPLE01", GWT_S="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    upstream.answer(200, sts_body(True, ["ASIAORIGINAL00000001", "s" * 40, "FwoG" + "t" * 60, "2999-01-01T00:00:00Z"],
                                  "", ""), {"Content-Type": "text/xml"})
    code, _out, err = run_gw(["credential-process", "--profile", "p"], env)
    assert code == 0, err
    entry = Path(Store(str(Path(env["GW_HOME"]) / "cache"), env["GW_CONFIG"]).path("p"))
    yield env, entry, entry.read_bytes()


@settings(FAST, max_examples=40)
@given(data=st.data())
def test_any_damaged_cache_entry_is_the_right_credential_or_a_fetch(cached, upstream, data):
    env, entry, original = cached
    kind = data.draw(st.sampled_from(["flip", "truncate", "header", "junk", "same"]), label="damage")
    blob = bytearray(original)
    if kind == "flip":
        i = data.draw(st.integers(0, len(blob) - 1), label="i")
        blob[i] ^= data.draw(st.integers(1, 255), label="bit")
    elif kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1), label="n")]
    elif kind == "header":
        line, _, body = bytes(blob).partition(b"\n")
        parts = line.split(b" ")
        i = data.draw(st.integers(0, len(parts) - 1), label="field")
        parts[i] = data.draw(st.sampled_from([b"q", b"P", b"0", b"9999999999", b"-", b"aws-credentials", b"x y"]),
                             label="value")
        blob = bytearray(b" ".join(parts) + b"\n" + body)
    elif kind == "junk":
        blob = bytearray(data.draw(st.binary(max_size=300), label="junk"))
    entry.write_bytes(bytes(blob))
    upstream.answer(200, sts_body(True, ["ASIAREFETCHED0000002", "r" * 40, "FwoG" + "u" * 60, "2999-01-01T00:00:00Z"],
                                  "", ""), {"Content-Type": "text/xml"})
    before = len(upstream.requests)
    code, out, err = run_gw(["credential-process", "--profile", "p"], env)
    assert_clean(code, out, err, [env["GWT_S"]], emits=False)
    assert code == 0, err
    akid = json.loads(out)["AccessKeyId"]
    if bytes(blob) == original:
        assert akid == "ASIAORIGINAL00000001" and len(upstream.requests) == before
    else:
        assert akid in ("ASIAORIGINAL00000001", "ASIAREFETCHED0000002")
        if akid == "ASIAORIGINAL00000001":  # served from the damaged entry: only if it still authenticated
            assert len(upstream.requests) == before
    # never the other profile's credentials: q's long-term keys are not in the answer
    assert json.loads(out).get("SessionToken")
    entry.write_bytes(original)


# -- a few runs of the real executable -------------------------------------------------------------------------------
@settings(FAST, max_examples=6)
@given(doc=CONFIG, data=st.data(), secret=secrets_strategy())
def test_the_real_executable_on_generated_configs(base_env, tmp_path, doc, data, secret):
    import tomli_w

    try:
        text = tomli_w.dumps(doc).encode()
    except (TypeError, ValueError):
        text = repr(doc).encode()
    env = fresh_home(base_env, tmp_path, _mutate(text, data))
    env["GWT_SECRET"] = secret
    result = subprocess.run([GW, "credential-process", "--profile", "p"], check=False, env=env, capture_output=True,
                            stdin=subprocess.DEVNULL, timeout=60)
    assert_clean(result.returncode, result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace"),
                 [secret], emits=True)


# -- Krypton (POST /v1/keys and what follows) --------------------------------------------------------------------
@settings(FAST, max_examples=20)
@given(status=st.sampled_from([200, 400, 401, 500]), doc=st.one_of(
    JSONISH, st.fixed_dictionaries({"keyId": JSONISH, "rand": st.one_of(JSONISH, st.binary(min_size=16, max_size=16)
                                    .map(bytes.hex)), "autn": st.one_of(JSONISH, st.binary(min_size=16, max_size=16)
                                    .map(bytes.hex))})), junk=st.booleans(), raw=st.binary(max_size=30))
def test_any_krypton_answer_gives_gw_lines_only(base_env, tmp_path, upstream, ca, status, doc, junk, raw):
    sim = tmp_path / "sim.json"
    if not sim.exists():
        sim.write_text(json.dumps({"imsi": "440103123456789", "k": "00112233445566778899aabbccddeeff",
                                   "opc": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "sqn": 0}))
    env = fresh_home(base_env, tmp_path, f"""
[settings]
ca_bundle = "{ca.ca_path}"
[profiles.k]
steps = [{{ use = "krypton", operation = "cognito-credentials", endpoint = "{upstream.url}", reader = "emulated", sim_file = "{sim}" }}]
""")
    upstream.answer(status, raw if junk else json.dumps(doc, default=str).encode(), {"Content-Type": "application/json"})
    before = len(upstream.requests)
    code, out, err = run_gw(["credential-process", "--profile", "k"], env)
    assert_clean(code, out, err, ["00112233445566778899aabbccddeeff", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"])
    assert len(upstream.requests) > before and code != 0  # it asked, and nonsense never became credentials


# -- 1Password: whatever the op CLI prints ------------------------------------------------------------------------
@settings(FAST, max_examples=20)
@given(out=st.binary(max_size=60), errout=st.binary(max_size=60), exit_code=st.sampled_from([0, 1, 2, 127]),
       secret=secrets_strategy())
def test_any_op_cli_output_gives_gw_lines_only(base_env, tmp_path, out, errout, exit_code, secret):
    env = fresh_home(base_env, tmp_path, """
[profiles.o]
steps = [{ use = "aws-keys", access_key_id = "op://vault/item/akid", secret_access_key = "env:GWT_SECRET" }]
""")
    d = Path(env["GW_CONFIG"]).parent
    (d / "out").write_bytes(out)
    (d / "err").write_bytes(errout)
    op = d / "op"
    op.write_text(f'#!/bin/sh\ncat "{d}/out"\ncat "{d}/err" >&2\nexit {exit_code}\n')
    op.chmod(0o700)
    env.update(GW_OP_PATH=str(op), GWT_SECRET=secret)
    code, stdout, err = run_gw(["credential-process", "--profile", "o"], env)
    assert_clean(code, stdout, err, [secret], emits=True)
