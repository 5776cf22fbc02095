"""``gw cache list`` and ``gw cache clear``: the entries of the cache directory, through the
:class:`gw.store.Store` (headers only for listing; plugins may revoke what is cleared)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ..cli_options import profile_option
from ..errors import ConfigError, GwError
from .base import Action, emit_json, json_option, table, with_actions


def _when(epoch: float) -> str:
    left = epoch - time.time()
    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if left <= 0:
        return f"{stamp} (expired)"
    return f"{stamp} (in {int(left // 60)} min)"


def _shared_steps(app: Any) -> dict[str, tuple[str, list[str]]]:
    """Cache entry name of every chain prefix -> (its steps, the profiles sharing it)."""
    from ..store import prefix_digests, prefix_name

    shared: dict[str, tuple[str, list[str]]] = {}
    try:
        profiles = list(app.config.profiles.values())
    except GwError:
        return shared
    for profile in profiles:
        for index, digest in enumerate(prefix_digests(profile.steps)[:-1]):
            name = prefix_name(digest)
            steps = " -> ".join(step.get("use", "?") for step in profile.steps[: index + 1])
            shared.setdefault(name, (steps, []))[1].append(profile.name)
    return shared


def list_entries(ns: Any, app: Any) -> int:
    from ..profiles_view import iso

    store = app.store
    shared = _shared_steps(app)
    rows, docs = [], []
    for name in store.names():
        kind = store.kind_of(name)
        if kind == "state":
            continue
        header = store.header(name)
        label = name
        if kind == "prefix":
            steps, users = shared.get(name, ("(no profile uses it now)", []))
            label = f"shared: {steps}" + (f" (profiles {', '.join(users)})" if users else "")
        doc: dict[str, object] = {"name": name}
        if kind == "prefix":
            doc.update(shared_steps=steps, profiles=users)
        if header is None:
            rows.append([label, "?", "-", "unreadable header"])
            docs.append({**doc, "kind": None, "expires": None, "state": "unreadable"})
            continue
        state = "fresh" if header.fresh() else "due for refresh" if header.expires_at > time.time() else "expired"
        rows.append([label, header.kind, _when(header.expires_at), state])
        docs.append({**doc, "kind": header.kind, "expires": iso(header.expires_at), "state": state})
    if ns.json:
        emit_json(app, docs)
        return 0
    table(f"cache in {store.directory}", ["profile", "kind", "expires", "state"], rows)
    return 0


def clear(ns: Any, app: Any) -> int:
    from ..store import prefix_digests, prefix_name

    store = app.store
    names = store.names("profile")
    prefixes = store.names("prefix")
    states: list[str] = []
    if ns.profile:
        names = [n for n in names if n == ns.profile]
        try:
            own = {prefix_name(d) for d in prefix_digests(app.config.profile(ns.profile).steps)}
        except GwError:
            own = set()
        prefixes = [n for n in prefixes if n in own]
        if not names and not prefixes and not store.legacy_files(ns.profile):
            _known_profile(app, ns.profile)  # a typo is an error, not "cleared 0"
            app.ui.info(f"nothing cached for profile {ns.profile!r}")
    else:
        states = store.names("state")
    for name in prefixes:
        store.remove(name)
    for name in names:
        with app.profile_lock(name):  # not while a fetch or a re-stamp of this profile is writing
            _revoke_and_remove(app, name)  # before the plugin state a revocation may need
    for name in states:
        store.remove(name)
    store.remove_recipes(ns.profile)
    legacy = store.remove_legacy(ns.profile)
    extra = f" and {len(prefixes)} shared chain step(s)" if prefixes else ""
    extra += f" and {legacy} entr{'y' if legacy == 1 else 'ies'} of an older gw" if legacy else ""
    app.emit(f"cleared {len(names)} cached profile(s){extra}")
    return 0


def _known_profile(app: Any, name: str) -> None:
    """Raise the config's "no profile named ... (did you mean ...)" unless ``name`` is a profile
    (a config that cannot be read decides nothing: what is cached may still be cleared)."""
    try:
        config = app.config
    except ConfigError:
        return
    if name not in config.profiles and name not in config.broken:
        config.profile(name)


def _revoke_and_remove(app: Any, name: str) -> None:
    """Let plugins revoke a live cached credential upstream, then drop the entry."""
    import json

    from ..credentials import credential_from_dict

    header = app.store.header(name)
    if header and header.expires_at > time.time():
        try:
            loaded = app.store.load(name, app.key())
            doc = json.loads(loaded[1].partition(b"\n")[2]) if loaded else None
            if doc:
                credential = credential_from_dict(doc["kind"], doc["data"])
                app.registry.hook.gw_cache_cleared(profile=name, credential=credential, context=app.context(name))
        except (ValueError, KeyError, GwError) as exc:
            app.ui.warn(f"could not revoke the cached credentials of {name!r}: {exc}")
    app.store.remove(name)


COMMANDS = [
    with_actions(
        "cache", "inspect or clear cached credentials", "Inspect or clear gw's encrypted credential cache.",
        "  gw cache list\n  gw cache clear --profile admin", metavar="ACTION", dest="cache_action", actions=[
            Action("list", "cached entries and their expiry (no key needed)",
                   "List cached entries, their kind and expiry (reads only the plaintext headers).",
                   "  gw cache list\n  gw cache list --json", list_entries,
                   json_option),
            Action("clear", "drop cached credentials (all, or one profile)",
                   "Drop cached credentials (all, or one profile's); plugins may revoke them upstream first.",
                   "  gw cache clear\n  gw cache clear --profile admin", clear,
                   lambda parser: profile_option(parser, None, required=False)),
        ]),
]
