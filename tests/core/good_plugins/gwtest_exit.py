"""A step that leaves work for the end of the process, for tests/core/test_end_process.py.

Its run registers an ``atexit`` function, starts a thread that is not a daemon when
``GWTEST_THREAD`` is set, and keeps an object whose ``__del__`` runs only in the interpreter's
teardown. Each writes a file into ``GWTEST_EXIT_DIR``.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

from gw.plugin import AWS, AwsCredentials, StepType, hookimpl, utcnow


def _mark(name: str) -> None:
    (Path(os.environ["GWTEST_EXIT_DIR"]) / name).write_text("done")


class _Teardown:
    def __del__(self) -> None:
        _mark("teardown")


_kept: list[_Teardown] = []


def _late_thread() -> None:
    time.sleep(0.3)
    _mark("thread")


def _run(ctx, options, upstream) -> AwsCredentials:
    atexit.register(_mark, "atexit")
    _kept.append(_Teardown())
    if os.environ.get("GWTEST_THREAD"):
        threading.Thread(target=_late_thread, daemon=False).start()
    now = utcnow()
    return AwsCredentials(access_key_id="ASIAEXITTEST", secret_access_key="exit-test-secret",
                          session_token="exit-test-token", issued_at=now, expiration=now + timedelta(hours=1))


@hookimpl
def gw_step_types() -> list[StepType]:
    return [StepType("test-exit", run=_run, produces=AWS)]
