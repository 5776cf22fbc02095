"""``gw completion bash|zsh|fish``: a static completion script of the whole command line
(plugins' commands included), made by shtab; every ``--profile`` built with
:func:`gw.plugin.profile_option` completes profile names through the shell functions below."""

from __future__ import annotations

from typing import Any

from .base import command

# Profile names come from the config file through a small shell function: no Python start
# per TAB. The config is $GW_CONFIG or $XDG_CONFIG_HOME/gw/config.toml (~/.config/gw/config.toml).
_PROFILES_SH = r"""
_gw_config_file() {
  if [ -n "$GW_CONFIG" ]; then echo "$GW_CONFIG"; else echo "${XDG_CONFIG_HOME:-$HOME/.config}/gw/config.toml"; fi
}
_gw_profiles() {
  local cfg; cfg="$(_gw_config_file)"
  [ -r "$cfg" ] || return 0
  sed -n 's/^[[:space:]]*\[profiles\.\([A-Za-z0-9][A-Za-z0-9_.@-]*\)\][[:space:]]*\(#.*\)\{0,1\}$/\1/p; s/^[[:space:]]*\[profiles\."\([A-Za-z0-9][A-Za-z0-9_.@-]*\)"\][[:space:]]*\(#.*\)\{0,1\}$/\1/p' "$cfg" | sort -u
}
"""
_PROFILES_BASH = _PROFILES_SH + r"""
_gw_compgen_profiles() {
  compgen -W "$(_gw_profiles)" -- "$1"
}
"""
_PROFILES_ZSH = _PROFILES_SH + r"""
_gw_zsh_profiles() {
  local -a names; names=(${(f)"$(_gw_profiles)"}); compadd -a names
}
"""
# Fish shows a description beside each candidate: "name<TAB>the profile's description".
_PROFILES_FISH = r"""
function __gw_profiles
  set -l cfg $GW_CONFIG
  if test -z "$cfg"
    set -q XDG_CONFIG_HOME; and set cfg $XDG_CONFIG_HOME/gw/config.toml; or set cfg $HOME/.config/gw/config.toml
  end
  test -r $cfg; or return 0
  awk '
    function flush() { if (name != "") print name "\t" desc; name = ""; desc = "" }
    /^[ \t]*\[/ {
      flush(); line = $0
      if (sub(/^[ \t]*\[profiles\./, "", line) && sub(/\][ \t]*(#.*)?$/, "", line)) {
        if (line ~ /^"[A-Za-z0-9][A-Za-z0-9_.@-]*"$/) line = substr(line, 2, length(line) - 2)
        if (line ~ /^[A-Za-z0-9][A-Za-z0-9_.@-]*$/) name = line
      }
      next
    }
    name != "" && /^[ \t]*description[ \t]*=[ \t]*"/ {
      d = $0; sub(/^[^"]*"/, "", d); sub(/"[ \t]*(#.*)?$/, "", d); gsub(/\\\\"/, "\"", d); desc = d
    }
    END { flush() }
  ' $cfg | sort -u
end
"""
#: per shell, the code defining the functions :data:`gw.cli_options.PROFILE_COMPLETION` names
PREAMBLES = {"bash": _PROFILES_BASH, "zsh": _PROFILES_ZSH, "fish": _PROFILES_FISH}


def configure(parser: Any) -> None:
    parser.add_argument("shell", choices=("bash", "zsh", "fish"))
    parser.set_defaults(wants_parser=True)  # gw.cli hands over the whole command line as ns.parser


def run(ns: Any, app: Any) -> int:
    """The whole command line (plugins' commands included: ``ns.parser``, set by gw.cli) as a script."""
    import shtab

    app.emit(shtab.complete(ns.parser, shell=ns.shell, preamble=PREAMBLES[ns.shell]))
    return 0


COMMANDS = [
    command("completion", "print a shell completion script (bash, zsh, fish)",
            "Print a static completion script for gw's commands and options; profile names are "
            "read from the config file by a small shell function (no Python per TAB).",
            "  gw completion bash > ~/.local/share/bash-completion/completions/gw\n"
            "  gw completion zsh > \"${fpath[1]}/_gw\"\n"
            "  gw completion fish > ~/.config/fish/completions/gw.fish", configure, run),
]
