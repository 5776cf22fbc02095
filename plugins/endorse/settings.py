"""The exchange service's settings: one ``[endorse_exchange]`` TOML table or ``GW_ENDORSE_*`` variables.

Checked like gw's own config: an unknown key is refused with a did-you-mean, a wrong
type or value with one line naming the key. See docs/endorse-exchange.md.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .verify import DEFAULT_KEY_STORE

TABLE = "endorse_exchange"
ENV_PREFIX = "GW_ENDORSE_"
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
DURATION_RANGE = (900, 43200)


class SettingsError(ValueError):
    """A one-line problem with the exchange service's settings."""


@dataclass(frozen=True)
class ExchangeSettings:
    """Every setting of the exchange service (docs/endorse-exchange.md)."""

    role_arn: str
    key_store_url: str = DEFAULT_KEY_STORE
    allowed_imsis: tuple[str, ...] = ()
    soracom_profile: str | None = None
    allowed_groups: tuple[str, ...] = ()
    duration: int = 3600
    region: str = "us-east-1"
    sts_endpoint: str | None = None
    iot_endpoint: str | None = None
    iot_region: str | None = None
    leeway: int = 30
    max_token_bytes: int = 4096
    key_fetches_per_minute: int = 10
    allowed_origins: tuple[str, ...] = ()
    replay_store: str = "memory"
    dynamodb_endpoint: str | None = None
    ca_bundle: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tls_verify(self) -> bool | str:
        return self.ca_bundle or True

    @property
    def replay_table(self) -> str | None:
        return self.replay_store.partition(":")[2] if self.replay_store.startswith("dynamodb:") else None


LISTS = {"allowed_imsis", "allowed_groups", "allowed_origins"}
INTS = {"duration", "leeway", "max_token_bytes", "key_fetches_per_minute"}
KEYS = [f.name for f in fields(ExchangeSettings) if f.name != "extra"]


def _did_you_mean(key: str) -> str:
    close = difflib.get_close_matches(key, KEYS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_url(key: str, value: str, *, schemes: tuple[str, ...] = ("https",)) -> None:
    pattern = "(" + "|".join(schemes) + r")://[^\s/?#]+(/[^\s?#]*)?"
    if not re.fullmatch(pattern, value):
        raise SettingsError(f"{key} must be an {' or '.join(schemes)} URL, not {value[:80]!r}")


def build(values: Mapping[str, Any], where: str) -> ExchangeSettings:
    """Check ``values`` (from ``where``, for messages) and make the settings."""
    data: dict[str, Any] = {}
    for key, value in values.items():
        if key not in KEYS:
            raise SettingsError(f"{where}: unknown setting {key!r}{_did_you_mean(key)}")
        if key in LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise SettingsError(f"{where}: {key} must be a list of non-empty strings")
            data[key] = tuple(value)
        elif key in INTS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingsError(f"{where}: {key} must be an integer, not {type(value).__name__}")
            data[key] = value
        else:
            if not isinstance(value, str) or not value:
                raise SettingsError(f"{where}: {key} must be a non-empty string")
            data[key] = value
    if "role_arn" not in data:
        raise SettingsError(f"{where}: role_arn is required (the IAM role devices get)")
    if not ROLE_ARN.fullmatch(data["role_arn"]):
        raise SettingsError(f"{where}: role_arn must be an IAM role ARN such as arn:aws:iam::123456789012:role/Device")
    low, high = DURATION_RANGE
    if not low <= data.get("duration", 3600) <= high:
        raise SettingsError(f"{where}: duration must be between {low} and {high} seconds")
    if not 0 <= data.get("leeway", 30) <= 300:
        raise SettingsError(f"{where}: leeway must be between 0 and 300 seconds")
    if not 512 <= data.get("max_token_bytes", 4096) <= 65536:
        raise SettingsError(f"{where}: max_token_bytes must be between 512 and 65536")
    if not 1 <= data.get("key_fetches_per_minute", 10) <= 600:
        raise SettingsError(f"{where}: key_fetches_per_minute must be between 1 and 600")
    _check_url(f"{where}: key_store_url", data.get("key_store_url", DEFAULT_KEY_STORE))
    for key in ("sts_endpoint", "dynamodb_endpoint"):
        if key in data:
            _check_url(f"{where}: {key}", data[key], schemes=("https", "http"))
    if "iot_endpoint" in data and not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", data["iot_endpoint"]):
        raise SettingsError(f"{where}: iot_endpoint must be a host name such as abc-ats.iot.us-east-1.amazonaws.com")
    for origin in data.get("allowed_origins", ()):
        if origin != "*" and not re.fullmatch(r"https?://[^\s/?#]+", origin):
            raise SettingsError(f"{where}: allowed_origins entries are origins such as https://app.example.com (no path)")
    for imsi in data.get("allowed_imsis", ()):
        if not re.fullmatch(r"[0-9]{6,15}", imsi):
            raise SettingsError(f"{where}: allowed_imsis entries must be IMSIs (digits), not {imsi[:20]!r}")
    store = data.get("replay_store", "memory")
    if store != "memory" and not re.fullmatch(r"dynamodb:[A-Za-z0-9_.-]{3,255}", store):
        raise SettingsError(f"{where}: replay_store must be \"memory\" or \"dynamodb:<table>\"")
    if not data.get("allowed_imsis") and not data.get("soracom_profile"):
        raise SettingsError(f"{where}: set allowed_imsis, soracom_profile or both (which SIMs may exchange tokens)")
    if data.get("allowed_groups") and not data.get("soracom_profile"):
        raise SettingsError(f"{where}: allowed_groups needs soracom_profile (the group is checked live)")
    if "ca_bundle" in data:
        data["ca_bundle"] = os.path.expanduser(data["ca_bundle"])
        if not os.path.isfile(data["ca_bundle"]):
            raise SettingsError(f"{where}: ca_bundle {data['ca_bundle']} is not a file")
    return ExchangeSettings(**data)


def load_file(path: str) -> ExchangeSettings:
    """Settings from the ``[endorse_exchange]`` table of TOML file ``path``."""
    import tomllib

    try:
        with open(os.path.expanduser(path), "rb") as f:
            document = tomllib.load(f)
    except FileNotFoundError:
        raise SettingsError(f"{path}: no such file") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    for key in document:
        if key != TABLE:
            raise SettingsError(f"{path}: unknown table {key!r}; the file holds one [{TABLE}] table")
    table = document.get(TABLE)
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: no [{TABLE}] table")
    return build(table, f"{path} [{TABLE}]")


def load_env(environ: Mapping[str, str] | None = None) -> ExchangeSettings:
    """Settings from ``GW_ENDORSE_<KEY>`` variables (lists comma-separated): the Lambda front door."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):].lower()
        if not raw.strip():
            continue  # an empty variable is an unset one (templates pass "" for "off")
        if key not in KEYS:
            raise SettingsError(f"environment: unknown variable {name}{_did_you_mean(key)}")
        if key in LISTS:
            values[key] = [item.strip() for item in raw.split(",") if item.strip()]
        elif key in INTS:
            if not re.fullmatch(r"-?\d{1,9}", raw.strip()):
                raise SettingsError(f"environment: {name} must be an integer")
            values[key] = int(raw)
        else:
            values[key] = raw.strip()
    return build(values, "environment")
