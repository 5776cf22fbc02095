"""``gw exec``: a command run with the profile's credentials, by ``exec`` (static keys) or as a
child served by an ECS endpoint that lives as long as it (``--server``), signals forwarded."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..cli_options import freshness_options, profile_option
from .base import command
from .credentials import environment_values, region_values, resolve


def configure(parser: Any) -> None:
    profile_option(parser)
    parser.add_argument("--server", action="store_true",
                        help="serve the credentials through an ECS endpoint instead of static keys")
    parser.add_argument("--region", help="AWS_REGION for the command (wins over the profile and the environment)")
    freshness_options(parser)
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...")


def _command(ns: Any, app: Any) -> list[str]:
    from ..exec_shell import command_or_shell

    words = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    return command_or_shell(words, ns.profile, app.ui, dict(os.environ))


def run(ns: Any, app: Any) -> int:
    from ..envvars import child_environment
    from ..exec_shell import mark
    from ..fastpath import restore_signals

    argv = _command(ns, app)
    if ns.server:
        return exec_with_server(ns, app, argv)
    env = child_environment(dict(os.environ), environment_values(ns, app, resolve(ns, app)))
    mark(env, ns.profile)
    sys.stdout.flush()
    restore_signals()
    try:
        os.execvpe(argv[0], argv, env)
    except (FileNotFoundError, PermissionError) as exc:
        return _cannot_start(app, argv[0], exc)
    return 0  # pragma: no cover - exec does not return


def _cannot_start(app: Any, program: str, exc: OSError) -> int:
    """One line, and the shell's status: 127 for a command not found, 126 for one not runnable."""
    if isinstance(exc, FileNotFoundError):
        app.ui.error(f"command not found: {program}")
        return 127
    app.ui.error(f"permission denied: {program}")
    return 126


def exec_with_server(ns: Any, app: Any, argv: list[str]) -> int:
    """``gw exec --server``: the child reads credentials from an endpoint that lives as long as it."""
    import signal
    import subprocess
    import threading

    from ..envvars import child_environment
    from ..exec_shell import mark
    from .serve import ecs_endpoint

    server = ecs_endpoint(ns, app)
    app.ui.scrubber.add(server.token)
    values = region_values(ns, app, server.environment(), dict(os.environ))
    env = child_environment(dict(os.environ), values)
    mark(env, ns.profile)
    sys.stdout.flush()
    # Handlers go in before the child exists, so a signal can never find gw unprepared;
    # the child starts with default dispositions (exec resets caught signals).
    children: list[subprocess.Popen] = []
    pending: list[int] = []

    def forward(number: int, frame: object) -> None:
        if children:
            children[0].send_signal(number)
        else:
            pending.append(number)

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)
    # Ctrl-C reaches the child from the terminal itself; gw keeps serving until the child ends.
    signal.signal(signal.SIGINT, lambda number, frame: None)
    try:
        child = subprocess.Popen(argv, env=env)
    except (FileNotFoundError, PermissionError) as exc:
        return _cannot_start(app, argv[0], exc)
    children.append(child)
    for number in pending:
        child.send_signal(number)
    done = threading.Event()

    def watch_child() -> None:
        child.wait()
        done.set()

    threading.Thread(target=watch_child, daemon=True).start()
    server.serve_until(done)
    status = child.wait()
    return 128 - status if status < 0 else status


COMMANDS = [
    command("exec", "run a command with the profile's credentials in its environment",
            "Run a command with the profile's credentials; without a command, your $SHELL "
            "(GW_EXEC_PROFILE names the profile inside it). With --server the command gets no keys: "
            "it reads them from a local ECS credentials endpoint (127.0.0.1, random port and token) "
            "that lives as long as the command and refreshes through gw's cache, so long jobs "
            "outlive their first credentials.",
            "  gw exec --profile admin -- aws s3 ls\n"
            "  gw exec --profile admin\n"
            "  gw exec --server --profile deploy -- terraform apply\n"
            "  gw exec --profile admin --region eu-west-1 -- aws ec2 describe-instances", configure, run),
]
