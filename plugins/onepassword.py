"""1Password CLI (``op``) as a secret backend and as a credential source.

* Secret schemes: ``op://vault/item/field`` (``op read``) and ``op-otp://vault/item``
  (the item's current TOTP code, ``op item get ITEM --vault V --otp``).
* Step type ``onepassword``: reads one item (``op item get ... --format json``) and maps
  fields, by label or id (never by position), into SORACOM or AWS credentials.

``op`` always runs with an argv list, stdin = /dev/null (it may ask the desktop app
for approval; it never gets our terminal), a timeout, and its stderr turned into
one clear line. The executable is the step option ``op_path``, else ``GW_OP_PATH``,
else ``op``. One-time codes are never handed out twice: a code equal to the last
one used for the same item waits for the next time step.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from typing import TYPE_CHECKING, Any

from gw.plugin import hookimpl
from gw.plugin import AWS, SORACOM_CREDENTIALS
from gw.plugin import SecretError, StepError
from gw.plugin import Option, SecretScheme, StepType

if TYPE_CHECKING:
    from gw.plugin import Credential
    from gw.plugin import StepContext

DEFAULT_TIMEOUT = 60
OTP_WAIT_LIMIT = 65.0  # longer than one 60 s time step

SORACOM_FIELD_SETS = (("auth_key_id", "auth_key"), ("email", "password"), ("operator_id", "username", "password"))
AWS_FIELDS = ("access_key_id", "secret_access_key")
AWS_OPTIONAL_FIELDS = ("session_token",)
SECRET_FIELD_NAMES = {"auth_key", "password", "secret_access_key", "session_token"}

_STAMP = re.compile(r"^\[ERROR\]\s+\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\s*")


# -- running op ------------------------------------------------------------------
def op_executable(option: str | None = None) -> str:
    return option or os.environ.get("GW_OP_PATH") or "op"


def _timeout_from_env() -> float:
    try:
        return float(os.environ.get("GW_OP_TIMEOUT") or DEFAULT_TIMEOUT)
    except ValueError:
        return DEFAULT_TIMEOUT


def _describe_failure(stderr: str, what: str) -> str:
    """Turn op's stderr into one line that says what went wrong."""
    lines = [_STAMP.sub("", line).strip() for line in stderr.strip().splitlines() if line.strip()]
    text = lines[-1] if lines else ""
    low = " ".join(lines).lower()
    if re.search(r"not currently signed in|signed out|no accounts configured|session expired|"
                 r"authorization (?:timeout|prompt dismissed)|account is not signed in", low):
        return f"1Password CLI is signed out ({what}): run 'op signin' or unlock the 1Password app, then retry"
    if re.search(r"isn't a vault", low):
        return f"1Password vault not found ({what})"
    if re.search(r"isn't an item|item not found|no item found", low):
        return f"1Password item not found ({what})"
    if re.search(r"more than one item matches", low):
        return f"several 1Password items match ({what}): use the item's ID"
    if re.search(r"isn't a field|field .*(?:does not exist|not found)|cannot be found", low):
        return f"1Password field missing ({what})"
    if re.search(r"one-time password", low):
        return f"1Password item has no one-time password field ({what})"
    if len(text) > 200:
        text = text[:200] + "…"
    return f"1Password CLI failed ({what}): {text or 'no error message'}"


def run_op(argv: list[str], *, what: str, executable: str | None = None, timeout: float | None = None) -> str:
    """Run ``op`` with ``argv`` and return its stdout; raise StepError with one line."""
    import subprocess

    exe = op_executable(executable)
    limit = timeout if timeout is not None else _timeout_from_env()
    try:
        proc = subprocess.run(
            [exe, *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",  # op's output is not always UTF-8 (found by tests/core/test_properties.py)
            timeout=limit,
        )
    except FileNotFoundError:
        raise StepError(f"1Password CLI not found: {exe!r} (install op or set GW_OP_PATH)") from None
    except PermissionError:
        raise StepError(f"1Password CLI {exe!r} is not executable") from None
    except subprocess.TimeoutExpired:
        raise StepError(
            f"1Password CLI timed out after {limit:g} s ({what}); is the 1Password app waiting for approval?"
        ) from None
    if proc.returncode != 0:
        raise StepError(_describe_failure(proc.stderr, what))
    return proc.stdout


# -- no-reuse of one-time codes ---------------------------------------------------
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fresh_otp(ctx: StepContext, key: str, fetch: Any) -> tuple[str, Any]:
    """Call ``fetch() -> (code, extra)`` until it yields a code other than the last one used for ``key``.

    A salted hash of the last code sits in ``<state>/onepassword/``, guarded by gw's
    bounded file lock so parallel gw processes wanting a code from the same item take turns.
    """
    from gw.plugin import atomic_write, private_dir as ensure_dir

    directory = ensure_dir(str(ctx.state_dir / "onepassword"))
    ident = _digest("gw-op-otp\0" + key)[:32]
    record = os.path.join(directory, f"{ident}.last")
    with ctx.lock(f"otp-{ident}", OTP_WAIT_LIMIT * 2):
        try:
            with open(record) as f:
                last = f.read().strip()
        except OSError:
            last = ""
        deadline = time.monotonic() + OTP_WAIT_LIMIT
        code, extra = fetch()
        waited = False
        while last and _digest(ident + code) == last:
            if time.monotonic() > deadline:
                raise StepError("1Password kept returning an already used one-time code")
            if not waited:
                ctx.info("waiting for the next one-time code (the current one was already used)")
                waited = True
            time.sleep(1.0)
            code, extra = fetch()
        atomic_write(record, (_digest(ident + code) + "\n").encode())
        return code, extra


# -- secret schemes -------------------------------------------------------------------
def _split_otp_ref(ref: str) -> tuple[str, str]:
    rest = ref[len("op-otp://"):]
    vault, sep, item = rest.partition("/")
    if not sep or not vault or not item or "/" in item:
        raise SecretError("an op-otp reference must look like op-otp://VAULT/ITEM")
    return vault, item


def resolve_op_read(ctx: StepContext, ref: str) -> str:
    body = ref[len("op://"):]
    if body.count("/") < 2 or any(not part for part in body.split("?")[0].split("/")):
        raise SecretError("an op reference must look like op://VAULT/ITEM/FIELD")
    value = run_op(["read", "--no-newline", ref], what=f"reading {ref.split('?')[0]}").rstrip("\n")
    if not value:
        raise StepError(f"1Password field is empty ({ref.split('?')[0]})")
    ctx.add_secret(value)
    return value


def resolve_op_otp(ctx: StepContext, ref: str) -> str:
    vault, item = _split_otp_ref(ref)
    what = f"one-time code of {vault}/{item}"

    def fetch() -> tuple[str, None]:
        code = run_op(["item", "get", item, "--vault", vault, "--otp"], what=what).strip()
        if not code.isdigit():
            raise StepError(f"1Password returned no one-time code ({what})")
        return code, None

    code, _ = fresh_otp(ctx, f"{vault}/{item}", fetch)
    ctx.add_secret(code)
    return code


@hookimpl
def gw_secret_schemes() -> list[SecretScheme]:
    return [
        SecretScheme("op-otp://", resolve_op_otp, help="current TOTP code of a 1Password item: op-otp://VAULT/ITEM"),
        SecretScheme("op://", resolve_op_read, help="a 1Password secret reference: op://VAULT/ITEM/FIELD"),
    ]


# -- the onepassword step -----------------------------------------------------------------
def _produces(options: dict[str, Any]) -> str:
    return options.get("produces") or SORACOM_CREDENTIALS


def _check(options: dict[str, Any]) -> None:
    fields = options.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise ValueError("onepassword needs a fields table, e.g. fields = { username = \"username\" }")
    for key, value in fields.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"fields.{key} must be a field label or id (a non-empty string)")
    names = set(fields)
    kind = _produces(options)
    if kind == AWS:
        unknown = names - set(AWS_FIELDS) - set(AWS_OPTIONAL_FIELDS)
        if unknown:
            raise ValueError(f"unknown field names for aws-credentials: {', '.join(sorted(unknown))}")
        missing = [n for n in AWS_FIELDS if n not in names]
        if missing:
            raise ValueError(f"aws-credentials need fields {', '.join(missing)}")
        if options.get("otp"):
            raise ValueError("otp is only for soracom-credentials")
        return
    matching = [s for s in SORACOM_FIELD_SETS if set(s) == names]
    if len(matching) != 1:
        raise ValueError(
            "soracom-credentials need exactly one of: fields auth_key_id + auth_key; "
            "email + password; operator_id + username + password"
        )


def _pick_field(fields: list[dict[str, Any]], selector: str, item: str) -> dict[str, Any]:
    by_id = [f for f in fields if f.get("id") == selector]
    if len(by_id) == 1:
        return by_id[0]
    by_label = [f for f in fields if f.get("label") == selector]
    if not by_label:
        by_label = [f for f in fields if str(f.get("label", "")).lower() == selector.lower()]
    if len(by_label) == 1:
        return by_label[0]
    if by_label:
        raise StepError(f"1Password item {item!r} has several fields labelled {selector!r}: use the field id")
    raise StepError(f"1Password field missing: item {item!r} has no field {selector!r}")


def _read_item(options: dict[str, Any]) -> dict[str, Any]:
    item = options["item"]
    argv = ["item", "get", item, "--format", "json"]
    if options.get("vault"):
        argv += ["--vault", options["vault"]]
    where = f"{options['vault']}/{item}" if options.get("vault") else item
    out = run_op(argv, what=f"item {where}", executable=options.get("op_path"), timeout=options.get("timeout"))
    try:
        doc = json.loads(out)
    except ValueError:
        raise StepError(f"1Password CLI printed something that is not JSON (item {where})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("fields", []), list):
        raise StepError(f"1Password item {where} has an unexpected shape")
    return doc


def _otp_from(doc: dict[str, Any], otp: Any, item: str) -> str:
    fields = doc.get("fields") or []
    if isinstance(otp, str):
        field = _pick_field(fields, otp, item)
    else:
        candidates = [f for f in fields if f.get("type") == "OTP"]
        if len(candidates) != 1:
            raise StepError(
                f"1Password item {item!r} has {'no' if not candidates else 'several'} one-time password fields"
                + ("" if not candidates else ": set otp to the field's label or id")
            )
        field = candidates[0]
    code = field.get("totp")
    if not isinstance(code, str) or not code.isdigit():
        raise StepError(f"1Password field {field.get('label')!r} of item {item!r} carries no current TOTP code")
    return code


def _run(ctx: StepContext, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from gw.plugin import AwsCredentials, SoracomCredentials

    item = options["item"]
    mapping: dict[str, str] = options["fields"]
    otp = options.get("otp")

    if otp:
        def fetch() -> tuple[str, dict[str, Any]]:
            doc = _read_item(options)
            return _otp_from(doc, otp, item), doc

        key = f"{options.get('vault') or ''}/{item}"
        with ctx.status(f"reading {item} from 1Password"):
            code, doc = fresh_otp(ctx, key, fetch)
        ctx.add_secret(code)
    else:
        with ctx.status(f"reading {item} from 1Password"):
            doc = _read_item(options)
        code = None

    values: dict[str, str] = {}
    for name, selector in mapping.items():
        field = _pick_field(doc.get("fields") or [], selector, item)
        value = field.get("value")
        if not isinstance(value, str) or not value:
            raise StepError(f"1Password field {selector!r} of item {item!r} is empty")
        if name in SECRET_FIELD_NAMES or field.get("type") == "CONCEALED":
            ctx.add_secret(value)
        values[name] = value

    if _produces(options) == AWS:
        return AwsCredentials(
            access_key_id=values["access_key_id"],
            secret_access_key=values["secret_access_key"],
            session_token=values.get("session_token"),
            origin="long-term" if not values.get("session_token") else "onepassword",
            region=options.get("region"),
        )
    return SoracomCredentials(
        auth_key_id=values.get("auth_key_id"),
        auth_key=values.get("auth_key"),
        email=values.get("email"),
        password=values.get("password"),
        operator_id=values.get("operator_id"),
        username=values.get("username"),
        mfa_code=code,
        coverage=options.get("coverage") or "jp",
    )


@hookimpl
def gw_step_types() -> list[StepType]:
    return [
        StepType(
            name="onepassword",
            run=_run,
            produces=_produces,
            consumes=(),
            check=_check,
            options={
                "item": Option(str, required=True, help="item title or id"),
                "vault": Option(str, help="vault name or id"),
                "fields": Option(dict, required=True, help="credential field -> 1Password field label or id"),
                "otp": Option((bool, str), default=False, help="also take the item's TOTP code (true, or the OTP field's label/id)"),
                "produces": Option(str, default=SORACOM_CREDENTIALS, choices=(SORACOM_CREDENTIALS, AWS)),
                "coverage": Option(str, default="jp", choices=("jp", "g"), help="SORACOM coverage"),
                "region": Option(str, help="AWS region to attach (aws-credentials)"),
                "timeout": Option(int, default=DEFAULT_TIMEOUT, help="seconds to wait for op"),
                "op_path": Option(str, help="the op executable (default: $GW_OP_PATH or op)"),
            },
            help="Read SORACOM or AWS credentials from one 1Password item with the op CLI",
        )
    ]
