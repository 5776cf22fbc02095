"""A stand-in for the 1Password CLI (``op``), answering from a JSON fixture.

Supported (protocols.md section 4)::

    op item get ITEM [--vault V] --format json   # the item, fields with id/label/type/value
    op item get ITEM [--vault V] --otp           # the current TOTP code
    op read [--no-newline] op://vault/item[/section]/field[?attribute=otp]
    op whoami / op --version

Fixture (path in ``GW_OP_FIXTURE``)::

    {"signed_out": false,
     "items": [{"id": "...", "title": "SORACOM", "vault": "Private", "category": "LOGIN",
                "fields": [{"id": "password", "label": "password", "type": "CONCEALED", "value": "..."},
                           {"id": "totp1", "label": "one-time password", "type": "OTP",
                            "value": "<base32 seed or otpauth:// URI>", "period": 30, "digits": 6}]}]}

OTP fields are printed with the seed as an ``otpauth://`` URI in ``value`` and the
current code (computed now with pyotp) in ``totp``, like the real ``op``.
Failures print ``[ERROR] YYYY/MM/DD hh:mm:ss <message>`` on stderr and exit 1.
``GW_OP_SIGNED_OUT=1`` (or the fixture flag) makes every command fail as signed out;
``GW_OP_DELAY=<seconds>`` sleeps first (for timeout tests).

Run it as ``python -m gw_emulators.op_cli``; :func:`install_op_shim` writes an
executable ``op`` script that does so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

VERSION = "2.30.3"


class OpFailure(Exception):
    """An error the real op would print as ``[ERROR] <time> <message>``."""


def install_op_shim(directory: Path | str, fixture_path: Path | str) -> Path:
    """Write an executable ``op`` in ``directory`` that runs this emulator.

    ``GW_OP_FIXTURE`` defaults to ``fixture_path`` but an explicit environment
    value wins, so a test can swap fixtures per call.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "op"
    script.write_text(
        "#!/bin/sh\n"
        f': "${{GW_OP_FIXTURE:={shlex.quote(str(Path(fixture_path).resolve()))}}}"\n'
        "export GW_OP_FIXTURE\n"
        f"exec {shlex.quote(sys.executable)} -m gw_emulators.op_cli \"$@\"\n"
    )
    script.chmod(0o755)
    return script


# -- fixture model ------------------------------------------------------------
def _load_fixture() -> dict[str, Any]:
    path = os.environ.get("GW_OP_FIXTURE")
    if not path:
        raise OpFailure("No accounts configured for use with 1Password CLI.")
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise OpFailure(f"could not read the emulator fixture: {exc}") from None


def _item_id(item: dict[str, Any]) -> str:
    return item.get("id") or hashlib.sha1(item["title"].encode()).hexdigest()[:26]


def _vault_doc(name: str) -> dict[str, str]:
    return {"id": hashlib.sha1(name.encode()).hexdigest()[:26], "name": name}


def _totp(field: dict[str, Any]) -> Any:
    import pyotp

    value = str(field.get("value", ""))
    if value.startswith("otpauth://"):
        return pyotp.parse_uri(value)
    return pyotp.TOTP(value, digits=int(field.get("digits", 6)), interval=int(field.get("period", 30)))


def _otp_uri(field: dict[str, Any], item: dict[str, Any]) -> str:
    value = str(field.get("value", ""))
    if value.startswith("otpauth://"):
        return value
    period, digits = int(field.get("period", 30)), int(field.get("digits", 6))
    return f"otpauth://totp/{quote(item['title'])}?secret={value}&period={period}&digits={digits}"


def _render_field(field: dict[str, Any], item: dict[str, Any], vault: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": field.get("id") or field.get("label", "")}
    doc["type"] = field.get("type", "STRING")
    if field.get("purpose"):
        doc["purpose"] = field["purpose"]
    doc["label"] = field.get("label", doc["id"])
    if doc["type"] == "OTP":
        doc["value"] = _otp_uri(field, item)
        doc["totp"] = _totp(field).now()
    elif "value" in field:
        doc["value"] = field["value"]
    doc["reference"] = f"op://{vault}/{item['title']}/{doc['label']}"
    return doc


def _render_item(item: dict[str, Any]) -> dict[str, Any]:
    vault = item.get("vault", "Private")
    return {
        "id": _item_id(item),
        "title": item["title"],
        "version": item.get("version", 1),
        "vault": _vault_doc(vault),
        "category": item.get("category", "LOGIN"),
        "last_edited_by": "EMULATORUSER0000000000000",
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z",
        "fields": [_render_field(f, item, vault) for f in item.get("fields", [])],
    }


def _find_item(fixture: dict[str, Any], name: str, vault: str | None) -> dict[str, Any]:
    items = fixture.get("items", [])
    if vault is not None:
        vaults = {i.get("vault", "Private") for i in items} | set(fixture.get("vaults", []))
        known = {v.lower(): v for v in vaults} | {_vault_doc(v)["id"]: v for v in vaults}
        if vault.lower() not in known and vault not in known:
            raise OpFailure(f'"{vault}" isn\'t a vault in this account. Specify the vault with its ID or name.')
        vault = known.get(vault) or known[vault.lower()]
        items = [i for i in items if i.get("vault", "Private") == vault]
    matches = [i for i in items if _item_id(i) == name or i["title"].lower() == name.lower()]
    if not matches:
        where = f' in the "{vault}" vault' if vault else ""
        raise OpFailure(f'"{name}" isn\'t an item{where}. Specify the item with its UUID, name, or domain.')
    if len(matches) > 1:
        raise OpFailure(f'More than one item matches "{name}". Try again and specify the item by its ID')
    return matches[0]


# -- commands -------------------------------------------------------------------
def _item_get(fixture: dict[str, Any], args: list[str], flags: dict[str, Any]) -> str:
    if not args:
        raise OpFailure('expected exactly one item as an argument. Run "op item get --help" for usage.')
    item = _find_item(fixture, args[0], flags.get("vault"))
    if flags.get("otp"):
        otp = [f for f in item.get("fields", []) if f.get("type") == "OTP"]
        if not otp:
            raise OpFailure(f"item \"{item['title']}\" doesn't have a one-time password field")
        return _totp(otp[0]).now() + "\n"
    if flags.get("format") == "json":
        return json.dumps(_render_item(item), indent=2) + "\n"
    rendered = _render_item(item)
    lines = [f"ID:          {rendered['id']}", f"Title:       {rendered['title']}", "Fields:"]
    for f in rendered["fields"]:
        lines.append(f"  {f['label']}:    " + ("[use 'op item get --reveal' to reveal]" if f["type"] == "CONCEALED" else str(f.get("value", ""))))
    return "\n".join(lines) + "\n"


def _read(fixture: dict[str, Any], args: list[str], flags: dict[str, Any]) -> str:
    if not args:
        raise OpFailure('expected exactly one secret reference. Run "op read --help" for usage.')
    ref = args[0]
    bad = f"could not read secret '{ref}': invalid secret reference"
    if not ref.startswith("op://"):
        raise OpFailure(bad + ": must start with op://")
    path, _, query = ref[5:].partition("?")
    parts = [unquote(p) for p in path.split("/")]
    if len(parts) not in (3, 4) or not all(parts):
        raise OpFailure(bad)
    vault, name, field_name = parts[0], parts[1], parts[-1]
    try:
        item = _find_item(fixture, name, vault)
    except OpFailure as exc:
        raise OpFailure(f"could not read secret '{ref}': {exc}") from None
    fields = [f for f in item.get("fields", []) if field_name in (f.get("id"), f.get("label"))]
    if not fields:
        raise OpFailure(
            f"could not read secret '{ref}': error getting field: "
            f'"{field_name}" isn\'t a field in the "{item["title"]}" item'
        )
    field = fields[0]
    attribute = dict(p.partition("=")[::2] for p in query.split("&") if p).get("attribute")
    if field.get("type") == "OTP":
        value = _totp(field).now() if attribute in ("otp", "totp") else _otp_uri(field, item)
    else:
        value = str(field.get("value", ""))
    return value if flags.get("no-newline") else value + "\n"


_VALUE_FLAGS = {"vault", "format", "account", "session", "config", "fields", "encoding", "out-file", "cache"}


def _parse(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    positional: list[str] = []
    flags: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name in _VALUE_FLAGS and not eq:
                i += 1
                if i >= len(argv):
                    raise OpFailure(f"flag needs an argument: --{name}")
                value = argv[i]
            flags[name] = value if (eq or name in _VALUE_FLAGS) else True
        elif arg == "-n":
            flags["no-newline"] = True
        else:
            positional.append(arg)
        i += 1
    return positional, flags


def run(argv: list[str]) -> tuple[int, str, str]:
    """Run one emulated ``op`` invocation: (exit status, stdout, stderr)."""
    delay = float(os.environ.get("GW_OP_DELAY") or 0)
    if delay:
        time.sleep(delay)
    try:
        positional, flags = _parse(argv)
        if flags.get("version"):
            return 0, VERSION + "\n", ""
        fixture = _load_fixture()
        if fixture.get("signed_out") or os.environ.get("GW_OP_SIGNED_OUT") in ("1", "true", "yes"):
            raise OpFailure("You are not currently signed in. Please run `op signin --help` for instructions")
        if positional[:2] == ["item", "get"]:
            return 0, _item_get(fixture, positional[2:], flags), ""
        if positional[:1] == ["read"]:
            return 0, _read(fixture, positional[1:], flags), ""
        if positional[:1] == ["whoami"]:
            return 0, "URL:        https://my.1password.com\nEmail:      emulator@example.com\n", ""
        raise OpFailure(f'unknown command "{" ".join(positional[:2])}" for "op"')
    except OpFailure as exc:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S")
        return 1, "", f"[ERROR] {stamp} {exc}\n"


def main(argv: list[str] | None = None) -> int:
    status, out, err = run(list(sys.argv[1:] if argv is None else argv))
    sys.stdout.write(out)
    sys.stderr.write(err)
    return status


if __name__ == "__main__":
    sys.exit(main())
