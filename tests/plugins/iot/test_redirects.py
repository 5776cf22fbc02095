"""The IoT credentials provider's answer is never taken from where a redirect points, and the
DescribeEndpoint lookup says "redirect" (issue 15, finding 2). The emulators' fault injection
answers 302/307 with a ``Location`` on a tripwire listener; gw runs in-process."""

from __future__ import annotations

import pytest

from gw.plugin import RedirectRefused
from tests.redirect_checks import POLICY, STATUSES, assert_redirect_refused

from .conftest import THING, iot_profile


@pytest.mark.parametrize("status", STATUSES)
def test_credentials_provider_refuses_a_redirect(gw_home, iot, device, tripwire, status):
    gw_home.write_config(iot_profile("dev", iot.endpoint, device, thing_name=THING))
    iot.inject("credentials", status=status, location=tripwire.url(path="/role-aliases/x/credentials"))
    result = gw_home.run_in_process("credential-process", "--profile", "dev")
    line = assert_redirect_refused(result, tripwire, status=status)
    assert line.startswith(f"gw: the IoT credentials provider: https://{iot.endpoint}/role-aliases/"), line
    assert iot.calls["credentials"] == 1


@pytest.mark.parametrize("status", STATUSES)
def test_describe_endpoint_refuses_a_redirect(aws_home, iam_user, moto, monkeypatch, step_context, tripwire, status):
    """DescribeEndpoint (signed with the profile's keys) answered with a redirect: one
    RedirectRefused naming where it pointed, not botocore's parser error."""
    from gw_plugins.iot import discover_endpoint

    akid, secret = iam_user
    aws_home.aws_config.write_text("[profile lookup]\nregion = us-east-1\n")
    (aws_home.home / ".aws" / "credentials").write_text(
        f"[lookup]\naws_access_key_id = {akid}\naws_secret_access_key = {secret}\n")
    for key, value in aws_home.env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    moto.inject("/endpoint", status=status, location=tripwire.url(), count=5)
    try:
        with pytest.raises(RedirectRefused) as caught:
            discover_endpoint(step_context, "lookup", None)
    finally:
        moto.faults.clear()
    message = str(caught.value)
    assert message.startswith(f"AWS IoT DescribeEndpoint: {moto.url}/ answered {status}, a redirect to "
                              f"http://127.0.0.1:{tripwire.port} - {POLICY}"), message
    assert secret not in message and tripwire.contacts() == [] and step_context.state == {}
