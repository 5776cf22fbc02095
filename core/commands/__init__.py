"""The core's commands: :class:`gw.plugin.Command` declarations of the built-in ``core`` plugin.

They register the way any plugin's commands do (``gw_commands``, :mod:`gw.builtin`) and
become parsers through the one loop of :func:`gw.cli.build_parser`. ``MODULES`` lists the
modules declaring them, in ``gw --help`` order, as datasette lists its default plugins
(simonw/datasette, ``datasette/plugins.py`` ``DEFAULT_PLUGINS``, each module imported and
registered like an installed plugin), with the top-level words each declares:
:func:`gw.commands.registration.core_commands` refuses a module declaring other words.

This module imports nothing: the fast path reads :data:`WORDS` from it (``gw NAME -- ARGS``
is never served for one of gw's own words) without loading any command.
"""

#: module (``gw.commands.<name>``) -> the top-level words its commands take
MODULES: dict[str, tuple[str, ...]] = {
    "credentials": ("credential-process", "token", "env"),
    "exec": ("exec",),
    "tables": ("profiles", "plugins", "check"),
    "cache": ("cache",),
    "vault": ("vault",),
    "first_hour": ("init", "config"),
    "completion": ("completion",),
    "groups": ("setup", "import"),
    "serve": ("serve",),
}
#: every top-level word of the core (a plugin command of one of these names is skipped)
WORDS = frozenset(word for words in MODULES.values() for word in words)
#: the core's commands plugins add subcommands to (``Command(group=...)``)
PLUGIN_GROUPS = ("setup", "serve", "import")
#: words whose parser needs every plugin's commands: the groups, and ``completion`` (the whole line)
NEED_PLUGINS = frozenset({*PLUGIN_GROUPS, "completion"})
#: the built-in plugin's name
CORE = "core"
