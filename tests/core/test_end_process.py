"""How a real ``credential-process`` / ``token`` process ends after a cache miss (gw.cli.end_process).

Once the answer is out, the process ends with ``os._exit`` after flushing its streams and running
its ``atexit`` functions: the interpreter's teardown (freeing every module) is skipped. It exits
the usual way while a thread that is not a daemon still runs, and under a profiler. Real gw
processes through the launcher: what is tested is the end of a process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gw.testing import gw_executable

PLUGINS = Path(__file__).resolve().parent / "good_plugins"


@pytest.fixture
def home(gw_home, tmp_path):
    gw_home.load_plugin("gwtest_exit", PLUGINS)
    marks = tmp_path / "marks"
    marks.mkdir()
    gw_home.env["GWTEST_EXIT_DIR"] = str(marks)
    gw_home.write_config('[profiles.x]\nsteps = [{ use = "test-exit" }]\n')
    return gw_home, marks


def _answer(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return json.loads(proc.stdout)


def test_a_miss_ends_at_once_after_its_answer_and_atexit(home):
    gw_home, marks = home
    answer = _answer(gw_home.run("credential-process", "--profile", "x"))
    assert answer["AccessKeyId"] == "ASIAEXITTEST"
    assert (marks / "atexit").exists()  # atexit functions ran, as at a normal exit
    assert not (marks / "teardown").exists()  # the teardown did not: the process ended right there
    assert _answer(gw_home.run("credential-process", "--profile", "x")) == answer  # the entry was written whole


def test_a_thread_that_is_not_a_daemon_is_waited_for(home):
    gw_home, marks = home
    _answer(gw_home.run("credential-process", "--profile", "x", env={"GWTEST_THREAD": "1"}))
    assert (marks / "thread").read_text() == "done"
    assert (marks / "atexit").exists()
    assert (marks / "teardown").exists()  # the usual exit


def test_a_profiler_gets_to_write_its_results(home, tmp_path):
    gw_home, marks = home
    stats = tmp_path / "gw.pstats"
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats), gw_executable(),
                           "credential-process", "--profile", "x"],
                          env=gw_home.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    _answer(proc)
    assert stats.stat().st_size > 0
