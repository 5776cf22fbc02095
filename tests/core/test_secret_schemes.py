"""The built-in secret schemes use only the public StepContext (gw.plugin), like any plugin's.

Each is resolved here with :class:`gw.testing.StubStepContext`, an implementation of the public
protocol that shares no code with the core's own context; the scheme modules reach no private
attribute (no ``type: ignore``, no ``getattr`` on the context).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gw import builtin_schemes, secrets
from gw.errors import SecretError
from gw.plugin import StepContext
from gw.testing import StubStepContext

CORE = Path(__file__).resolve().parents[2] / "core"
SCHEMES = builtin_schemes.gw_secret_schemes()
SEED = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _ctx(tmp_path: Path, **kwargs) -> StubStepContext:
    return StubStepContext(tmp_path, profile="p", **kwargs)


def test_the_scheme_modules_reach_nothing_private():
    for name in ("builtin_schemes.py", "secrets.py"):
        text = (CORE / name).read_text()
        assert "type: ignore" not in text and "getattr(ctx" not in text, name
    for member in ("secret_label", "code_account", "vault_get"):
        assert member in StepContext.__annotations__ or hasattr(StepContext, member), member


def test_vault_is_read_through_the_public_vault_get(tmp_path):
    ctx = _ctx(tmp_path, secrets={"vault:api": "vault-value-1"})
    assert secrets.resolve("vault:api", ctx, "api key", SCHEMES) == "vault-value-1"
    assert "vault-value-1" in ctx.added_secrets
    with pytest.raises(SecretError):
        secrets.resolve("vault:missing", ctx, "api key", SCHEMES)


def test_a_prompt_names_the_public_secret_label(tmp_path):
    asked: list[str] = []
    ctx = _ctx(tmp_path, answers=["typed"])
    ctx.secret_label = "secret access key"
    ctx.ask = lambda label, secret=True: asked.append(label) or "typed"  # type: ignore[method-assign]
    assert secrets.resolve("prompt", ctx, "secret access key", SCHEMES) == "typed"
    assert asked == ["secret access key for profile p: "]


def test_totp_reads_its_seed_through_the_context_and_spends_a_code_for_the_account(tmp_path):
    ctx = _ctx(tmp_path, secrets={"vault:seed": SEED})
    ctx.secret_label = "mfa code"
    code = secrets.resolve("totp:vault:seed", ctx, "mfa code", SCHEMES)
    assert code.isdigit() and len(code) == 6
    assert SEED in ctx.added_secrets and len(ctx.used_codes) == 1


def test_cmd_for_a_one_time_code_goes_through_one_time_code_with_the_public_code_account(tmp_path):
    ctx = _ctx(tmp_path)
    ctx.code_account = "account:arn:aws:iam::123456789012:mfa/alice"
    ref = f"cmd:{sys.executable} -c 'print(123456)'"
    assert secrets.resolve(ref, ctx, "mfa code", SCHEMES) == "123456"
    assert list(ctx.used_codes) == ["account:arn:aws:iam::123456789012:mfa/alice"]
    ctx.code_account = None
    assert secrets.resolve(ref, ctx, "api key", SCHEMES) == "123456"
    assert len(ctx.used_codes) == 1  # not a one-time code: no code spent
