"""The cache-hit path of plugin commands that exec (``gw NAME --profile P -- ARGS``).

Runs before argparse, config parsing, pluggy or any plugin is imported. A plugin command that
execs a program with a credential (:meth:`gw.plugin.CommandContext.exec_with`) is served from
the exec recipe that command left (see "exec recipes" below) and the profile's cache entry,
trusted on the same terms as a hit of ``gw credential-process`` (:func:`gw.cachehit.fresh_entry`);
in every other case it returns False and the ordinary path decides (and explains).
"""

import os
import sys

from . import paths
from .cachehit import fresh_entry
from .store import RECIPE_MAX, Store, open_recipe, read_regular, recipe_path

# -- exec recipes: ``gw <plugin-command> --profile P -- ARGS`` --------------------------------
#
# A plugin command that ends by exec'ing a program with a credential (CommandContext.exec_with)
# leaves a recipe in the cache directory (gw.store owns its name and format): which program, the
# argv and environment templates with ``{field}`` placeholders naming fields of the credential's
# cached JSON form, and what it is bound to (command, profile, config file, credential kind,
# profile digest). On a later call the fast path fills the templates from the profile's fresh
# cache entry and execs, without argparse, config parsing or any plugin.

COMMAND_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def command_word(name: str) -> bool:
    """A plugin command name the fast path can serve: ``[a-z0-9-]+``, not one of gw's own words
    (the ``core`` plugin's top-level commands, read from the index of :mod:`gw.commands`, which
    imports nothing)."""
    from .commands import WORDS

    return bool(name) and not name.startswith("-") and set(name) <= COMMAND_CHARS and name not in WORDS


def fill(template: str, fields: dict) -> str | None:
    """``template`` with each ``{name}`` replaced by the credential field ``name`` (``{{``/``}}``: a brace).

    None when a field is missing or not text/a number, or the template is malformed.
    """
    out, i, n = [], 0, len(template)
    while i < n:
        ch = template[i]
        if (ch == "{" and template.startswith("{{", i)) or (ch == "}" and template.startswith("}}", i)):
            out.append(ch)
            i += 2
        elif ch == "{":
            end = template.find("}", i)
            if end < 0:
                return None
            value = fields.get(template[i + 1 : end])
            if isinstance(value, bool) or not isinstance(value, str | int):
                return None
            out.append(str(value))
            i = end + 1
        elif ch == "}":
            return None
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def which(program: str) -> str | None:
    """The file ``program`` names, as :func:`shutil.which` finds it (``$PATH`` when it has no slash).

    The slow path records it and the fast path finds it again, so both run the same file.
    """
    def runnable(path: str) -> bool:
        return os.path.exists(path) and os.access(path, os.F_OK | os.X_OK) and not os.path.isdir(path)

    if os.path.dirname(program):
        return program if runnable(program) else None
    search = os.environ.get("PATH")
    if search is None:
        try:
            search = os.confstr("CS_PATH") or os.defpath
        except (AttributeError, ValueError):
            search = os.defpath
    seen = set()
    for directory in search.split(os.pathsep) if search else []:
        if directory not in seen:
            seen.add(directory)
            candidate = os.path.join(directory, program)
            if runnable(candidate):
                return candidate
    return None


def child_argv_env(recipe: dict, fields: dict, args: list[str]) -> tuple[list[str], dict[str, str]] | None:
    """The argv and environment a recipe makes with ``fields`` (None when a placeholder cannot be filled)."""
    argv = [fill(t, fields) if isinstance(t, str) else None for t in recipe["argv"]]
    env = dict(os.environ)
    for name, template in recipe["env"].items():
        if template is None:
            env.pop(name, None)
            continue
        value = fill(template, fields) if isinstance(template, str) else None
        if value is None:
            return None
        env[name] = value
    if not argv or None in argv:
        return None
    return [a for a in argv if a is not None] + list(args), env


def restore_signals() -> None:
    """Give the program the signal dispositions a shell would: Python ignores SIGPIPE and
    SIGXFSZ, and ignored signals stay ignored across exec (as ``subprocess``'s ``restore_signals``)."""
    import _signal

    for name in ("SIGPIPE", "SIGXFSZ"):
        number = getattr(_signal, name, None)
        if number is not None:
            _signal.signal(number, _signal.SIG_DFL)


def _exec_args(args: list[str]) -> tuple[str, list[str]] | None:
    """(profile, pass-through args) when ``args`` are ``[--profile P | --profile=P] -- ARGS...``."""
    profile = None
    if args[:1] == ["--profile"] and len(args) >= 2:
        profile, rest = args[1], args[2:]
    elif args[:1] and args[0].startswith("--profile="):
        profile, rest = args[0][len("--profile=") :], args[1:]
    else:
        rest = args
    if rest[:1] != ["--"]:
        return None
    profile = profile if profile is not None else os.environ.get("GW_PROFILE")
    if not profile or profile.startswith("-"):
        return None
    return profile, rest[1:]


def serve_exec(name: str, args: list[str]) -> bool:
    """Exec the program of ``gw NAME --profile P -- ARGS`` from its recipe and P's cache entry.

    Returns False (having done nothing) whenever anything is not certain; the ordinary
    path then runs the command, which writes a new recipe. Does not return otherwise.
    """
    parsed = _exec_args(args) if command_word(name) else None
    if parsed is None:
        return False
    profile, rest = parsed
    config = os.path.abspath(paths.config_path())
    data = read_regular(recipe_path(paths.cache_dir(), name, profile, config), RECIPE_MAX, private=True)
    if data is None:
        return False
    found = fresh_entry(profile, None)
    if found is None:
        return False
    header, plaintext, key = found
    recipe = open_recipe(key, data)
    try:
        if (
            recipe is None
            or recipe["command"] != name
            or recipe["profile"] != profile
            or recipe["config"] != config
            or recipe["kind"] != header.kind
            or recipe["digest"] != header.digest
            or any(os.environ.get(var) != value for var, value in recipe["depends_on"].items())
        ):
            return False
        program, argv0 = recipe["program"], recipe["argv"][0]
        if not os.path.isabs(program) or which(argv0) != program:
            return False
        from .jsonscan import parse_json

        doc = parse_json(plaintext.partition(b"\n")[2].decode())
        if not isinstance(doc, dict) or doc.get("kind") != header.kind or not isinstance(doc.get("data"), dict):
            return False
        if "runner" in recipe:
            runner = load_runner(recipe["runner"])
            options = recipe.get("options") or {}
            made = None
        else:
            made = child_argv_env(recipe, doc["data"], rest)
    except Exception:  # a recipe or entry of an unexpected shape: the ordinary path decides
        return False
    if "runner" in recipe:
        return _serve_runner(runner, program, doc["data"], rest, options, profile, plaintext, config)
    if made is None:
        return False
    try:
        restore_signals()
        os.execve(program, made[0], made[1])
    except OSError:  # gone or not runnable since: the ordinary path explains
        return False
    return False  # pragma: no cover - execve does not return


# -- runner recipes: ``CommandContext.run_with`` ----------------------------------------------
#
# A plugin command that must stay alive while its program runs (to serve it the credential
# without putting it in an argv or environment) leaves a recipe naming a runner,
# ``"module:function"``: a module of the plugin that imports only the standard library. The
# fast path imports that one module (no pluggy, no entry points, no other plugin) and calls
# ``function(program, fields, args, options)``. It returns ``(status, drop)``: ``drop`` asks
# that the cached credential be dropped (it was revoked or refused upstream); a ``status`` of
# None means nothing irrevocable happened and the ordinary path should run the command again
# (after a drop: with a fresh credential).


def load_runner(spec: str):  # noqa: ANN201 - a callable of the plugin
    """The function a runner recipe names (``"module:function"``)."""
    module, _, function = spec.partition(":")
    if not module or not function:
        raise ValueError("a runner is module:function")
    __import__(module)  # what importlib.import_module does for an absolute name, without importing importlib
    return getattr(sys.modules[module], function)


def drop_entry(profile: str, plaintext: bytes, config: str) -> None:
    """Remove ``profile``'s cache entry if it still holds ``plaintext`` (a refreshed one stays),
    under the profile lock, never waiting long."""
    from .locks import file_lock

    try:
        with file_lock(os.path.join(paths.state_dir(), "locks", f"{profile}.lock"), 5.0, f"profile {profile!r}") as locked:
            found = fresh_entry(profile, None) if locked else None
            if found is not None and found[1] == plaintext:
                Store(paths.cache_dir(), config).remove(profile)
    except Exception:  # locked for long, or already gone: the entry is refused upstream anyway
        pass


def _serve_runner(runner, program: str, fields: dict, args: list[str], options: dict, profile: str,  # noqa: ANN001
                  plaintext: bytes, config: str) -> bool:
    """Call a runner on a cache hit; exit with its status, or return False for the ordinary path."""
    try:
        status, drop = runner(program, fields, args, options)
    except Exception as exc:  # the program may have run: never run the command a second time
        os.write(2, f"gw: internal error while running {program}: {type(exc).__name__}\n".encode())
        os._exit(70)
    if drop:
        drop_entry(profile, plaintext, config)
    if status is None:
        return False
    os._exit(status)
