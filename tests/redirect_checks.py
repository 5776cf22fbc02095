"""The check every redirect test makes (issue 15, finding 2): no request that carries a
secret, or whose answer decides trust, follows a redirect.

An upstream's fault injection answers 302 or 307 with a ``Location`` on a
:class:`gw_emulators.httpserver.Tripwire` (another listener on 127.0.0.1). The gw run must
then exit non-zero with exactly one line, which names where the redirect pointed, the
tripwire must have received nothing, and no secret may show in any form.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable

from gw.ui import Scrubber

STATUSES = (302, 307)
POLICY = "gw does not follow redirects for requests that carry secrets or decide trust"


def secret_forms(secret: str) -> set[str]:
    """The forms gw's scrubber knows (raw, repr, JSON, URL-encoded ...), 8 characters or more."""
    return {form for form in Scrubber.forms(secret) if len(form) >= 8}


def assert_redirect_refused(result: subprocess.CompletedProcess, tripwire, secrets: Iterable[str] = (),
                            *, status: int | None = None, warning: bool = False, notices: tuple[str, ...] = ()) -> str:
    """The run refused the redirect: one line naming the tripwire, nothing sent there, no secret.

    ``warning``: the refusal is a warning of a command that goes on (``gw cache clear``'s
    logout), not its failure. ``notices``: starts of lines the setup itself prints (the
    emulated SIM's notice), left out of the count. Returns the line.
    """
    target = f"a redirect to http://127.0.0.1:{tripwire.port}"
    assert tripwire.contacts() == [], "the redirect was followed: the other host was contacted"
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith(notices)]
    assert len(lines) == 1, result.stderr
    (line,) = lines
    if warning:
        assert line.startswith("gw: warning: "), line
    else:
        assert result.returncode != 0 and result.stdout == "", (result.returncode, result.stdout)
        assert line.startswith("gw: ") and not line.startswith("gw: warning: "), line
    assert target in line and POLICY in line, line
    if status is not None:
        assert f"answered {status}, " in line, line
    for secret in secrets:
        for form in secret_forms(secret):
            assert form not in result.stderr and form not in result.stdout, "a secret was printed"
    return line
