"""The token cache gw shares with the AWS CLI and every SDK (docs/protocols.md §11).

Same place, name and fields as botocore (boto/botocore ``botocore/utils.py``:
``SSOTokenLoader`` names the file ``sha1(session name or start URL).json`` in
``~/.aws/sso/cache``; ``botocore/tokens.py``: ``SSOTokenProvider`` reads ``startUrl``,
``region``, ``accessToken``, ``expiresAt``, ``refreshToken``, ``clientId``, ``clientSecret``
and ``registrationExpiresAt`` and compares the times with an aware UTC time, so they are
written as ``%Y-%m-%dT%H:%M:%SZ``). Files are written atomically, 0600, in a 0700 directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from gw.plugin import atomic_write, private_dir

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
FIELDS = ("startUrl", "region", "accessToken", "expiresAt", "refreshToken", "clientId", "clientSecret",
          "registrationExpiresAt")
MAX_SIZE = 64 * 1024


@dataclass
class Token:
    """One cached sign-in: the access token and what refreshes it."""

    start_url: str
    region: str
    access_token: str
    expires_at: float
    refresh_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    registration_expires_at: float | None = None

    def seconds_left(self, now: float) -> float:
        return self.expires_at - now

    def refreshable(self, now: float) -> bool:
        return bool(self.refresh_token and self.client_id and self.client_secret
                    and self.registration_expires_at and self.registration_expires_at > now)

    def secrets(self) -> tuple[str | None, ...]:
        return self.access_token, self.refresh_token, self.client_secret

    def to_json(self) -> bytes:
        doc: dict[str, str] = {"startUrl": self.start_url, "region": self.region, "accessToken": self.access_token,
                               "expiresAt": format_time(self.expires_at)}
        if self.refresh_token and self.client_id and self.client_secret and self.registration_expires_at:
            doc.update(refreshToken=self.refresh_token, clientId=self.client_id, clientSecret=self.client_secret,
                       registrationExpiresAt=format_time(self.registration_expires_at))
        return json.dumps(doc, indent=2).encode()


def format_time(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime(TIME_FORMAT)


def parse_time(value: object) -> float | None:
    """An ISO 8601 time as botocore writes it (``Z`` or an offset); None when unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:  # botocore would fail on it; read it as UTC
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def cache_dir() -> str:
    return os.path.join(os.path.expanduser("~"), ".aws", "sso", "cache")


def cache_path(key: str) -> str:
    """``key`` is the session name (``sso-session`` profiles) or the start URL (legacy ones)."""
    return os.path.join(cache_dir(), hashlib.sha1(key.encode("utf-8")).hexdigest() + ".json")


def load(key: str) -> Token | None:
    """The cached token for ``key``, or None when there is none or it cannot be read."""
    try:
        fd = os.open(cache_path(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            doc = json.loads(f.read(MAX_SIZE + 1)[:MAX_SIZE].decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None
    expires = parse_time(doc.get("expiresAt"))
    if not isinstance(doc.get("accessToken"), str) or expires is None:
        return None

    def text(name: str) -> str | None:
        value = doc.get(name)
        return value if isinstance(value, str) and value else None

    return Token(start_url=text("startUrl") or "", region=text("region") or "", access_token=doc["accessToken"],
                 expires_at=expires, refresh_token=text("refreshToken"), client_id=text("clientId"),
                 client_secret=text("clientSecret"),
                 registration_expires_at=parse_time(doc.get("registrationExpiresAt")))


def save(key: str, token: Token) -> str:
    """Write the token file atomically, 0600 (its directory 0700); returns the path."""
    private_dir(cache_dir())
    path = cache_path(key)
    atomic_write(path, token.to_json(), 0o600)
    return path


def remove(key: str) -> bool:
    try:
        os.unlink(cache_path(key))
    except FileNotFoundError:
        return False
    return True
