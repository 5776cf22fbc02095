"""The local forwarder of ``gw soracom``: soracom-cli gets the session without seeing it.

soracom-cli takes an API key and token only as ``--api-key``/``--api-token`` (docs/protocols.md
§3), and an argv is readable by every local user. So the forwarder listens on 127.0.0.1 (an
ephemeral port), each call points its child's ``SORACOM_ENDPOINT`` at it and hands it the
random placeholders of the :class:`Session` it registered. It runs in the user's daemon
(:mod:`.daemon`), serving every call at once, or inside one gw when no daemon can run.
A request is forwarded only when

* it comes from a process of gw's own user: the peer socket's owner, looked up by its address
  pair (sock_diag netlink, else ``/proc/net/tcp`` and ``tcp6``), is gw's uid; and
* it carries both placeholders of a registered session, and its path is under ``/v1/``.

Then the real ``X-Soracom-API-Key``/``X-Soracom-Token`` replace the placeholders and the
request goes over verified TLS to the session's endpoint, over a warm connection when one
is alive; a redirect is never followed (the child gets a 421 naming the host). Everything
else gets a 403 and is forwarded nowhere. One request per connection, a deadline for the
whole request, a bounded number of connections, and no traceback ever. Standard library only.
"""

from __future__ import annotations

import _socket  # socket itself would load enum and selectors
import os
import sys
import threading
import time

TYPE_CHECKING = False  # typing itself costs more than this whole module
if TYPE_CHECKING:
    from .upstream import Connection

MAX_HEAD = 64 * 1024  # request line and headers
MAX_BODY = 16 * 1024 * 1024
MAX_ANSWER = 64 * 1024 * 1024
MAX_CONNECTIONS = 64  # requests in flight, all calls together
REQUEST_DEADLINE = 30.0  # seconds for the child to send one whole request
UPSTREAM_TIMEOUT = 60.0
IDLE_REUSE = 50.0  # seconds an upstream connection may idle and still be reused (servers keep 60 s or more)
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length"})
KEY_HEADER, TOKEN_HEADER = "x-soracom-api-key", "x-soracom-token"
SESSION_REFUSED = "AUM0004"  # "Invalid API key or token" (docs/protocols.md §3)
LOGOUT_PATH = "/v1/auth/logout"
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def _loopback_hex() -> set[str]:
    """127.0.0.1 as /proc/net/tcp prints it (a host-order u32), and as tcp6 prints it (v4-mapped)."""
    v4 = format(int.from_bytes(_socket.inet_aton("127.0.0.1"), sys.byteorder), "08X")
    mapped = "".join(format(int.from_bytes(word, sys.byteorder), "08X")
                     for word in (b"\0\0\0\0", b"\0\0\0\0", b"\0\0\xff\xff", _socket.inet_aton("127.0.0.1")))
    return {v4, mapped}


def peer_uid(peer_port: int, our_port: int) -> int | None:
    """The uid owning the loopback socket 127.0.0.1:``peer_port`` connected to our ``our_port``.

    Asked of the kernel by the exact address pair over sock_diag netlink (what ``ss`` uses, no
    privilege needed), else read from ``/proc/net/tcp`` and ``tcp6`` (each read of those walks
    the kernel's whole TCP hash table: milliseconds per connection on a busy machine).
    """
    try:
        return diag_uid(peer_port, our_port)
    except (OSError, AttributeError):  # no netlink here (another OS, a sandbox)
        return proc_uid(peer_port, our_port)


NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, IPPROTO_TCP, TCP_ESTABLISHED = 4, 20, 1, 6, 1


def diag_uid(peer_port: int, our_port: int) -> int | None:
    """The socket's owner by a sock_diag lookup (linux/inet_diag.h); OSError when netlink is unavailable."""
    from _struct import pack, unpack_from

    loopback = _socket.inet_aton("127.0.0.1") + bytes(12)
    sock_id = pack(">HH", peer_port, our_port) + loopback + loopback + pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF)
    request = pack("=BBBBI", _socket.AF_INET, IPPROTO_TCP, 0, 0, 1 << TCP_ESTABLISHED) + sock_id
    netlink = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    try:
        netlink.settimeout(2.0)
        netlink.send(pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0) + request)
        answer = netlink.recv(65536)
    finally:
        netlink.close()
    if len(answer) < 16 + 72 or unpack_from("=H", answer, 4)[0] != SOCK_DIAG_BY_FAMILY:
        return None  # NLMSG_ERROR (no such socket)
    state = answer[17]
    sport, dport = unpack_from(">HH", answer, 20)
    uid = unpack_from("=I", answer, 16 + 64)[0]
    return uid if (state, sport, dport) == (TCP_ESTABLISHED, peer_port, our_port) else None


def proc_uid(peer_port: int, our_port: int) -> int | None:
    """The socket's owner as ``/proc/net/tcp`` (and ``tcp6``) list it."""
    loopback = _loopback_hex()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    if len(fields) < 8:
                        continue
                    local, _, lport = fields[1].partition(":")
                    remote, _, rport = fields[2].partition(":")
                    if (int(lport, 16) == peer_port and int(rport, 16) == our_port and local in loopback
                            and remote in loopback):
                        return int(fields[7])
        except (OSError, ValueError):
            continue
    return None


def normalise_endpoint(endpoint: str) -> str:
    """An API base without a trailing ``/`` or ``/v1`` (soracom-cli and gw append ``/v1``)."""
    base = endpoint.strip().rstrip("/")
    while base.endswith("/v1"):
        base = base[: -len("/v1")].rstrip("/")
    return base


def split_https_url(url: str) -> tuple[str, int, str]:
    """(host, port, path) of an ``https://`` URL (no query); ValueError for anything else."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "https" or not sep or "?" in rest or "#" in rest or "@" in rest:
        raise ValueError("the SORACOM endpoint must be an https URL")
    authority, slash, path = rest.partition("/")
    host, port = authority, "443"
    if authority.startswith("["):
        host, _, after = authority[1:].partition("]")
        port = after[1:] if after.startswith(":") else ("443" if not after else "")
    elif ":" in authority:
        host, _, port = authority.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("the SORACOM endpoint must be an https URL")
    return host, int(port), (slash + path).rstrip("/")


def _b64url(data: bytes) -> str:
    from binascii import b2a_base64

    return b2a_base64(data, newline=False).decode().rstrip("=").replace("+", "-").replace("/", "_")


def _json_string(text: str) -> str:
    """``text`` as a JSON string (json itself would import re: not on the fast path)."""
    return '"' + "".join(c if c.isalnum() and c.isascii() else f"\\u{ord(c):04x}" for c in text) + '"'


def token_placeholder(operator_id: str) -> str:
    """A random stand-in token shaped as soracom-cli expects: it reads the operator ID from the
    second dot-separated part of the token (auth_helper.go extractOperatorIDFromAPIToken), so that
    part carries ``{"operator": {"operatorId": ...}}`` and nothing else; the rest is random."""
    payload = '{"operator":{"operatorId":' + _json_string(operator_id) + "}}"
    return f"gw-placeholder.{_b64url(payload.encode())}.{os.urandom(24).hex()}"


def _answer(status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def _error(status: int, code: str, message: str) -> bytes:
    import json

    body = json.dumps({"code": code, "message": message}).encode()
    reason = {403: "Forbidden", 400: "Bad Request", 411: "Length Required", 413: "Payload Too Large", 421: "Misdirected Request",
              502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
    return _answer(status, reason, [("Content-Type", "application/json")], body)


def _refused_code(status: int, body: bytes) -> str | None:
    """"HTTP 401" or the API's code when the answer says the session is not (or no longer) valid."""
    if status < 400:
        return None
    import json

    code = None
    if body[:1] == b"{" and len(body) < 65536:
        try:
            doc = json.loads(body)
            code = doc.get("code") if isinstance(doc, dict) else None
        except ValueError:
            code = None
    if code == SESSION_REFUSED or status == 401:
        return f"HTTP {status}" + (f" {code[:40]}" if isinstance(code, str) and code.isprintable() else "")
    return None


class BadRequest(Exception):
    """A request the forwarder answers itself (status, code, message)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.answer = _error(status, code, message)


def _read_request(conn: _socket.socket, deadline: float) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """(method, target, headers, body) of one HTTP/1.1 request, within ``deadline``."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEAD:
            raise BadRequest(400, "GW-FWD-HEAD", "request head too large")
        data += _recv(conn, deadline)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "GW-FWD-REQUEST", "not an HTTP/1.x request")
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "GW-FWD-HEADER", "malformed header line")
        headers.append((name, value.strip()))
    names = {k.lower() for k, _ in headers}
    if "transfer-encoding" in names:
        raise BadRequest(411, "GW-FWD-LENGTH", "chunked request bodies are not forwarded: send Content-Length")
    lengths = [v for k, v in headers if k.lower() == "content-length"]
    if len(set(lengths)) > 1 or (lengths and not lengths[0].isdigit()):
        raise BadRequest(400, "GW-FWD-LENGTH", "bad Content-Length")
    length = int(lengths[0]) if lengths else 0
    if length > MAX_BODY:
        raise BadRequest(413, "GW-FWD-BODY", "request body too large")
    while len(body) < length:
        body += _recv(conn, deadline)
    return parts[0], parts[1], headers, body[:length]


def _recv(conn: _socket.socket, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    conn.settimeout(left)
    chunk = conn.recv(65536)
    if not chunk:
        raise ConnectionError
    return chunk


class Session:
    """One call's registration: the real session, its placeholders and what the API said.

    ``tls`` is ``(cafile, capath)`` for the verifying context (both None: the system's trust
    store). ``on_refused_first`` is called from a worker thread when the first request is
    refused; it returns once the child is stopped (the refusal is then never answered).
    ``on_event`` hears of a later refusal, a logout and notes, before the child has the answer.
    """

    def __init__(self, endpoint: str, api_key: str, token: str, tls: tuple[str | None, str | None],
                 operator_id: str = "") -> None:
        self.host, self.port, self.base_path = split_https_url(normalise_endpoint(endpoint))
        self.secrets = (api_key, token)
        self.tls = tls
        self.key_placeholder = "gw-placeholder-" + os.urandom(24).hex()
        self.token_placeholder = token_placeholder(operator_id)
        self.answered = 0
        self.refused_first: str | None = None
        self.refused_later: str | None = None
        self.logged_out = False
        self.notes: list[str] = []
        self.on_refused_first: object = None
        self.on_event: object = None  # called with ("later", code), ("logout",) or ("note", text)

    def report(self, *event: str) -> None:
        if callable(self.on_event):
            self.on_event(*event)

    @property
    def upstream(self) -> tuple[str, int, tuple[str | None, str | None]]:
        return self.host, self.port, self.tls


def tls_of(verify: bool | str) -> tuple[str | None, str | None]:
    """``(cafile, capath)`` for a ``verify`` of True (the system's trust store) or a CA bundle path."""
    return (verify, None) if isinstance(verify, str) else (None, None)


def tls_from(bundle: str, env_file: str, env_dir: str) -> tuple[str | None, str | None]:
    """``(cafile, capath)`` as a call would verify: its CA bundle alone, else its ``SSL_CERT_FILE``
    and ``SSL_CERT_DIR`` in place of OpenSSL's defaults (as OpenSSL reads them), else the
    system's trust store ``(None, None)``. The daemon runs with an empty environment."""
    if bundle:
        return bundle, None
    if not env_file and not env_dir:
        return None, None
    import ssl

    defaults = ssl.get_default_verify_paths()
    cafile = env_file or (defaults.openssl_cafile if os.path.isfile(defaults.openssl_cafile) else None)
    capath = env_dir or (defaults.openssl_capath if os.path.isdir(defaults.openssl_capath) else None)
    return cafile, capath


class Forwarder:
    """The listener on 127.0.0.1 serving any number of registered :class:`Session`\\ s (the
    daemon's, or one call's own when no daemon can run); see the module docstring.
    ``start`` it, ``register`` a call, give its child ``url`` and the placeholders,
    ``unregister`` it when the child has exited; ``close`` ends everything."""

    def __init__(self) -> None:
        listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self._listener: object = listener
        self.port = listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._uid = os.getuid()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._contexts: dict[tuple[str | None, str | None], object] = {}
        self._idle: dict[tuple[str, int, tuple[str | None, str | None]], list[tuple[Connection, float]]] = {}
        self._closed = False

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> Forwarder:
        threading.Thread(target=self._accept_loop, name="gw-forwarder", daemon=True).start()
        return self

    def close(self) -> None:
        self._closed = True
        listener = self._listener
        try:
            listener.shutdown(_socket.SHUT_RDWR)  # type: ignore[attr-defined]  # wakes a blocked accept()
        except OSError:
            pass
        try:
            listener.close()  # type: ignore[attr-defined]
        except OSError:
            pass
        with self._lock:
            idle, self._idle = self._idle, {}
            self._sessions.clear()
        for conns in idle.values():
            for conn, _ in conns:
                conn.close()

    def register(self, endpoint: str, api_key: str, token: str, verify: bool | str | tuple[str | None, str | None],
                 operator_id: str = "") -> Session:
        """A new session with fresh placeholders (ValueError: not an https endpoint), warmed up."""
        tls = verify if isinstance(verify, tuple) else tls_of(verify)
        session = Session(endpoint, api_key, token, tls, operator_id)
        with self._lock:
            self._sessions[session.key_placeholder] = session
            warm = not any(True for _, since in self._idle.get(session.upstream, ())
                           if time.monotonic() - since <= IDLE_REUSE)
        if warm:  # the child starts meanwhile
            threading.Thread(target=self._warm_up, args=(session,), name="gw-forwarder-tls", daemon=True).start()
        return session

    def unregister(self, session: Session) -> None:
        """From now on the session's placeholders are refused."""
        with self._lock:
            self._sessions.pop(session.key_placeholder, None)

    @property
    def sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _context(self, tls: tuple[str | None, str | None]) -> object:
        with self._lock:
            context = self._contexts.get(tls)
        if context is None:
            from .upstream import tls_client

            context = tls_client(*tls)
            with self._lock:
                self._contexts[tls] = context
        return context

    def _warm_up(self, session: Session) -> None:
        """Load ssl, build the verifying context and open one upstream connection (while the child starts)."""
        try:
            from .upstream import Connection

            conn = Connection(session.host, session.port, self._context(session.tls), UPSTREAM_TIMEOUT)  # type: ignore[arg-type]
            self._park(session, conn)
        except Exception:  # noqa: BLE001 - the request that needs it reports the failure
            pass

    def _park(self, session: Session, conn: Connection) -> None:
        if conn.reusable and not self._closed:
            with self._lock:
                self._idle.setdefault(session.upstream, []).append((conn, time.monotonic()))
        else:
            conn.close()

    def _accept_loop(self) -> None:
        listener = self._listener
        while not self._closed:
            try:
                fd, peer = listener._accept()  # type: ignore[attr-defined]  # _socket's accept: (fd, address)
            except OSError:
                if self._closed:
                    return
                time.sleep(0.05)  # out of file descriptors, say: not a reason to stop serving
                continue
            conn = _socket.socket(fileno=fd)
            if not self._slots.acquire(blocking=False):
                self._send_quietly(conn, _error(503, "GW-FWD-BUSY", "too many connections"))
                continue
            threading.Thread(target=self._serve, args=(conn, peer), name="gw-forwarder-conn", daemon=True).start()

    @staticmethod
    def _send_quietly(conn: _socket.socket, data: bytes) -> None:
        try:
            conn.settimeout(2.0)
            conn.sendall(data)
        except OSError:
            pass
        finally:
            conn.close()

    # -- one connection ------------------------------------------------------------------------
    def _serve(self, conn: _socket.socket, peer: tuple[str, int]) -> None:
        try:
            answer = self._handle(conn, peer)
            if answer is not None:
                self._send_quietly(conn, answer)
            else:
                conn.close()
        except BaseException:  # noqa: BLE001 - quiet: a worker never prints a traceback
            conn.close()
        finally:
            self._slots.release()

    def _handle(self, conn: _socket.socket, peer: tuple[str, int]) -> bytes | None:
        if peer_uid(peer[1], self.port) != self._uid:
            return _error(403, "GW-FWD-PEER", "refused: the connection is not from gw's own user")
        try:
            method, target, headers, body = _read_request(conn, time.monotonic() + REQUEST_DEADLINE)
        except BadRequest as exc:
            return exc.answer
        except (OSError, ConnectionError, TimeoutError, UnicodeError):
            return None
        session = self._session_for(headers)
        if session is None or not target.startswith("/v1/"):
            return _error(403, "GW-FWD-PLACEHOLDER", "refused: not the key and token gw handed to this call")
        return self._forward(session, method, target, headers, body)

    def _session_for(self, headers: list[tuple[str, str]]) -> Session | None:
        """The live session whose two placeholders the request carries (each exactly once)."""
        from _operator import _compare_digest as compare_digest  # what hmac.compare_digest is (hmac loads hashlib)

        keys = [v for k, v in headers if k.lower() == KEY_HEADER]
        tokens = [v for k, v in headers if k.lower() == TOKEN_HEADER]
        if len(keys) != 1 or len(tokens) != 1:
            return None
        with self._lock:  # placeholders are 192 random bits: a dict lookup leaks nothing useful
            session = self._sessions.get(keys[0])
        if session is None or not compare_digest(tokens[0].encode(), session.token_placeholder.encode()):
            return None
        return session

    def _forward(self, session: Session, method: str, target: str, headers: list[tuple[str, str]],
                 body: bytes) -> bytes | None:
        sent = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() not in (KEY_HEADER, TOKEN_HEADER)]
        sent += [("X-Soracom-API-Key", session.secrets[0]), ("X-Soracom-Token", session.secrets[1])]
        if body or method in ("POST", "PUT", "PATCH"):
            sent.append(("Content-Length", str(len(body))))
        try:
            status, reason, answer_headers, data = self._exchange(session, method, session.base_path + target, sent, body)
        except Exception as exc:  # noqa: BLE001 - one line for the child, nothing else
            return _error(502, "GW-FWD-UPSTREAM",
                          f"gw could not reach the SORACOM API at {session.host}: {_reason(exc)}")
        if 300 <= status < 400:
            where = _location_host(answer_headers)
            note = f"the SORACOM API answered HTTP {status} redirecting to {where}; not followed"
            with self._lock:
                session.answered += 1
                session.notes.append(note)
            session.report("note", note)
            # 421, not 5xx: soracom-cli retries 429 and 5xx answers (apiclient.go), a redirect must not be retried
            return _error(421, "GW-FWD-REDIRECT", f"gw does not follow redirects: the SORACOM API pointed to {where}")
        refused = _refused_code(status, data)
        events: list[tuple[str, ...]] = []
        with self._lock:
            if refused and session.answered == 0 and session.refused_first is None:
                session.refused_first = refused  # nothing ran yet: the child is ended, the call retried
                callback = session.on_refused_first
            else:
                callback = None
                session.answered += 1
                if refused and session.refused_later is None:
                    session.refused_later = refused
                    events.append(("later", refused))
                if method == "POST" and target.partition("?")[0] == LOGOUT_PATH and status in (200, 204):
                    session.logged_out = True
                    events.append(("logout",))
        if callable(callback):
            callback()
            return None
        for event in events:  # told before the child has its answer: by the time it exits, gw knows
            session.report(*event)
        kept = [(k, v) for k, v in answer_headers if k.lower() not in HOP_BY_HOP]
        return _answer(status, reason, kept, data)

    def _exchange(self, session: Session, method: str, path: str, headers: list[tuple[str, str]],
                  body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """One request upstream: over a warm connection when one is alive, else a new one. A warm
        connection that fails before any answer byte (the server's keep-alive ended meanwhile) is
        replaced once: when the request did not go out whole, or its method is idempotent (a
        POST that may have arrived is not sent twice); a new one's failure is the answer."""
        from .upstream import Connection

        while True:
            conn = None
            with self._lock:
                idle = self._idle.get(session.upstream, [])
                while idle and conn is None:
                    candidate, since = idle.pop()
                    if time.monotonic() - since <= IDLE_REUSE and candidate.alive():
                        conn = candidate
                    else:
                        candidate.close()
            reused = conn is not None
            if conn is None:
                conn = Connection(session.host, session.port, self._context(session.tls), UPSTREAM_TIMEOUT)  # type: ignore[arg-type]
            try:
                result = conn.request(method, path, headers, body, MAX_ANSWER)
            except Exception as exc:
                conn.close()
                if (reused and not conn.answered and not isinstance(exc, TimeoutError)
                        and (not conn.sent or method in IDEMPOTENT)):
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            self._park(session, conn)
            return result


def _location_host(headers: list[tuple[str, str]]) -> str:
    for name, value in headers:
        if name.lower() == "location":
            scheme, sep, rest = value.partition("://")
            host = rest.partition("/")[0].rpartition("@")[2] if sep else ""
            return (host or "the same host")[:100].encode("ascii", "replace").decode()
    return "no location"


def _reason(exc: BaseException) -> str:
    import _ssl

    if isinstance(exc, _ssl.SSLError):
        return "TLS failure (check the endpoint and settings.ca_bundle)"
    if isinstance(exc, TimeoutError):
        return f"no answer within {UPSTREAM_TIMEOUT:g} s"
    return "connection failed" if isinstance(exc, OSError) else type(exc).__name__
