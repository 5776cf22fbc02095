"""Property-based runs of the SSO flow (in-process) over whatever the OIDC service and the
portal answer: a scripted HTTPS server on 127.0.0.1 plays ``/token`` (a refresh) and
``/federation/credentials`` with any status and any JSON document (odd types, huge numbers,
echoed secrets). For every pair of answers, getting role credentials must either return
sane credentials or raise one :class:`gw.plugin.GwError` line, never another exception, and
never name the cached token, refresh token or client secret, even when the answer echoes them.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gw.plugin import AwsCredentials, GwError
from gw.testing import StubStepContext
from gw_emulators.httpserver import EmulatorServer, Request, Response, json_response
from gw_plugins.sso import oidc, tokens
from gw_plugins.sso.flow import role_credentials
from gw_plugins.sso.oidc import SsoSession
from tests.plugins.sso.conftest import START_URL

SECRETS = {"access": "aoa-cached-access-token-0123456789", "refresh": "aor-cached-refresh-token-0123456789",
           "client": "csecret-cached-client-secret-0123456789"}
KEYS = ["accessToken", "expiresIn", "refreshToken", "tokenType", "error", "error_description", "roleCredentials",
        "accessKeyId", "secretAccessKey", "sessionToken", "expiration", "message"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from([*SECRETS.values(), "authorization_pending", "invalid_grant"]))
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=6)), max_leaves=12)


def _plausible_role() -> st.SearchStrategy:
    """Mostly well-formed role credentials with one member varied, so the happy path is reached too."""
    good = {"accessKeyId": st.just("ASIAEXAMPLEEXAMPLE"), "secretAccessKey": st.just("s" * 40),
            "sessionToken": st.just("t" * 80),
            "expiration": st.integers(0, 2**45).map(lambda ms: int(time.time() * 1000) + ms - 2**40)}
    return st.fixed_dictionaries({k: st.one_of(v, JSONISH) for k, v in good.items()}).map(
        lambda c: {"roleCredentials": c})


ANSWERS = st.tuples(st.sampled_from([200, 200, 400, 401, 403, 404, 429, 500]),
                    st.one_of(JSONISH, _plausible_role(), st.just(b"\x00garbage")))


class Scripted(EmulatorServer):
    name = "sso-scripted"

    def __init__(self, ca) -> None:
        super().__init__(ca)
        self.answers: dict[str, tuple[int, object]] = {}
        self.route("POST", r"/token", lambda r: self._answer("token", r), "token")
        self.route("GET", r"/federation/credentials", lambda r: self._answer("role", r), "role")
        self.route("GET", r"/assignment/.*", lambda r: json_response(200, {}), "lists")

    def _answer(self, name: str, request: Request) -> Response:
        status, body = self.answers[name]
        if isinstance(body, bytes):
            return Response(status, body, {"Content-Type": "application/json"})
        return json_response(status, body, {"x-amzn-ErrorType": "SomethingException"} if status != 200 else None)


@pytest.fixture(scope="module")
def scripted(ca):
    with Scripted(ca) as server:
        yield server


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=ANSWERS, role=ANSWERS)
def test_any_answers_give_credentials_or_one_clean_error(scripted, ca, tmp_path_factory, token, role):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setattr(oidc, "RETRIES", 0)
        tokens.save("work", tokens.Token(START_URL, "us-east-1", SECRETS["access"], time.time() + 300,
                                         SECRETS["refresh"], "cid", SECRETS["client"], time.time() + 86400))
        scripted.answers = {"token": token, "role": role}
        ctx = StubStepContext(home, plugin="sso", tls_verify=str(ca.ca_path))
        session = SsoSession(start_url=START_URL, region="us-east-1", name="work", oidc_endpoint=scripted.url,
                             portal_endpoint=scripted.url)
        try:
            credentials = role_credentials(ctx, session, "111111111111", "ReadOnly")
        except GwError as exc:
            event(f"one line: {type(exc).__name__}")
            message = str(exc)
            assert "\n" not in message and message
            for value in SECRETS.values():
                assert value not in message and value[-12:] not in message
            return
    event("credentials")
    assert isinstance(credentials, AwsCredentials)
    assert credentials.access_key_id and credentials.secret_access_key and credentials.session_token
    assert credentials.expiration is not None and credentials.expiration.timestamp() > time.time()
