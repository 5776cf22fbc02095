"""A scripted upstream for the hardening tests: real HTTPS on 127.0.0.1 (gw_emulators'
EmulatorServer and LocalCA) that answers every request with whatever the test set last.

Used to play a hostile or broken upstream (STS, the federation endpoint, SORACOM /v1/auth)
byte for byte: any status, any body, any header, or a dropped connection.
"""

from __future__ import annotations

import threading

from gw_emulators.httpserver import EmulatorServer, Request, Response


class ScriptedUpstream(EmulatorServer):
    name = "scripted"

    def __init__(self, ca) -> None:
        super().__init__(ca)
        self._lock = threading.Lock()
        self._answer = Response(status=500, body=b"not scripted")
        self.requests: list[Request] = []
        for method in ("GET", "POST"):
            self.route(method, r"/.*", self._reply, "any")

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None, drop: bool = False) -> None:
        with self._lock:
            self._answer = Response(status=status, body=body, headers=dict(headers or {}), drop=drop)

    def _reply(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            a = self._answer
            return Response(status=a.status, body=a.body, headers=dict(a.headers), drop=a.drop)
