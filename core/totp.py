"""One-time codes that are never handed out twice, and TOTP generation (RFC 6238, pyotp).

SORACOM and AWS reject a code that was already used, and soracom-cli signs in on
every call, so gw records the last time step used for each account (a hash of
its name, never a code or a seed) under an exclusive lock. A request in the same
step waits for the next one; parallel gw processes queue on the lock and each
get their own step.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

from .errors import SecretError
from .locks import file_lock
from .paths import atomic_write, ensure_dir


def generator(seed: str, *, period: int = 30, digits: int = 6) -> Callable[[float], str]:
    """``produce(t)``: the TOTP code of ``seed`` valid at epoch time ``t``."""
    import pyotp

    try:
        totp = pyotp.TOTP("".join(seed.split()).upper().rstrip("="), digits=digits, interval=period)
        totp.byte_secret()
    except Exception as exc:  # pyotp's messages never include the seed
        raise SecretError(f"the TOTP seed is unusable (base32, at least 112 bits): {exc}") from None
    return lambda t: totp.at(t)


def seed_account(seed: str) -> str:
    """The account name a bare TOTP seed stands for when no step names the account."""
    normalised = "".join(seed.split()).upper().rstrip("=")
    return "totp-seed:" + hashlib.sha256(b"gw-totp\0" + normalised.encode()).hexdigest()


def account_id(account: str) -> str:
    return hashlib.sha256(b"gw-otp-account\0" + account.encode()).hexdigest()[:32]


def fresh_code(
    account: str,
    produce: Callable[[float], str],
    state_dir: str,
    *,
    period: int = 30,
    lock_timeout: float = 120.0,
    on_wait: Callable[[float], None] | None = None,
) -> str:
    """The code of the current ``period`` step for ``account``, waiting for the next step if used."""
    directory = ensure_dir(os.path.join(state_dir, "totp"))
    ident = account_id(account)
    record = os.path.join(directory, ident + ".last")
    with file_lock(os.path.join(directory, ident + ".lock"), lock_timeout, "a one-time code"):
        try:
            with open(record) as f:
                last = int(f.read().strip() or -1)
        except (OSError, ValueError):
            last = -1
        step = int(time.time() // period)
        if step <= last:
            wait = (last + 1) * period - time.time()
            if wait > 0:
                if on_wait:
                    on_wait(wait)
                time.sleep(wait + 0.01)
            step = last + 1
        code = produce(step * period)
        try:
            atomic_write(record, f"{step}\n".encode())
        except OSError:
            pass  # read-only state: cannot remember, the upstream will still reject a reuse
    return code
