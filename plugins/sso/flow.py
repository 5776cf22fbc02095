"""An access token for an SSO session, and role credentials with it.

The token comes from the AWS CLI's cache file when it has more than 15 minutes left
(botocore's refresh window, ``botocore/tokens.py`` ``SSOTokenProvider``); else it is
refreshed with the refresh token (no browser); else a person signs in. All of that runs
under one lock per session, so parallel cold calls make one sign-in and one CreateToken.
Role credentials are fetched under one lock per role and kept in gw's encrypted state for a
short while, so a burst of profiles that use one role makes one GetRoleCredentials.
"""

from __future__ import annotations

import difflib
import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from gw.plugin import AwsCredentials, StepError, utcnow

from . import tokens
from .oidc import MAX_LIFETIME, OidcError, PortalError, SsoSession, create_token, paginate, portal_call
from .signin import SIGNIN_TIMEOUT, sign_in_device, sign_in_pkce

REFRESH_WINDOW = 15 * 60  # botocore refreshes a token with less than this left
ROLE_MARGIN = 16 * 60  # gw's cache margin: SDKs never get credentials they consider due
#: Role credentials just fetched are shared for this long by the profiles using the same role
#: (a parallel burst makes one GetRoleCredentials); afterwards each profile's own cache entry
#: serves it, and ``--refresh`` / ``--min-ttl`` fetch anew.
SHARE_WINDOW = 120


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def _from_answer(session: SsoSession, sign_in: dict[str, Any], old: tokens.Token | None) -> tokens.Token:
    answer, client = sign_in["answer"], sign_in["client"]
    refresh = answer.get("refreshToken") if isinstance(answer.get("refreshToken"), str) else None
    expires = client.get("clientSecretExpiresAt")
    return tokens.Token(
        start_url=session.start_url, region=session.region, access_token=answer["accessToken"],
        expires_at=time.time() + answer["expiresIn"],
        refresh_token=refresh or (old.refresh_token if old else None),
        client_id=client["clientId"], client_secret=client["clientSecret"],
        registration_expires_at=float(expires) if isinstance(expires, int) else None)


def sign_in_again(session: SsoSession) -> StepError:
    return StepError(f"the SSO session for {session.start_url} has ended; sign in again: {session.login_hint}")


def access_token(ctx: Any, session: SsoSession, *, login: bool = False, use_device_code: bool = False,
                 force_refresh: bool = False, sign_in: bool = True) -> tokens.Token:
    """A usable token: cached, refreshed, or from a new sign-in (``login=True`` always signs in)."""
    with ctx.lock("token." + _digest(session.cache_key), timeout=SIGNIN_TIMEOUT):
        now = time.time()
        token = None if login else tokens.load(session.cache_key)
        if token is not None and token.start_url and token.start_url != session.start_url:
            token = None  # the file is another start URL's (the session was re-pointed)
        if token is not None:
            for value in token.secrets():
                ctx.add_secret(value)
            if token.seconds_left(now) > REFRESH_WINDOW and not force_refresh:
                return token
            if token.refreshable(now):
                client = {"clientId": token.client_id, "clientSecret": token.client_secret,
                          "clientSecretExpiresAt": int(token.registration_expires_at or 0)}
                try:
                    with ctx.status(f"Refreshing the SSO token for {session.start_url} ..."):
                        answer = create_token(ctx, session, client, grantType="refresh_token",
                                              refreshToken=token.refresh_token or "")
                except OidcError:
                    if token.seconds_left(now) > 60 and not force_refresh:
                        return token
                    raise sign_in_again(session) from None
                fresh = _from_answer(session, {"answer": answer, "client": client}, token)
                tokens.save(session.cache_key, fresh)
                return fresh
            if token.seconds_left(now) > 60 and not force_refresh:
                return token
            if force_refresh:
                raise sign_in_again(session)
        if not sign_in:
            raise sign_in_again(session)
        result = None if use_device_code else sign_in_pkce(ctx, session)
        if result is None:
            result = sign_in_device(ctx, session)
        fresh = _from_answer(session, result, token)
        tokens.save(session.cache_key, fresh)
        return fresh


def role_credentials(ctx: Any, session: SsoSession, account_id: str, role_name: str) -> AwsCredentials:
    """GetRoleCredentials, shared by the profiles using this role that ask within ``SHARE_WINDOW``."""
    name = "role." + _digest(session.cache_key, session.start_url, session.portal, account_id, role_name)
    with ctx.lock(name, timeout=SIGNIN_TIMEOUT):
        saved = ctx.state_get(name)
        if saved and isinstance(saved.get("accessKeyId"), str):
            ctx.add_secret(saved.get("secretAccessKey"))
            ctx.add_secret(saved.get("sessionToken"))
            return _credentials(saved, account_id)
        token = access_token(ctx, session)
        params = {"account_id": account_id, "role_name": role_name}
        try:
            with ctx.status(f"Getting credentials for {role_name} in {account_id} ..."):
                data = portal_call(ctx, session, "GET", "/federation/credentials", token.access_token, params)
        except PortalError as exc:
            if exc.type != "UnauthorizedException":
                raise _role_refused(ctx, session, token, account_id, role_name, exc) from None
            token = access_token(ctx, session, force_refresh=True)  # revoked early: one refresh, then give up
            try:
                data = portal_call(ctx, session, "GET", "/federation/credentials", token.access_token, params)
            except PortalError as again:
                if again.type == "UnauthorizedException":
                    raise sign_in_again(session) from None
                raise _role_refused(ctx, session, token, account_id, role_name, again) from None
        role = data.get("roleCredentials")
        fields = ("accessKeyId", "secretAccessKey", "sessionToken")
        if not isinstance(role, dict) or not all(isinstance(role.get(k), str) and role[k] for k in fields) \
                or not isinstance(role.get("expiration"), int) or isinstance(role["expiration"], bool) \
                or not 0 < role["expiration"] / 1000 - time.time() <= MAX_LIFETIME:
            raise StepError("the AWS access portal answered GetRoleCredentials without complete, unexpired "
                            "credentials")
        ctx.add_secret(role["secretAccessKey"])
        ctx.add_secret(role["sessionToken"])
        expires = role["expiration"] / 1000
        if expires - time.time() > ROLE_MARGIN:
            ctx.state_put(name, {k: role[k] for k in (*fields, "expiration")},
                          min(expires - ROLE_MARGIN, time.time() + SHARE_WINDOW))
        return _credentials(role, account_id)


def _credentials(role: dict[str, Any], account_id: str) -> AwsCredentials:
    return AwsCredentials(
        access_key_id=role["accessKeyId"], secret_access_key=role["secretAccessKey"],
        session_token=role["sessionToken"], expiration=datetime.fromtimestamp(role["expiration"] / 1000, UTC),
        issued_at=utcnow(), origin="sso", account_id=account_id)


def list_roles(ctx: Any, session: SsoSession, token: tokens.Token) -> list[dict[str, str]]:
    """Every (account, role) the signed-in user can reach: ListAccounts, then ListAccountRoles of each."""
    rows = []
    for account in paginate(ctx, session, "/assignment/accounts", token.access_token, "accountList"):
        account_id = str(account.get("accountId") or "")
        if not account_id:
            continue
        for role in paginate(ctx, session, "/assignment/roles", token.access_token, "roleList",
                             {"account_id": account_id}):
            rows.append({"accountId": account_id, "accountName": str(account.get("accountName") or ""),
                         "emailAddress": str(account.get("emailAddress") or ""),
                         "roleName": str(role.get("roleName") or "")})
    return rows


def _role_refused(ctx: Any, session: SsoSession, token: tokens.Token, account_id: str, role_name: str,
                  exc: PortalError) -> StepError:
    """One line for a refused GetRoleCredentials: unknown account/role (with the nearest), or no access."""
    if exc.status not in (403, 404) and exc.type not in ("ForbiddenException", "ResourceNotFoundException"):
        return StepError(f"GetRoleCredentials for role {role_name} in account {account_id} failed: {exc}")
    try:
        rows = list_roles(ctx, session, token)
    except (PortalError, StepError):
        rows = []
    accounts = {r["accountId"]: r["accountName"] for r in rows}
    if rows and account_id not in accounts:
        names = [f"{a} ({n})" if n else a for a, n in accounts.items()]
        close = difflib.get_close_matches(account_id, list(accounts), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]}{' (' + accounts[close[0]] + ')' if accounts[close[0]] else ''}?)" \
            if close else f" (accounts: {', '.join(names[:5])})"
        return StepError(f"account {account_id} is not one this SSO user can reach{hint}; see gw sso roles")
    roles = [r["roleName"] for r in rows if r["accountId"] == account_id]
    if rows and role_name not in roles:
        close = difflib.get_close_matches(role_name, roles, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (roles: {', '.join(roles[:5])})"
        return StepError(f"account {account_id} has no role {role_name!r} for this SSO user{hint}; see gw sso roles")
    return StepError(f"access denied ({exc.type}): role {role_name} in account {account_id}")
