"""Runs soracom-cli for ``gw soracom`` behind the local forwarder (:mod:`.forwarder`).

``run`` is the runner of :meth:`gw.plugin.CommandContext.run_with`: the slow path calls it
after resolving the session, and the fast path calls it on a cache hit without loading
plugins, so this module imports only the standard library and :mod:`.forwarder`.

soracom-cli gets ``SORACOM_ENDPOINT`` pointing at the forwarder and per-call placeholders
as ``--api-key``/``--api-token``; the real key and token stay in gw's memory. The answer is
``(status, drop)``:

* the API refused the session (401, or AUM0004) on the child's FIRST request: the child is
  killed before it could print or do anything (a refused request was not executed, and no
  earlier one exists), and the answer is ``(None, True)``: drop the session; the command
  signs in afresh and runs soracom-cli once more;
* refused on a later request (earlier ones did run, so re-running is unsafe): the child gets
  the refusal, gw says in one line that the session was dropped: ``(status, True)``;
* ``POST /v1/auth/logout`` answered 204: ``(status, True)``: the session is dead;
* otherwise ``(status, False)``.
"""

from __future__ import annotations

import _signal as signal  # signal itself loads enum; the fast path needs only these calls
import os
import threading

from .forwarder import Forwarder, normalise_endpoint

HIDDEN_ENV = ("GW_SORACOM_CLI",)
DEFAULT_SIGNALS = ("SIGPIPE", "SIGXFSZ", "SIGINT", "SIGQUIT")


def _say(line: str) -> None:
    try:
        os.write(2, f"gw: {line}\n".encode(errors="replace"))
    except OSError:
        pass


def _exit_code(wait_status: int) -> int:
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def _verify(value: object) -> bool | str:
    return value if isinstance(value, str) else True  # a CA bundle path, or the system's trust store


def run(program: str, fields: dict[str, object], args: list[str],
        options: dict[str, object]) -> tuple[int | None, bool]:
    """Run ``program ARGS`` with the session in ``fields`` served by a forwarder; see the module docstring."""
    try:
        forwarder = Forwarder(normalise_endpoint(str(fields["endpoint"])), str(fields["api_key"]),
                              str(fields["token"]), _verify(options.get("verify", True)),
                              str(fields.get("operator_id") or ""))
    except (KeyError, ValueError) as exc:
        _say(f"cannot run soracom-cli: {exc}")
        return 2, False
    env = dict(os.environ)
    env["SORACOM_ENDPOINT"] = forwarder.url
    for name in HIDDEN_ENV:
        env.pop(name, None)
    argv = [program, "--api-key", forwarder.key_placeholder, "--api-token", forwarder.token_placeholder, *args]
    spawned = threading.Event()
    child: list[int] = []

    def stop_child() -> None:  # the first request was refused: nothing ran, nothing was printed for it
        spawned.wait(5)
        if child:
            try:
                os.kill(child[0], signal.SIGKILL)
            except OSError:
                pass

    forwarder.on_refused_first = stop_child
    defaults = [getattr(signal, name) for name in DEFAULT_SIGNALS if hasattr(signal, name)]
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        for sig in saved:  # like system(3): Ctrl-C is the child's to handle
            signal.signal(sig, signal.SIG_IGN)
        try:
            child.append(os.posix_spawn(program, argv, env, setsigdef=defaults))
        except OSError as exc:
            _say(f"cannot run {program}: {exc.strerror or type(exc).__name__}")
            return (127 if isinstance(exc, FileNotFoundError) else 126), False
        finally:
            spawned.set()
        forwarder.start()  # after the spawn: the child starts while gw loads ssl and connects upstream
        _, wait_status = os.waitpid(child[0], 0)
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)
        forwarder.close()
    for note in forwarder.notes:
        _say(note)
    if forwarder.refused_first:
        return None, True
    if forwarder.refused_later:
        _say(f"SORACOM refused the session ({forwarder.refused_later}) during the call; gw dropped it: "
             "the next call signs in again")
        return _exit_code(wait_status), True
    return _exit_code(wait_status), forwarder.logged_out
