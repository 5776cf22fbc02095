"""1Password CLI (``op``) as a secret backend and as a credential source.

* Secret schemes: ``op://vault/item/field`` (``op read``) and ``op-otp://vault/item``
  (the item's current TOTP code, ``op item get ITEM --vault V --otp``).
* Step type ``onepassword``: reads one item (``op item get ... --format json``) and maps
  fields, by label or id (never by position), into SORACOM or AWS credentials.

``op`` always runs with an argv list, stdin = /dev/null (it may ask the desktop app
for approval; it never gets our terminal), a timeout, and its stderr turned into
one clear line. The executable is the step option ``op_path``, else ``GW_OP_PATH``,
else ``op``. One-time codes go through ``ctx.one_time_code``: never handed out twice
for the same account (the SORACOM user or root email the code is for, whichever
source - vault seed or 1Password item - it came from); a used step waits for the next.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import TYPE_CHECKING, Any

from gw.plugin import (
    AWS,
    SORACOM_CREDENTIALS,
    EnvironmentVariable,
    Option,
    SecretError,
    SecretScheme,
    StepError,
    StepType,
    hookimpl,
)

if TYPE_CHECKING:
    from gw.plugin import Credential, StepContext

DEFAULT_TIMEOUT = 60

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
            check=False,
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


# -- one-time codes -------------------------------------------------------------------
def otp_period(field: dict[str, Any]) -> int:
    """The time step of a 1Password OTP field: ``period`` of its otpauth:// URI, else 30 s."""
    from urllib.parse import parse_qs, urlsplit

    value = field.get("value")
    if isinstance(value, str) and value.startswith("otpauth://"):
        try:
            period = parse_qs(urlsplit(value).query).get("period", ["30"])[0]
            if period.isdigit() and 1 <= int(period) <= 300:
                return int(period)
        except ValueError:
            pass
    return 30


def soracom_account(values: dict[str, str]) -> str | None:
    """The account a SORACOM one-time code is for, named as the core names the account of
    an option that declares one (``account:<value>``: soracom-keys' ``mfa_code`` declares
    ``email``); a SAM user ``account:<operator_id>/<username>``."""
    if values.get("email"):
        return f"account:{values['email']}"
    if values.get("operator_id") and values.get("username"):
        return f"account:{values['operator_id']}/{values['username']}"
    return None


def fresh_otp(ctx: StepContext, account: str, first: tuple[float, float, str, Any], fetch: Any,
              period: int) -> tuple[str, Any]:
    """A code for ``account`` that gw never handed out before (``ctx.one_time_code``).

    ``first`` is ``(started, ended, code, extra)`` of a read already made; it is used
    only when that read lay wholly inside the time step gw picks, otherwise
    ``fetch() -> (code, extra)`` reads again (after any wait for the next step). The
    record of used codes is keyed on the account, so a vault seed and a 1Password item
    for one account share it.
    """
    latest: dict[str, Any] = {"span": (first[0], first[1]), "code": first[2], "extra": first[3]}

    def produce(t: float) -> str:
        step = int(t // period)
        while not all(int(moment // period) == step for moment in latest["span"]):
            started = time.time()
            code, extra = fetch()
            latest.update(span=(started, time.time()), code=code, extra=extra)
            if int(started // period) > step:  # 1Password is slower than the time step
                raise StepError("1Password took longer than a one-time code's time step; retry")
        return str(latest["code"])

    code = ctx.one_time_code(account, produce, period=period, label="1Password one-time code")
    return code, latest["extra"]


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

    def fetch() -> tuple[str, int]:
        doc = _read_item({"item": item, "vault": vault})
        field = _otp_field(doc, True, item)
        return _code_of(field, item), otp_period(field)

    started = time.time()
    code, period = fetch()
    span = (started, time.time())
    # The account is the one the option that holds this reference names (the core sets it);
    # without one, the 1Password item stands for the account.
    code, _ = fresh_otp(ctx, f"op-item:{vault}/{item}", (*span, code, period), fetch, period)
    ctx.add_secret(code)
    return code


@hookimpl
def gw_environment() -> list[EnvironmentVariable]:
    return [EnvironmentVariable("GW_OP_PATH", "the 1Password CLI (default: op on PATH)"),
            EnvironmentVariable("GW_OP_TIMEOUT", f"seconds an op call may take (default {DEFAULT_TIMEOUT})")]


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


def _authkey_with_otp(options: dict[str, Any]) -> bool:
    fields = options.get("fields")
    return isinstance(fields, dict) and "auth_key_id" in fields and bool(options.get("otp"))


def _advise(options: dict[str, Any]) -> list[str]:
    """``gw check``'s warning: an AuthKey item's one-time code is never read (nothing spent)."""
    if _authkey_with_otp(options):
        return ["an AuthKey sign-in takes no MFA code: otp is ignored (no one-time code is read); remove it"]
    return []


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


def _otp_field(doc: dict[str, Any], otp: Any, item: str) -> dict[str, Any]:
    fields = doc.get("fields") or []
    if isinstance(otp, str):
        return _pick_field(fields, otp, item)
    candidates = [f for f in fields if f.get("type") == "OTP"]
    if len(candidates) != 1:
        raise StepError(
            f"1Password item {item!r} has {'no' if not candidates else 'several'} one-time password fields"
            + ("" if not candidates else ": set otp to the field's label or id")
        )
    return candidates[0]


def _code_of(field: dict[str, Any], item: str) -> str:
    code = field.get("totp")
    if not isinstance(code, str) or not code.isdigit():
        raise StepError(f"1Password field {field.get('label')!r} of item {item!r} carries no current TOTP code")
    return code


def _field_values(ctx: StepContext, doc: dict[str, Any], mapping: dict[str, str], item: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, selector in mapping.items():
        field = _pick_field(doc.get("fields") or [], selector, item)
        value = field.get("value")
        if not isinstance(value, str) or not value:
            raise StepError(f"1Password field {selector!r} of item {item!r} is empty")
        if name in SECRET_FIELD_NAMES or field.get("type") == "CONCEALED":
            ctx.add_secret(value)
        values[name] = value
    return values


def _run(ctx: StepContext, options: dict[str, Any], upstream: Credential | None) -> Credential:
    from gw.plugin import AwsCredentials, SoracomCredentials

    item = options["item"]
    mapping: dict[str, str] = options["fields"]
    otp = options.get("otp") if not _authkey_with_otp(options) else None  # AuthKey: no code spent

    with ctx.status(f"reading {item} from 1Password"):
        started = time.time()
        doc = _read_item(options)
        span = (started, time.time())
    values = _field_values(ctx, doc, mapping, item)
    code = None
    if otp:
        field = _otp_field(doc, otp, item)
        period = otp_period(field)

        def fetch() -> tuple[str, dict[str, Any]]:
            again = _read_item(options)
            if _field_values(ctx, again, mapping, item) != values:
                raise StepError(f"1Password item {item!r} changed while gw waited for its next one-time code")
            return _code_of(_otp_field(again, otp, item), item), again

        account = soracom_account(values) or f"op-item:{options.get('vault') or ''}/{item}"
        code, _ = fresh_otp(ctx, account, (*span, _code_of(field, item), doc), fetch, period)
        ctx.add_secret(code)

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
            advise=_advise,
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
