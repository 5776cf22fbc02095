"""Runs soracom-cli for ``gw soracom`` behind the user's forwarder daemon (:mod:`.daemon`).

``run`` is the runner of :meth:`gw.plugin.CommandContext.run_with`: the slow path calls it
after resolving the session, and the fast path calls it on a cache hit without loading
plugins, so this module imports only the standard library and :mod:`.control` (no
threading, ssl or socket: those run in the daemon).

It registers the session with the daemon over the control socket (starting the daemon if
none runs; serving the call itself in a thread when no daemon can run), gives soracom-cli
``SORACOM_ENDPOINT`` pointing at the forwarder and the call's placeholders as
``--api-key``/``--api-token``, and waits on soracom-cli (a pidfd) and the control connection
at once. The real key and token never leave gw's and the daemon's memory. The answer is
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

from . import control

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


def _registration(fields: dict[str, object], options: dict[str, object]) -> list[str]:
    """The ``register`` message: the session and how to verify the API's certificate (the
    settings' CA bundle, else this process's ``SSL_CERT_FILE``/``SSL_CERT_DIR``), paths absolute."""
    verify = options.get("verify", True)
    bundle = os.path.abspath(verify) if isinstance(verify, str) else ""
    env_file, env_dir = ("", "") if bundle else (os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))
    return ["register", str(fields["endpoint"]), str(fields["api_key"]), str(fields["token"]),
            str(fields.get("operator_id") or ""), bundle, env_file and os.path.abspath(env_file),
            env_dir and os.path.abspath(env_dir)]


def _in_process() -> tuple[control.Channel, object]:
    """A forwarder of this call's own, in a thread, over a socket pair: when no daemon can run."""
    import _socket
    import threading

    from .daemon import serve_call
    from .forwarder import Forwarder

    forwarder = Forwarder().start()
    ours, theirs = _socket.socketpair()
    threading.Thread(target=serve_call, args=(forwarder, theirs), name="gw-forwarder-call", daemon=True).start()
    return control.Channel(ours), forwarder


def _register(message: list[str], runtime_dir: object) -> tuple[control.Channel, list[str], object]:
    """(channel, the daemon's answer, the in-process forwarder or None). The daemon first (a
    second try covers one that was just retiring), else a forwarder of this call's own."""
    for _ in range(2):
        if not isinstance(runtime_dir, str):
            break
        try:
            channel = control.Channel(control.connect(runtime_dir))
        except (OSError, control.ControlError):
            break
        try:
            channel.sock.sendall(control.encode(*message))
            reply = channel.read(control.REPLY_TIMEOUT)
        except OSError:
            reply = None
        if reply is not None:
            return channel, reply, None
        channel.close()
    channel, forwarder = _in_process()
    channel.sock.sendall(control.encode(*message))
    return channel, channel.read(control.REPLY_TIMEOUT) or ["error", "the forwarder did not answer"], forwarder


def _wait(pid: int, channel: control.Channel, events: list[list[str]]) -> int:
    """Wait for the child while listening to the daemon: ``refused`` (its first request) kills it;
    every other message is kept in ``events``. The wait status."""
    import select

    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None  # no pidfd here: look at the child every 10 ms
    poller = select.poll()
    ctrl = channel.sock.fileno()
    poller.register(ctrl, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    try:
        while True:
            for fd, _ in poller.poll(None if pidfd is not None else 10):
                if fd == ctrl and _heard(channel, pid, events) is None:
                    poller.unregister(ctrl)  # the daemon is gone: soracom-cli finds no forwarder and says so
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                _heard(channel, pid, events)  # what the daemon said before soracom-cli had its last answer
                return status
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _heard(channel: control.Channel, pid: int, events: list[list[str]]) -> bool | None:
    """Take in the daemon's messages; None when it has hung up."""
    messages = channel.drain()
    for message in messages or ():
        events.append(message)
        if message[0] == "refused":  # nothing ran yet, nothing was printed for it
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    return None if messages is None else True


def run(program: str, fields: dict[str, object], args: list[str],
        options: dict[str, object]) -> tuple[int | None, bool]:
    """Run ``program ARGS`` with the session in ``fields`` served by the forwarder; see the module docstring."""
    try:
        message = _registration(fields, options)
        channel, reply, forwarder = _register(message, options.get("runtime_dir"))
    except (KeyError, control.ControlError, OSError) as exc:
        _say(f"cannot run soracom-cli: {exc if isinstance(exc, control.ControlError) else type(exc).__name__}")
        return 2, False
    try:
        if reply[0] != "ok" or len(reply) != 4:
            _say(f"cannot run soracom-cli: {reply[1] if len(reply) > 1 else 'the forwarder refused the call'}")
            return 2, False
        _, port, key_placeholder, token_placeholder = reply
        env = dict(os.environ)
        env["SORACOM_ENDPOINT"] = f"http://127.0.0.1:{port}"
        for name in HIDDEN_ENV:
            env.pop(name, None)
        argv = [program, "--api-key", key_placeholder, "--api-token", token_placeholder, *args]
        defaults = [getattr(signal, name) for name in DEFAULT_SIGNALS if hasattr(signal, name)]
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGQUIT)}
        try:
            for sig in saved:  # like system(3): Ctrl-C is the child's to handle
                signal.signal(sig, signal.SIG_IGN)
            try:
                pid = os.posix_spawn(program, argv, env, setsigdef=defaults)
            except OSError as exc:
                _say(f"cannot run {program}: {exc.strerror or type(exc).__name__}")
                return (127 if isinstance(exc, FileNotFoundError) else 126), False
            events: list[list[str]] = []
            wait_status = _wait(pid, channel, events)
        finally:
            for sig, handler in saved.items():
                if handler is not None:
                    signal.signal(sig, handler)
    finally:
        channel.close()  # the daemon forgets the session
        if forwarder is not None:
            forwarder.close()  # type: ignore[attr-defined]
    refused_later = None
    for event in events:
        if event[0] == "note" and len(event) > 1:
            _say(event[1])
        elif event[0] == "later" and len(event) > 1:
            refused_later = refused_later or event[1]
    if any(event[0] == "refused" for event in events):
        return None, True
    if refused_later:
        _say(f"SORACOM refused the session ({refused_later}) during the call; gw dropped it: "
             "the next call signs in again")
        return _exit_code(wait_status), True
    return _exit_code(wait_status), any(event[0] == "logout" for event in events)
