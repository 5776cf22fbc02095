"""The demo's stage: the running services, narration, part results and the closing summary."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Demo:
    """The running emulators, the demo's files and a console to narrate on."""

    root: Path
    gw: str
    console: Any
    env: dict[str, str] = field(default_factory=dict)
    services: dict[str, Any] = field(default_factory=dict)
    config_parts: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # vault entries the parts need
    results: list[PartResult] = field(default_factory=list)

    def gw_run(self, *args: str, input: str | None = None) -> tuple[subprocess.CompletedProcess, float]:
        start = time.perf_counter()
        result = subprocess.run(
            [self.gw, *args], env=self.env, input=input, capture_output=True, text=True, timeout=300,
            stdin=None if input is not None else subprocess.DEVNULL, start_new_session=True,
        )
        elapsed = time.perf_counter() - start
        if result.returncode != 0:
            raise DemoFailed(f"gw {' '.join(args)} failed: {result.stderr.strip()}")
        return result, elapsed

    def write_config(self) -> None:
        Path(self.env["GW_CONFIG"]).write_text("\n".join(self.config_parts))

    def step(self, title: str) -> None:
        self.console.rule(f"[bold]{title}")

    def show(self, text: str) -> None:
        self.console.print(text)

    def output(self, text: str) -> None:
        """Show a program's output literally (no rich markup), never broken inside a line."""
        from rich.markup import escape

        self.console.print(escape(text), soft_wrap=True)

    def command(self, line: str) -> None:
        """Show a command line whole: the terminal may fold it, gw never breaks it mid-argument."""
        from rich.markup import escape

        self.console.print(f"[cyan]$ {escape(line)}[/cyan]", soft_wrap=True)

    def upstream_calls(self) -> int:
        """Calls every emulator (and moto) has received so far."""
        total = 0
        for service in self.services.values():
            for counter in (getattr(service, "calls", None), getattr(getattr(service, "emulator", None), "calls", None)):
                if counter is not None and hasattr(counter, "values"):
                    total += sum(counter.values())
        return total


class DemoFailed(Exception):
    pass


class DemoSkipped(Exception):
    """A part that cannot run on this machine (the reason says what to install)."""


@dataclass
class PartResult:
    """One row of the closing summary."""

    name: str
    result: str  # "ok", "skipped: ...", "failed: ...", "not run"
    seconds: float = 0.0
    calls: int = 0


def run_part(demo: Demo, name: str, part: Callable[[Demo], None]) -> None:
    """Run one part, recording its result, time and upstream calls; DemoFailed propagates."""
    before, start = demo.upstream_calls(), time.perf_counter()

    def record(result: str) -> None:
        demo.results.append(PartResult(name, result, time.perf_counter() - start, demo.upstream_calls() - before))

    try:
        part(demo)
    except DemoSkipped as exc:
        demo.show(f"[yellow]skipped[/yellow]: {exc}")
        record(f"skipped: {exc}")
    except DemoFailed as exc:
        record(f"failed: {exc}")
        raise
    else:
        record("ok")


def summary(demo: Demo, planned: list[str]) -> None:
    """The closing table: part, result, time and upstream calls, every planned part included."""
    from rich.markup import escape
    from rich.table import Table

    done = {r.name for r in demo.results}
    rows = demo.results + [PartResult(name, "not run") for name in planned if name not in done]
    table = Table(title="gw demo: summary", title_justify="left")
    table.add_column("part")
    table.add_column("result")
    table.add_column("time", justify="right")
    table.add_column("upstream calls", justify="right")
    for row in rows:
        colour = "green" if row.result == "ok" else "red" if row.result.startswith("failed") else "yellow"
        first = escape(row.result.splitlines()[0] if row.result else "")
        shown = first if len(first) <= 60 else first[:57] + "..."
        timing = f"{row.seconds:.1f} s" if row.result != "not run" else "-"
        table.add_row(row.name, f"[{colour}]{shown}[/{colour}]", timing, str(row.calls) if row.result != "not run" else "-")
    demo.console.print(table)


def verdict(demo: Demo) -> int:
    """The closing line: finished only when every planned part ran; a skipped part makes it incomplete."""
    skipped = [r for r in demo.results if r.result.startswith("skipped")]
    if skipped:
        demo.console.rule(f"[bold yellow]demo incomplete: {len(skipped)} part(s) skipped "
                          f"({', '.join(r.name for r in skipped)}); see the summary for what to install")
        return 1
    demo.console.rule("[bold green]demo finished")
    return 0


def redact(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy with secret values shortened, for showing on screen."""
    shown = {}
    for key, value in doc.items():
        secret = any(word in key.lower() for word in ("secret", "token", "password", "key", "otp")) and key != "AccessKeyId"
        shown[key] = f"{value[:min(6, len(value) // 4)]}…({len(value)} chars)" if secret and isinstance(value, str) else value
    return shown
