"""Entry points of one group, read from the installed distributions without ``importlib.metadata``.

``importlib.metadata`` loads the ``email`` package (to parse METADATA files gw never reads) and
builds its path caches: on every cache miss that was the costliest import before the first
upstream byte (docs/performance.md "Cache miss"). Entry points live in plain
``<dist>.dist-info/entry_points.txt`` (or ``.egg-info``) files in the directories of
``sys.path``; this reads those, with importlib.metadata's rules: ``sys.path`` in order, the first
distribution of a (normalised) name wins, ``name = module[:attr]`` lines under ``[group]``
headers. Anything else on ``sys.path`` (a zip file, an egg) makes it ask importlib.metadata.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EntryPoint:
    """One entry point: ``name = value`` in ``group``; :meth:`load` imports what it names."""

    name: str
    value: str
    group: str

    def load(self) -> Any:
        module, _, attr = self.value.partition(":")
        # the import statement's machinery, not importlib.import_module: -X importtime then shows
        # the plugin module's own cost in profiles (import_module bypasses its instrumentation)
        __import__(module.strip())
        found = sys.modules[module.strip()]
        for part in attr.strip().split(".") if attr.strip() else ():
            found = getattr(found, part)
        return found


def _normalised(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _parse(text: str, groups: tuple[str, ...]) -> list[tuple[str, str, str]]:
    found, section = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section in groups and "=" in line:
            name, _, value = line.partition("=")
            found.append((name.strip(), value.strip(), section))
    return found


def entry_points(*groups: str) -> dict[str, list[EntryPoint]]:
    """Group -> the entry points of that group of every distribution on ``sys.path`` (as
    importlib.metadata), each distribution's file read once for all ``groups``."""
    seen: set[str] = set()
    found: dict[str, list[EntryPoint]] = {group: [] for group in groups}
    for entry in sys.path:
        directory = entry or "."
        try:
            names = sorted(os.listdir(directory))
        except NotADirectoryError:
            return _from_importlib(groups)  # a zip on sys.path: let importlib.metadata read it
        except OSError:
            continue
        for name in names:
            if name.endswith(".egg"):
                return _from_importlib(groups)
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            dist = _normalised(name.rpartition(".")[0].partition("-")[0])
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(directory, name, "entry_points.txt"), encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                continue
            for n, v, group in _parse(text, groups):
                found[group].append(EntryPoint(n, v, group))
    return found


def _from_importlib(groups: tuple[str, ...]) -> dict[str, list[EntryPoint]]:
    import importlib.metadata

    return {group: [EntryPoint(ep.name, ep.value, group) for ep in importlib.metadata.entry_points(group=group)]
            for group in groups}
