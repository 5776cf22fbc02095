"""A stand-in for soracom-cli (the official SORACOM CLI), for tests and the benchmark.

Modelled on soracom-cli's published source, not on gw's code:

* profile loading - soracom/soracom-cli generators/cmd/predefined/profiles.go:
  ``--profile NAME`` goes through kennygrant/sanitize ``BaseName`` (sanitize.go) before
  ``$SORACOM_PROFILE_DIR`` (else ``~/.soracom``) ``/NAME.json`` is opened; no
  ``--profile`` means ``default``; a file readable by group/others is refused; a
  ``profileCommand`` is split by mattn/go-shellwords ``Parse`` (shellwords.go, env and
  backtick parsing off), run without a shell, with stdin /dev/null and stderr captured
  (``exec.Command(...).Output()``): on failure only ``Error: exit status N`` is shown.
* endpoint - generators/cmd/predefined/endpoint.go and protocols.md section 3: env
  ``SORACOM_ENDPOINT`` first, then ``--coverage-type``, then the profile FILE's
  ``endpoint``, then the file's ``coverageType``; ``/v1`` is appended.
* ``--api-key K --api-token T`` skip the sign-in; otherwise ``POST /v1/auth`` with the
  profile's credentials (never ``tokenTimeoutSeconds``). Every call sends
  ``X-Soracom-Lang: en``. API errors print the answer and exit 1.

Commands: ``subscribers list [--limit N] [--last-evaluated-key K]``,
``subscribers get --imsi I``, ``operator get`` (operator ID from the token's JWT payload,
as auth_helper.go ``extractOperatorIDFromAPIToken`` reads it from ``--api-token``), ``logout``
(generated/cmd/logout.go: ``POST /v1/auth/logout``, nothing printed on success). Requests are
sent to ``SORACOM_ENDPOINT`` + ``/v1`` + path with ``X-Soracom-API-Key``/``X-Soracom-Token``
set from the flags (generated/cmd/apiclient.go ``callAPI``). TLS trusts ``SSL_CERT_FILE`` (as Go's crypto/x509 does on Linux).
``SORACOM_STANDIN_LOG=<file>`` appends one JSON line per run (argv, endpoint, what
authenticated it) so tests can see what the CLI received.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ENDPOINTS = {"jp": "https://api.soracom.io", "g": "https://g.api.soracom.io"}
GLOBAL_FLAGS = ("--profile", "--api-key", "--api-token", "--coverage-type")


class CliError(Exception):
    """What soracom-cli prints as ``Error: ...`` before exiting 1."""


# -- kennygrant/sanitize BaseName -------------------------------------------------------
# A few entries of sanitize.go's transliteration table (enough for the tests).
_ACCENTS = {"é": "e", "è": "e", "à": "a", "ü": "u", "ö": "o", "ä": "a", "ß": "ss", "ñ": "n", "ç": "c"}


def sanitize_base_name(name: str) -> str:
    """sanitize.BaseName: . and / become -, then cleanString with illegalName."""
    text = re.sub(r"[./]", "-", name)  # baseNameSeparators
    text = text.strip(" ")  # cleanString: trim spaces
    text = "".join(_ACCENTS.get(c, c) for c in text)  # Accents
    text = re.sub(r"[ &_=+:]", "-", text)  # separators
    text = re.sub(r"[^A-Za-z0-9\-.]", "", text)  # illegalName [^[:alnum:]-.] (Go's alnum is ASCII)
    return re.sub(r"-+", "-", text)  # dashes


# -- mattn/go-shellwords Parse (ParseEnv and ParseBacktick false) -------------------------
def shellwords_parse(line: str) -> list[str]:
    args: list[str] = []
    buf = ""
    escaped = double = single = back = dollar = False
    got = False
    for r in line:
        if escaped:
            escaped = False
            if back or dollar:
                buf += "\\" + r
                got = True
                continue
            buf += {"t": "\t", "n": "\n"}.get(r, r)
            got = True
            continue
        if r == "\\":
            if single:
                buf += r
            else:
                escaped = True
            continue
        if r in " \t\r\n":
            if single or double or back or dollar:
                buf += r
            elif got:
                args.append(buf)
                buf, got = "", False
            continue
        if r == "`" and not single and not double and not dollar:
            back = not back
        elif r == ")" and not single and not double and not back:
            if not dollar:
                raise CliError("invalid command line string")
            buf += r
            dollar = False
            got = True
            continue
        elif r == "(" and not single and not double and not back:
            if not dollar and buf.endswith("$") and not buf.endswith("\\$"):
                dollar = True
                buf += r
                continue
            raise CliError("invalid command line string")
        elif r == '"' and not single and not dollar and not back:
            if double:
                got = True
            double = not double
            continue
        elif r == "'" and not double and not dollar and not back:
            if single:
                got = True
            single = not single
            continue
        elif r in ";&|<>" and not (single or double or back or dollar):
            if r == ">" and buf and buf.isdigit():
                got = False  # "2>" : the digits belong to the redirection
            break
        got = True
        buf += r
    if got:
        args.append(buf)
    if escaped or single or double or back or dollar:
        raise CliError("invalid command line string")
    return args


# -- profiles ---------------------------------------------------------------------------
def profile_dir() -> Path:
    env = os.environ.get("SORACOM_PROFILE_DIR")
    return Path(env) if env else Path.home() / ".soracom"


def load_profile(name: str | None) -> dict:
    path = profile_dir() / f"{sanitize_base_name(name) if name else 'default'}.json"
    try:
        mode = path.stat().st_mode
    except OSError:
        raise CliError(f"open {path}: no such file or directory") from None
    if mode & 0o077:
        raise CliError(f"permissions of the profile file {path} are too open")
    doc = json.loads(path.read_text())
    doc.setdefault("coverageType", "jp")
    return doc


def profile_from_command(command: str) -> dict:
    argv = shellwords_parse(command)
    if not argv:
        raise CliError("empty profileCommand")
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    except OSError as exc:
        raise CliError(f"exec: {argv[0]!r}: {exc.strerror}") from None
    if proc.returncode != 0:
        raise CliError(f"exit status {proc.returncode}")  # its stderr is never shown
    return json.loads(proc.stdout)


def endpoint_for(coverage_flag: str | None, file_doc: dict | None) -> str:
    env = os.environ.get("SORACOM_ENDPOINT")
    if env:
        return env
    if coverage_flag:
        return ENDPOINTS[coverage_flag]
    if file_doc and file_doc.get("endpoint"):
        return file_doc["endpoint"]
    return ENDPOINTS[(file_doc or {}).get("coverageType") or "jp"]


# -- HTTP ---------------------------------------------------------------------------------
def call(method: str, url: str, body: dict | None = None, key: str | None = None,
         token: str | None = None) -> tuple[int, dict, object]:
    headers = {"Accept": "application/json", "X-Soracom-Lang": "en"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if key and token:
        headers["X-Soracom-API-Key"] = key
        headers["X-Soracom-Token"] = token
    data = json.dumps(body).encode() if body is not None else None
    # Go's net/http sets up TLS (and loads the trust store) only for an https URL: a plain
    # http://127.0.0.1 SORACOM_ENDPOINT (gw soracom's forwarder) makes no TLS context.
    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE")) if url.startswith("https:") else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            doc = json.loads(text)
        except ValueError:
            doc = text.decode(errors="replace")
        return exc.code, dict(exc.headers), doc


def sign_in(base: str, prof: dict) -> tuple[str, str]:
    keys = {k.lower(): v for k, v in prof.items()}  # Go's json matches keys case-insensitively
    body = {name: keys[name.lower()] for name in ("email", "password", "authKeyId", "authKey", "operatorId")
            if keys.get(name.lower())}
    if keys.get("username"):
        body["userName"] = keys["username"]
    if keys.get("mfaotpcode"):
        body["mfaOTPCode"] = keys["mfaotpcode"]
    status, _, doc = call("POST", f"{base}/v1/auth", body)
    if status != 200 or not isinstance(doc, dict):
        raise CliError(json.dumps(doc))
    return doc["apiKey"], doc["token"]


def operator_id_of(token: str) -> str:
    payload = token.split(".")[1]
    doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return doc["operator"]["operatorId"]


# -- main -----------------------------------------------------------------------------------
def split_flags(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    flags: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        name, eq, value = word.partition("=")
        if name in GLOBAL_FLAGS:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise CliError(f"flag needs an argument: {name}")
                value = argv[i]
            flags[name] = value
        else:
            rest.append(word)
        i += 1
    return flags, rest


def option(rest: list[str], name: str) -> str | None:
    for i, word in enumerate(rest):
        if word == name and i + 1 < len(rest):
            return rest[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def run(argv: list[str]) -> int:
    flags, rest = split_flags(argv)
    key, token = flags.get("--api-key"), flags.get("--api-token")
    file_doc = None
    how = "api-key"
    if not (key and token):
        file_doc = load_profile(flags.get("--profile"))
    base = endpoint_for(flags.get("--coverage-type"), file_doc).rstrip("/")
    log = os.environ.get("SORACOM_STANDIN_LOG")
    if not (key and token):
        assert file_doc is not None
        prof = profile_from_command(file_doc["profileCommand"]) if file_doc.get("profileCommand") else file_doc
        key, token = sign_in(base, prof)
        how = "profile"
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"argv": argv, "rest": rest, "endpoint": base, "auth": how,
                                "env_endpoint": os.environ.get("SORACOM_ENDPOINT")}) + "\n")
    words = [w for w in rest if not w.startswith("-")]
    if words[:2] == ["subscribers", "list"]:
        query = "&".join(f"{q}={v}" for q, flag in (("limit", "--limit"), ("last_evaluated_key", "--last-evaluated-key"))
                         if (v := option(rest, flag)))
        status, _, doc = call("GET", f"{base}/v1/subscribers" + (f"?{query}" if query else ""), None, key, token)
    elif words[:2] == ["subscribers", "get"]:
        status, _, doc = call("GET", f"{base}/v1/subscribers/{option(rest, '--imsi')}", None, key, token)
    elif words[:1] == ["logout"]:  # generated/cmd/logout.go: POST /v1/auth/logout, prints nothing on 204
        status, _, doc = call("POST", f"{base}/v1/auth/logout", None, key, token)
        if status < 400:
            return 0
    elif words[:2] == ["operator", "get"]:
        status, _, doc = call("GET", f"{base}/v1/operators/{operator_id_of(token)}", None, key, token)
    else:
        raise CliError(f"unknown command {' '.join(words)!r}")
    print(json.dumps(doc, indent="\t"))
    if status >= 400:
        return 1
    return 0


def main() -> int:
    try:
        return run(sys.argv[1:])
    except CliError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


def install(directory: Path) -> Path:
    """Write an executable ``soracom`` in ``directory`` that runs this stand-in."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "soracom"
    script.write_text(f"#!{sys.executable} -S\nimport runpy, sys\nsys.argv[0] = 'soracom'\n"
                      f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')\n")
    script.chmod(0o755)
    return script


if __name__ == "__main__":
    sys.exit(main())
