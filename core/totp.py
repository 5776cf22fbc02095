"""TOTP codes (RFC 6238 via pyotp) that are never handed out twice.

SORACOM and AWS reject a code that was already used, and soracom-cli signs in on
every call, so gw records the last time step used for each seed (a hash of it,
never the seed) under an exclusive lock. A request in the same step waits for
the next one; parallel gw processes queue on the lock and each get their own step.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

from .errors import SecretError
from .locks import file_lock
from .paths import atomic_write, ensure_dir


def _normalise(seed: str) -> str:
    """The seed as pyotp reads it: the same key written with spaces or in lower case is one seed."""
    return "".join(seed.split()).upper().rstrip("=")


def _seed_id(seed: str) -> str:
    return hashlib.sha256(b"gw-totp\0" + _normalise(seed).encode()).hexdigest()[:32]


def fresh_code(
    seed: str,
    state_dir: str,
    *,
    period: int = 30,
    digits: int = 6,
    lock_timeout: float = 120.0,
    on_wait: Callable[[float], None] | None = None,
) -> str:
    """The current TOTP code for ``seed``, waiting for the next step if this one was used."""
    import pyotp

    try:
        generator = pyotp.TOTP(_normalise(seed), digits=digits, interval=period)
        generator.byte_secret()
    except Exception as exc:  # pyotp's messages never include the seed
        raise SecretError(f"the TOTP seed is unusable (base32, at least 112 bits): {exc}") from None
    directory = ensure_dir(os.path.join(state_dir, "totp"))
    ident = _seed_id(seed)
    record = os.path.join(directory, ident + ".last")
    with file_lock(os.path.join(directory, ident + ".lock"), lock_timeout, "a TOTP code"):
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
        code = generator.at(step * period)
        try:
            atomic_write(record, f"{step}\n".encode())
        except OSError:
            pass  # read-only state: cannot remember, the upstream will still reject a reuse
    return code
