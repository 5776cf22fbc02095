"""The ``gw`` command line.

``main`` first tries the cache-hit paths of ``credential-process`` and ``token``
(:mod:`gw.cachehit`, which the launcher asks before importing this module) and of
plugin commands that exec a program (:mod:`gw.fastpath`): no argparse, no config
parsing, no plugins; everything else goes through argparse. Every
expected failure is a :class:`gw.errors.GwError` printed as one line.
"""

import os
import sys


def main(argv: list[str] | None = None, *, hit_tried: bool = False) -> int:
    """gw's exit status for ``argv`` (the process's arguments when None: a real gw process).

    ``hit_tried``: the launcher already asked :func:`gw.cachehit.serve`, which could not serve.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in ("credential-process", "token"):
        if not hit_tried:
            from .cachehit import serve

            status = serve(args, real=argv is None)  # a real process ends there when served
            if status is not None:
                return status
    elif argv is None and len(args) >= 2 and (args[1] == "--" or args[1].startswith("--profile")):
        # gw NAME [--profile P] -- ARGS of a plugin command that execs (its recipe decides);
        # only in a real process: exec would replace a Python caller
        from .cachehit import _binding_lib, launched_from, settle_binding
        from .fastpath import serve_exec

        _binding_lib[:] = launched_from  # cryptography's binding without its packages' __init__s, as a hit
        try:
            serve_exec(args[0], args[1:])  # returns only when it did not exec
        except Exception:  # any doubt, even a bug of the fast path: the ordinary path runs the command
            pass
        _binding_lib.clear()
        settle_binding()
    status = run(args)
    if argv is None and args[:1] in (["credential-process"], ["token"]):
        end_process(status)
    return status


def end_process(status: int) -> None:
    """End a real ``credential-process`` / ``token`` process at once, once its answer is out.

    The answer is written and the cache entry renamed into place; what remains of a normal
    exit is the interpreter's teardown: freeing every module and object one by one, about
    10 ms once a plugin, pyscard and cryptography are loaded (docs/performance.md, "Target
    1"). The standard streams are flushed and the ``atexit`` functions run first, as at a
    normal exit. Returns (Python then exits as usual) while a thread that is not a daemon
    still runs, under a profiler or tracer (``python -m cProfile``, a debugger: they write their
    results after gw returns), or when flushing fails (the usual exit reports it).
    """
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    threading = sys.modules.get("threading")
    if threading is not None:
        main = threading.main_thread()
        if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
            return
    if not _flushed():
        return
    import atexit

    atexit._run_exitfuncs()
    if _flushed():
        os._exit(status)


def _flushed() -> bool:
    """Flush stdout and stderr; False when that fails (the usual exit then reports it)."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return False
    return True


def run(args: list[str]) -> int:
    import _signal

    restore_site()
    if _signal.getsignal(_signal.SIGINT) == _signal.SIG_DFL:  # set by the launcher for the first moments
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)  # Ctrl-C now cleans up and says "cancelled"
    try:
        return _run(args)
    except KeyboardInterrupt:  # between the handler and _run's own try
        print("gw: cancelled", file=sys.stderr)
        return 130


def restore_site() -> None:
    """Bring ``site`` back when the launcher started Python without it (``-I -S``).

    The cache hit needs only gw's own install location; everything else (plugins from other
    distributions, ``.pth`` files, editable installs) needs site-packages as site sets it up.
    Isolation stays: no ``PYTHONPATH``, no user site-packages (docs/security.md).
    """
    if sys.flags.no_site and "site" not in sys.modules:
        import site

        site.main()


def _run(args: list[str]) -> int:
    from .app import App
    from .errors import GwError

    app = App(config_path=_config_option(args))
    try:
        quick = _plain_miss(args)
        if quick is not None:  # a cache miss of credential-process / token: no argparse before the first byte
            app.ui.errors_on_tty = quick.errors_on_tty
            return int(quick.handler(quick, app) or 0)
        parser = build_parser(app, args)
        ns, extra = parser.parse_known_args(args)
        flag, extra = _global_flags(extra)
        if flag:  # gw profiles --config X: gw's own flag after a command that has none of its own
            args = _moved_to_front(args, flag)
            app = App(config_path=_config_option(args))
            parser = build_parser(app, args)
            ns, extra = parser.parse_known_args(args)
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        app.ui.errors_on_tty = getattr(ns, "errors_on_tty", True)
        if not getattr(ns, "handler", None):
            parser.print_help(sys.stderr)
            return 2
        if getattr(ns, "wants_parser", False):  # gw completion describes the whole command line
            ns.parser = parser
        return int(ns.handler(ns, app) or 0)
    except GwError as exc:
        app.ui.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        app.ui.error("cancelled")
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:  # e.g. stdout full or closed while printing a result
        where = f" ({exc.filename})" if exc.filename else ""
        app.ui.error(f"input/output failed{where}: {exc.strerror or type(exc).__name__}")
        return 1
    except Exception as exc:  # a bug: still one line, still scrubbed
        if os.environ.get("GW_DEBUG"):
            raise
        app.ui.error(f"internal error: {type(exc).__name__}: {exc} (set GW_DEBUG=1 for details)")
        return 70


def _plain_miss(args: list[str]):
    """The namespace argparse would give ``credential-process`` / ``token`` with only ``--profile``,
    ``--refresh``, ``--min-ttl`` (and ``--format`` for token), each well formed; None for anything
    else (help, a mistake, another option), which argparse then parses and reports as always.

    argparse, its help formatter (``shutil``, ``locale``, gettext) and gw's help wrapping cost
    several milliseconds before the first upstream byte of a miss (docs/performance.md).
    """
    if not args or args[0] not in ONE_PARSER_COMMANDS:
        return None
    from types import SimpleNamespace

    from .commands import credential_output as credentials
    from .durations import duration_seconds

    values: dict = {"profile": os.environ.get("GW_PROFILE") or None, "refresh": False, "min_ttl": 0}
    if args[0] == "token":
        values["format"] = "raw"
    rest = args[1:]
    while rest:
        name, eq, value = rest[0].partition("=")
        if name == "--refresh" and not eq:
            values["refresh"] = True
            rest = rest[1:]
            continue
        if name not in ("--profile", "--min-ttl", "--format") or (name == "--format" and args[0] != "token"):
            return None
        if not eq:
            if len(rest) < 2 or rest[1].startswith("-"):
                return None
            value, rest = rest[1], rest[2:]
        else:
            rest = rest[1:]
        if name == "--min-ttl":
            seconds = duration_seconds(value.strip())
            if seconds is None:
                return None
            values["min_ttl"] = seconds
        elif name == "--format":
            if value not in ("raw", "header", "json"):
                return None
            values["format"] = value
        else:
            values["profile"] = value
    if not values["profile"]:
        return None
    if args[0] == "credential-process":
        return SimpleNamespace(**values, config=None, handler=credentials.credential_process, errors_on_tty=False)
    return SimpleNamespace(**values, config=None, handler=credentials.token, errors_on_tty=True)


def _config_option(args: list[str]) -> str | None:
    """gw's own ``--config`` (before the command): a command's ``--config`` is its own option."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--config" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if not arg.startswith("-"):
            return None  # the command name: what follows belongs to the command
        i += 1
    return None


def _global_flags(extra: list[str]) -> tuple[list[str], list[str]]:
    """gw's ``--config PATH`` among the arguments no command took (a command's own ``--config``,
    e.g. ``gw serve endorse-exchange --config``, took its own): (its tokens, the rest)."""
    for i, arg in enumerate(extra):
        if arg == "--config" and i + 1 < len(extra):
            return extra[i : i + 2], extra[:i] + extra[i + 2 :]
        if arg.startswith("--config="):
            return [arg], extra[:i] + extra[i + 1 :]
    return [], extra


def _moved_to_front(args: list[str], tokens: list[str]) -> list[str]:
    """``args`` with the last run of ``tokens`` moved before the command."""
    for i in range(len(args) - len(tokens), -1, -1):
        if args[i : i + len(tokens)] == tokens:
            return [*tokens, *args[:i], *args[i + len(tokens) :]]
    return args


def _needs_plugins(args: list[str]) -> bool:
    """Whether the command needs every plugin's commands: not one of the core's, a group
    plugins add to, or ``completion``; ``gw vault list`` loads no plugin."""
    from .commands import NEED_PLUGINS, WORDS

    first = next((a for a in args if not a.startswith("-")), None)
    return first is None or first not in WORDS or first in NEED_PLUGINS


def build_parser(app, args: list[str]):
    """gw's parser: every command of every plugin, the built-in ``core`` plugin's first, through one loop.

    The core's commands come from the registry like any plugin's; a command that needs no other
    plugin (:func:`_needs_plugins`) takes them from :func:`gw.commands.registration.core_commands`
    without loading the rest.
    """
    import argparse

    from . import __version__
    from .command_context import AppCommandContext
    from .commands import CORE, PLUGIN_GROUPS
    from .commands.registration import core_commands
    from .errors import EXIT_CODES

    parser = GwParser(
        prog="gw", description="Short-lived AWS and SORACOM credentials from named profiles.",
        epilog=_epilog(EXIT_CODES), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gw {__version__}")
    parser.add_argument("--config", metavar="PATH", help="config file (default: $GW_CONFIG or ~/.config/gw/config.toml)")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    commands = core_commands()
    if _needs_plugins(args):
        from .errors import ConfigError

        try:
            commands = app.registry.commands  # the core plugin's among them
            parser.epilog = _epilog(EXIT_CODES, app.registry.environment)
        except ConfigError as exc:
            app.ui.warn(str(exc))
    groups: dict = {}  # the core's commands plugins add to (setup, serve, import): their subcommands
    made: dict = {}
    # the core's first (a group before its members; a plugin's command of a core name is then
    # refused by argparse), and what is extended before its extensions
    for command in sorted(commands, key=lambda c: (c.extends, c.plugin != CORE)):
        if command.extends:
            _extend(app, made, command)
            continue
        try:
            target = groups[command.group] if command.group else sub
            p = target.add_parser(command.name, help=command.help, description=command.description or command.help,
                                  epilog=command.epilog or None, formatter_class=argparse.RawDescriptionHelpFormatter)
            command.configure(p)
        except Exception as exc:  # a plugin's broken command must not take down gw --help
            app.ui.warn(f"plugin {command.plugin!r}: command {command.full_name!r} skipped "
                        f"({type(exc).__name__}: {exc})")
            continue
        if command.plugin == CORE and not command.group and command.name in PLUGIN_GROUPS:
            groups[command.name] = p.subcommands
        p.set_defaults(handler=_handler(command.run, AppCommandContext(app, command.full_name)))
        made[command.full_name] = p
    from .helpfmt import apply

    apply(parser)  # help pages wrapped to the terminal, examples kept
    return parser


ONE_PARSER_COMMANDS = ("credential-process", "token")


def _parser_class():
    import argparse
    from typing import NoReturn

    class Parser(argparse.ArgumentParser):
        """argparse, with a hint where a bare usage line would leave one guessing."""

        def error(self, message: str) -> NoReturn:
            if "--profile" in message and "required" in message:
                message += " (or set GW_PROFILE)"
            super().error(message)

        def add_subparsers(self, **kwargs):
            """argparse's, remembered as ``self.subcommands`` (where a group's members go)."""
            self.subcommands = super().add_subparsers(**kwargs)
            return self.subcommands

    return Parser


def GwParser(**kwargs):  # noqa: N802 - a class made on first use: argparse is imported lazily
    return _parser_class()(**kwargs)


def _extend(app, made: dict, command) -> None:
    """Add an ``extends=True`` command's options to another plugin's command of that name.

    Its ``run`` goes first and returns None to leave the call to the extended command.
    """
    from .command_context import AppCommandContext

    parser = made.get(command.full_name)
    if parser is None:
        app.ui.warn(f"plugin {command.plugin!r}: extends gw {command.full_name}, which no loaded plugin offers")
        return
    try:
        command.configure(parser)
    except Exception as exc:
        app.ui.warn(f"plugin {command.plugin!r}: extension of {command.full_name!r} skipped "
                    f"({type(exc).__name__}: {exc})")
        return
    if command.description:
        parser.description = f"{parser.description or ''}\n\n{command.description}".strip()
    if command.epilog:
        parser.epilog = f"{parser.epilog or ''}\n{command.epilog}".strip()
    inner = parser.get_default("handler")
    context = AppCommandContext(app, command.full_name)

    def handler(ns, app_):
        status = command.run(ns, context)
        return inner(ns, app_) if status is None else status

    parser.set_defaults(handler=handler)


ENVIRONMENT = (
    ("GW_CONFIG", "the config file (default ~/.config/gw/config.toml; also --config)"),
    ("GW_HOME", "gw's state: key, vault, cache (default ~/.local/state/gw and ~/.cache/gw)"),
    ("GW_PROFILE", "the profile when --profile is not given"),
    ("GW_DEBUG", "1: show a traceback on an internal error"),
    ("GW_QUIET", "1: no progress or notices on stderr"),
    ("GW_PLUGINS", "extra plugin modules to load (a,b), e.g. one under development"),
    ("GW_DISABLE_PLUGINS", "plugins not to load (a,b); also settings.disable_plugins"),
    ("GW_NO_CACHE", "1: skip the cache-hit fast path"),
)


def _epilog(exit_codes, extra_environment=()) -> str:
    variables = [*ENVIRONMENT, *((v.name, f"{v.help} ({v.plugin} plugin)") for v in extra_environment)]
    width = max(len(name) for name, _ in variables) + 2
    lines = ["environment:", *(f"  {name:<{width}} {text}" for name, text in variables), "",
             "exit status:"]
    lines += [f"  {code:<4} {meaning}" for code, meaning in exit_codes]
    return "\n".join(lines + ["", "examples:", "  gw setup aws --profile admin", "  gw exec --profile admin -- aws s3 ls",
                               "  gw completion bash > ~/.local/share/bash-completion/completions/gw"])


def _handler(run, context):
    """A parser's handler: the command's ``run`` with its CommandContext."""
    return lambda ns, app: run(ns, context)


if __name__ == "__main__":
    sys.exit(main())
