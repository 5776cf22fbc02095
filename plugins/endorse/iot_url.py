"""The presigned ``wss://`` URL of AWS IoT MQTT over WebSocket (docs/protocols.md section 9).

botocore's SigV4 query signer does the signing (service ``iotdevicegateway``, signed
header ``host``, path ``/mqtt``); AWS IoT wants ``X-Amz-Security-Token`` appended
AFTER signing, so the credentials are signed without their session token. Modelled on
the AWS IoT Device SDK's websocket presigner (aws/aws-iot-device-sdk-python,
AWSIoTPythonSDK/core/protocol/connection/cores.py, ``SigV4Core.createWebsocketEndpoint``:
query X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders=host, then the signature, then
``&X-Amz-Security-Token=``), but with botocore doing the signing instead of hand-written HMACs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

SERVICE = "iotdevicegateway"
DEFAULT_EXPIRES = 300


def presign_mqtt_url(credentials: Any, endpoint: str, region: str, now: datetime | None = None,
                     expires: int = DEFAULT_EXPIRES) -> str:
    """``wss://<endpoint>/mqtt?X-Amz-...`` signed with ``credentials`` at ``now`` (default: the clock).

    ``credentials`` has ``access_key_id``, ``secret_access_key`` and optionally
    ``session_token`` (a :class:`gw.plugin.AwsCredentials`, or any object alike).
    ``endpoint`` is the ATS data endpoint host (``host:port`` allowed).
    """
    from botocore.auth import SIGV4_TIMESTAMP, SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime(SIGV4_TIMESTAMP)

    class _FixedTimeQueryAuth(SigV4QueryAuth):
        # add_auth() stamps the request with the clock and then calls this hook, which
        # adds X-Amz-Date; overriding the stamp here signs at ``now`` with botocore's code.
        def _modify_request_before_signing(self, request: Any) -> None:
            request.context["timestamp"] = stamp
            super()._modify_request_before_signing(request)

    signing = Credentials(credentials.access_key_id, credentials.secret_access_key)  # no token: see above
    request = AWSRequest(method="GET", url=f"https://{endpoint}/mqtt")
    _FixedTimeQueryAuth(signing, SERVICE, region, expires=int(expires)).add_auth(request)
    url = "wss://" + request.url[len("https://"):]
    token = getattr(credentials, "session_token", None)
    if token:
        url += "&X-Amz-Security-Token=" + quote(token, safe="")
    return url
