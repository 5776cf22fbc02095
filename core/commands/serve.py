"""``gw serve`` (the group plugins add their services to) and ``gw serve ecs``: the ECS
container-credentials endpoint (:mod:`gw.ecs_server`), also behind ``gw exec --server``."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..cli_options import freshness_options, profile_option
from ..credentials import AWS
from ..errors import ConfigError
from .base import command, group


def ecs_endpoint(ns: Any, app: Any, host: str = "127.0.0.1", port: int = 0) -> Any:
    """Check the profile once (fetching if needed) and make the endpoint serving it."""
    from ..ecs_server import DEFAULT_MIN_TTL, EcsServer

    min_ttl = ns.min_ttl or DEFAULT_MIN_TTL
    credential = app.resolve(ns.profile, require=AWS, refresh=ns.refresh, min_ttl=min_ttl)
    if not credential.session_token or credential.expiration is None:
        raise ConfigError(f"profile {ns.profile!r} yields long-term keys; the ECS endpoint serves only temporary "
                          "credentials (end the chain with session-token or assume-role)")

    def provide() -> Any:
        return app.resolve(ns.profile, require=AWS, min_ttl=min_ttl)

    return EcsServer(provide, host, port, scrub=app.ui.scrubber.scrub,
                     on_error=lambda message: app.ui.error(f"ECS endpoint: {message}"))


def configure_ecs(parser: Any) -> None:
    profile_option(parser)
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="address to listen on (default 127.0.0.1 and a free port)")
    parser.add_argument("--token-file", metavar="PATH",
                        help="write the token to PATH (0600) and print AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE instead")
    freshness_options(parser)


def serve_ecs(ns: Any, app: Any) -> int:
    import signal

    from ..ecs_server import exposure_warning, parse_listen
    from ..paths import atomic_write

    host, port = parse_listen(ns.listen)
    server = ecs_endpoint(ns, app, host, port)
    app.ui.scrubber.add(server.token)
    if warning := exposure_warning(ns.profile, host, server.port):
        app.ui.warn(warning)
    lines = [f"AWS_CONTAINER_CREDENTIALS_FULL_URI={server.url}"]
    if ns.token_file:
        path = os.path.abspath(os.path.expanduser(ns.token_file))
        atomic_write(path, server.token.encode(), 0o600)
        lines.append(f"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE={path}")
    else:
        lines.append(f"AWS_CONTAINER_AUTHORIZATION_TOKEN={server.token}")
    sys.stdout.write("\n".join(lines) + "\n")  # the token is this command's output, like a credential
    sys.stdout.flush()
    app.ui.info(f"serving profile {ns.profile!r} at {server.url}; Ctrl-C stops")
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, frame: server.stop())
    server.serve_until()
    return 0


COMMANDS = [
    group("serve", "run a local service (credentials endpoints, exchanges)",
          "Run a local service that hands out a profile's credentials.",
          "  gw serve ecs --profile deploy", metavar="SERVICE", dest="serve_action"),
    command("ecs", "an ECS container-credentials endpoint for a profile",
            "Serve the profile's credentials as an ECS container-credentials endpoint until "
            "stopped (Ctrl-C). Prints AWS_CONTAINER_CREDENTIALS_FULL_URI and the authorization "
            "token (KEY=VALUE lines, usable as docker --env-file). Listens on 127.0.0.1 unless "
            "--listen says otherwise; SDKs accept plain HTTP only for loopback addresses.",
            "  gw serve ecs --profile deploy > ecs.env\n"
            "  docker run --network host --env-file ecs.env amazon/aws-cli sts get-caller-identity\n"
            "  gw serve ecs --profile deploy --listen 127.0.0.1:9911 --token-file ~/.gw-ecs-token",
            configure_ecs, serve_ecs, group="serve"),
]
