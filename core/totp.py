"""One-time codes that are never handed out twice, and TOTP generation (RFC 6238, pyotp).

SORACOM and AWS reject a code that was already used, and soracom-cli signs in on
every call, so gw records the last time step used for each account (a hash of
its name, never a code or a seed) under an exclusive lock. A request in the same
step waits for the next one; parallel gw processes queue on the lock and each
get their own step.

Two phases: handing out a code *reserves* its step (recorded at once, so a
parallel gw never gets the same code). The chain runner (:func:`gw.chain.run_step`)
then settles it: *confirmed* when a step that got the code failed with an answer
from its upstream, or succeeded with a result that no longer carries the code
(it was used); still *pending* while a result carries it on to the next step
(``soracom-keys`` hands the code to ``soracom-auth``); *released* when the step
holding it failed before sending anything (the connection was refused or never
opened: :func:`never_sent`), or failed before running. A released step is free
again, so a retry after "connection refused" does not wait up to 30 s for a new
code. Plugins see none of this: ``ctx.one_time_code(...)`` is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import GwError, SecretError
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


@dataclass
class Reservation:
    """A handed-out code's step, recorded as used until :meth:`release` says it never left."""

    record: str
    lock: str
    step: int
    previous: int
    lock_timeout: float
    code: str = field(repr=False, default="")  # only in memory: tells whether a credential still carries it

    def release(self) -> None:
        """Give the step back: the record returns to what it was, unless a later code moved it on."""
        try:
            with file_lock(self.lock, self.lock_timeout, "a one-time code"):
                if _read_last(self.record) != self.step:
                    return
                if self.previous < 0:
                    os.unlink(self.record)
                else:
                    atomic_write(self.record, f"{self.previous}\n".encode())
        except (OSError, GwError):
            pass  # the step stays used: the next code waits for a new step, as before


# Exceptions (by module and class name, so nothing is imported to check them) that mean
# no byte of the request reached the upstream: the connection was refused or never opened.
UNSENT = {
    "builtins.ConnectionRefusedError",
    "urllib3.exceptions.NewConnectionError",
    "urllib3.exceptions.ConnectTimeoutError",
    "requests.exceptions.ConnectTimeout",
    "botocore.exceptions.EndpointConnectionError",
    "botocore.exceptions.ConnectTimeoutError",
}


def never_sent(exc: BaseException | None) -> bool:
    """True when ``exc`` (or an exception it wraps) proves the request never reached the upstream."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo and len(seen) < 32:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        for cls in type(current).__mro__:
            if f"{cls.__module__}.{cls.__qualname__}" in UNSENT:
                return True
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
    return False


def _read_last(record: str) -> int:
    """The last used step in ``record``; -1 when missing or not a small regular file (never blocks)."""
    from .paths import UnsafePath, open_regular

    try:
        fd = open_regular(record)
    except (OSError, UnsafePath):
        return -1
    try:
        return int(os.read(fd, 64).strip() or -1)
    except (OSError, ValueError):
        return -1
    finally:
        os.close(fd)


def fresh_code(
    account: str,
    produce: Callable[[float], str],
    state_dir: str,
    *,
    period: int = 30,
    lock_timeout: float = 120.0,
    on_wait: Callable[[float], None] | None = None,
    reservations: list[Reservation] | None = None,
) -> str:
    """The code of the current ``period`` step for ``account``, waiting for the next step if used.

    The step is recorded as used at once; with ``reservations`` the caller also gets a
    :class:`Reservation` to release if the code is never sent.
    """
    try:
        directory = ensure_dir(os.path.join(state_dir, "totp"))
    except OSError:  # a read-only state dir: cannot remember, the upstream still rejects a reuse
        return produce(int(time.time() // period) * period)
    ident = account_id(account)
    record = os.path.join(directory, ident + ".last")
    lock = os.path.join(directory, ident + ".lock")
    with file_lock(lock, lock_timeout, "a one-time code"):
        last = _read_last(record)
        step = int(time.time() // period)
        if last > step + 1:  # recorded in the future (the clock went back): never wait for it
            last = -1
        if step <= last:
            wait = (last + 1) * period - time.time()
            if wait > 0:
                if on_wait:
                    on_wait(wait)  # may itself wait (a countdown on the terminal)
                time.sleep(max(0.0, (last + 1) * period - time.time()) + 0.01)
            step = last + 1
        code = produce(step * period)
        try:
            atomic_write(record, f"{step}\n".encode())
        except OSError:
            pass  # read-only state: cannot remember, the upstream will still reject a reuse
        else:
            if reservations is not None:
                reservations.append(Reservation(record, lock, step, last, lock_timeout, code))
    return code
