"""gw.entrypoints reads entry points as importlib.metadata does, each distribution's file once."""

from __future__ import annotations

import builtins
import importlib.metadata
import sys
from pathlib import Path

import pytest

from gw import entrypoints


def _dist(root: Path, name: str, text: str) -> None:
    info = root / f"{name}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.partition('-')[0]}\nVersion: 1\n")
    (info / "entry_points.txt").write_text(text)


def _as_tuples(eps: list) -> list[tuple[str, str, str]]:
    return [(ep.name, ep.value, ep.group) for ep in eps]


@pytest.mark.parametrize("group", ["gw", "gw.provides", "console_scripts"])
def test_the_installed_entry_points_are_importlib_metadatas(group: str) -> None:
    expected = sorted((ep.name, ep.value, group) for ep in importlib.metadata.entry_points(group=group))
    assert sorted(_as_tuples(entrypoints.entry_points(group)[group])) == expected
    assert expected or group == "gw.provides"


def test_the_first_distribution_of_a_name_wins_and_groups_stay_apart(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _dist(first, "demo_plugin-1.0", "[gw]\ndemo = demo_mod\n\n[gw.provides]\nstep:demo = demo_mod\n")
    _dist(second, "Demo.Plugin-2.0", "[gw]\ndemo = shadowed_mod\n")
    _dist(second, "other-1.0", "# comment\n[gw]\n; also a comment\nother = other_mod:plugin\n[x]\nno = pe\n")
    monkeypatch.setattr(sys, "path", [str(first), str(tmp_path / "missing"), str(second)])

    groups = entrypoints.entry_points("gw", "gw.provides")

    assert _as_tuples(groups["gw"]) == [("demo", "demo_mod", "gw"), ("other", "other_mod:plugin", "gw")]
    assert _as_tuples(groups["gw.provides"]) == [("step:demo", "demo_mod", "gw.provides")]
    assert _as_tuples(entrypoints.entry_points("gw")["gw"]) == _as_tuples(groups["gw"])


def test_several_groups_read_each_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _dist(tmp_path, "one-1.0", "[gw]\none = one_mod\n[gw.provides]\nstep:one = one_mod\n")
    _dist(tmp_path, "two-1.0", "[gw]\ntwo = two_mod\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    groups = entrypoints.entry_points("gw", "gw.provides")

    assert [n for n in opened if n.endswith("entry_points.txt")] == [
        str(tmp_path / "one-1.0.dist-info" / "entry_points.txt"),
        str(tmp_path / "two-1.0.dist-info" / "entry_points.txt"),
    ]
    assert [ep.name for ep in groups["gw"]] == ["one", "two"]
    assert [ep.name for ep in groups["gw.provides"]] == ["step:one"]


def test_a_zip_on_the_path_is_left_to_importlib_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "plugins.zip"
    archive.write_bytes(b"")
    monkeypatch.setattr(sys, "path", [str(archive)])
    asked: list[str] = []

    def fake_entry_points(group: str) -> list:
        asked.append(group)
        return [importlib.metadata.EntryPoint(name="z", value="zip_mod", group=group)]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    groups = entrypoints.entry_points("gw", "gw.provides")
    assert asked == ["gw", "gw.provides"]
    assert _as_tuples(groups["gw"]) == [("z", "zip_mod", "gw")]
