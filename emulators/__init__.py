"""Local stand-ins for gw's upstreams, used by ``gw demo`` and the tests.

Each emulator follows ``docs/protocols.md`` exactly and serves real HTTP over
TLS on 127.0.0.1 with a certificate from a throwaway local CA (:mod:`.tls`).
"""
