"""``gw rotate --profile P``: replace the IAM user access key gw keeps in its vault.

The profile's first step must be ``aws-keys`` reading both halves from ``vault:``.
IAM calls go through the profile's MFA session when it has one (its ``session-token``
step, or a GetSessionToken with the MFA device another step names), so policies that
require MFA for IAM allow them.

Every point of the rotation leaves a working key in the vault:

1. CreateAccessKey (new key N; the old key O still works and is still in the vault)
2. store a rotation record {O, N, N's secret} in the vault (one atomic write)
3. verify N with GetCallerIdentity, retrying while IAM propagates the new key
4. swap the vault's id and secret to N in ONE atomic write (never a mixed pair)
5. DeleteAccessKey O
6. drop the record

A run that finds a record finishes that rotation (verify N, swap, delete O) instead of
starting another. A crash between 1 and 2 leaves an unrecorded second key in IAM; the
next run says which one and how to delete it (AWS allows two keys per user). For the
tests, ``GW_TEST_ROTATE_FAIL_AT=<created|recorded|verified|stored|deleted>`` ends the
process abruptly (no cleanup) right after that point.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from gw.plugin import AwsCredentials, CommandContext, ConfigError, StepError, profile_option

CHECKPOINTS = ("created", "recorded", "verified", "stored", "deleted")
VERIFY_DELAYS = (1, 1, 2, 2, 3, 4, 5, 6, 8)  # about 30 s: IAM usually propagates a new key in seconds


def _checkpoint(name: str) -> None:
    if os.environ.get("GW_TEST_ROTATE_FAIL_AT") == name:
        os._exit(99)  # as if killed here: no cleanup, no flushing


def record_name(profile: str) -> str:
    return f"{profile}.gw-rotation"


def vault_refs(ctx: CommandContext, profile: str) -> tuple[str, str]:
    """The vault names of the profile's access key id and secret (its first step's)."""
    steps = ctx.profile(profile).steps
    first = steps[0] if steps else {}
    refs = (first.get("access_key_id"), first.get("secret_access_key"))
    if first.get("use") != "aws-keys" or not all(isinstance(r, str) and r.startswith("vault:") for r in refs):
        raise ConfigError(f"gw rotate needs a profile whose first step is aws-keys with both keys in gw's vault "
                          f"(access_key_id = \"vault:...\"); {profile!r} is not (gw import aws moves keys there)")
    if first.get("session_token"):
        raise ConfigError(f"profile {profile!r} holds temporary keys (session_token); there is nothing to rotate")
    return refs[0][len("vault:"):], refs[1][len("vault:"):]  # type: ignore[index]


def _mfa_session(ctx: CommandContext, profile: str, keys: AwsCredentials) -> AwsCredentials | None:
    """The profile's MFA session (session-token step), or None when the profile has no MFA."""
    steps = ctx.profile(profile).steps
    step_ctx = ctx.step_context(profile)
    if any(s.get("use") == "session-token" and s.get("mfa_serial") for s in steps):
        options = ctx.step_options(profile, "session-token")
        options = {k: v for k, v in options.items() if v is not None}
        options["duration"] = 900
    else:
        mfa = next((s for s in steps if s.get("mfa_serial") and s.get("mfa_code")), None)
        if mfa is None:
            return None
        options = {"mfa_serial": mfa["mfa_serial"], "mfa_code": mfa["mfa_code"], "duration": 900}
        options.update({k: mfa[k] for k in ("region", "endpoint") if mfa.get(k)})
    session = step_ctx.run_step("session-token", options, keys)
    assert isinstance(session, AwsCredentials)
    return session


def _clients(ctx: CommandContext, profile: str, keys: AwsCredentials):
    from .clients import aws_client

    step_ctx = ctx.step_context(profile)
    region = {"region": ctx.profile(profile).region} if ctx.profile(profile).region else {}
    caller = aws_client(step_ctx, "sts", region, keys)
    session = _mfa_session(ctx, profile, keys) or keys
    return step_ctx, caller, aws_client(step_ctx, "iam", region, session)


def _user_name(step_ctx, sts) -> str:
    from .clients import aws_call

    arn = aws_call(step_ctx, "GetCallerIdentity", sts.get_caller_identity)["Arn"]
    if ":user/" not in arn:
        raise ConfigError(f"these keys belong to {arn}, not an IAM user; only IAM user keys can be rotated")
    return arn.rsplit("/", 1)[-1]


def _verify(step_ctx, profile: str, key: AwsCredentials, user: str, region: dict[str, str]) -> None:
    """GetCallerIdentity with the new key, until IAM knows it (bounded)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from .clients import aws_client

    sts = aws_client(step_ctx, "sts", region, key)
    problem = "no answer"
    for delay in (0, *VERIFY_DELAYS):
        if delay:
            with step_ctx.status(f"waiting {delay} s for IAM to propagate the new key ..."):
                time.sleep(delay)  # IAM's eventual consistency: nothing to wait on but time
        try:
            arn = sts.get_caller_identity()["Arn"]
        except (ClientError, BotoCoreError) as exc:
            problem = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
            continue
        if ":user/" in arn and arn.rsplit("/", 1)[-1] == user:
            return
        problem = "it answers for another identity"
    raise StepError(f"the new access key {key.access_key_id} does not work yet ({problem}); the old key is still "
                    f"in use; run gw rotate --profile {profile} again to finish")


def _list_keys(step_ctx, iam, user: str) -> list[str]:
    from .clients import aws_call

    doc = aws_call(step_ctx, "ListAccessKeys", iam.list_access_keys, UserName=user)
    return [k["AccessKeyId"] for k in doc.get("AccessKeyMetadata", [])]


def run_rotate(args: Any, ctx: CommandContext) -> int:
    from .clients import aws_call

    profile = args.profile
    akid_name, secret_name = vault_refs(ctx, profile)
    old_id, old_secret = ctx.vault_get(akid_name), ctx.vault_get(secret_name)
    if not old_id or not old_secret:
        raise ConfigError(f"the vault has no {akid_name!r} / {secret_name!r} for profile {profile!r}")
    ctx.add_secret(old_secret)
    current = AwsCredentials(access_key_id=old_id, secret_access_key=old_secret)
    profile_region = ctx.profile(profile).region
    region = {"region": profile_region} if profile_region else {}
    step_ctx, sts, iam = _clients(ctx, profile, current)
    user = _user_name(step_ctx, sts)
    keys = _list_keys(step_ctx, iam, user)

    raw = ctx.vault_get(record_name(profile))
    record = json.loads(raw) if raw else None
    if record and record["new_access_key_id"] in keys:
        new = AwsCredentials(access_key_id=record["new_access_key_id"], secret_access_key=record["new_secret_access_key"])
        ctx.add_secret(new.secret_access_key)
        ctx.info("finishing an interrupted rotation")
        _finish(ctx, step_ctx, iam, profile, user, record["old_access_key_id"], new, keys, region,
                akid_name, secret_name)
        return 0
    if record:  # the new key never made it (or was deleted): forget it, start afresh
        ctx.vault_remove(record_name(profile))
    others = [k for k in keys if k != old_id]
    if others:
        raise StepError(f"IAM user {user} already has another access key ({', '.join(others)}) besides the one gw "
                        f"uses ({old_id}); AWS allows two. If it is unused, delete it (aws iam delete-access-key "
                        f"--user-name {user} --access-key-id {others[0]}) and run gw rotate again")

    created = aws_call(step_ctx, "CreateAccessKey", iam.create_access_key, UserName=user)["AccessKey"]
    new = AwsCredentials(access_key_id=created["AccessKeyId"], secret_access_key=created["SecretAccessKey"])
    ctx.add_secret(new.secret_access_key)
    _checkpoint("created")
    ctx.vault_set({record_name(profile): json.dumps({
        "old_access_key_id": old_id, "new_access_key_id": new.access_key_id,
        "new_secret_access_key": new.secret_access_key})})
    _checkpoint("recorded")
    _finish(ctx, step_ctx, iam, profile, user, old_id, new, [*keys, new.access_key_id], region, akid_name, secret_name)
    return 0


def _finish(ctx: CommandContext, step_ctx, iam, profile: str, user: str, old_id: str, new: AwsCredentials,
            keys: list[str], region: dict[str, str], akid_name: str, secret_name: str) -> None:
    from .clients import aws_call

    _verify(step_ctx, profile, new, user, region)
    _checkpoint("verified")
    ctx.vault_set({akid_name: new.access_key_id, secret_name: new.secret_access_key})
    _checkpoint("stored")
    if old_id != new.access_key_id and old_id in keys:
        aws_call(step_ctx, f"DeleteAccessKey {old_id}", iam.delete_access_key, UserName=user, AccessKeyId=old_id)
    _checkpoint("deleted")
    ctx.vault_remove(record_name(profile))
    ctx.emit(f"rotated the access key of IAM user {user} for profile {profile!r}: {old_id} -> {new.access_key_id} "
             "(the old key is deleted)")


def configure_rotate(parser: Any) -> None:
    profile_option(parser, help="the gw profile whose vault-held IAM user key is replaced (default: $GW_PROFILE)")
