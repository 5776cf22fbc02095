"""SORACOM: long-term credentials, API sessions and soracom-cli integration.

Step types (``steps``; protocols.md section 3):

* ``soracom-keys`` - SoracomCredentials from secret references: an AuthKey, a root
  email/password or a SAM user, plus an optional ``mfa_code`` (``totp:...``,
  ``op-otp://...``; never with an AuthKey) and ``coverage``.
* ``soracom-auth`` - ``POST /v1/auth`` (and ``/v1/auth/switch_user``) -> SoracomSession.

Commands (``cli``): ``gw soracom`` (soracom-cli with the cached session),
``gw soracom-profile`` (the stdout of a soracom-cli ``profileCommand``),
``gw soracom-token`` and ``gw setup soracom`` (writes ``~/.soracom/NAME.json``).
HTTP calls are in ``api``; soracom-cli's splitting and naming rules in ``profile_command``.
The hooks (``hooks``, the entry point) include ``gw_cache_cleared``, which logs a dropped
SoracomSession out upstream. ``gw soracom`` runs soracom-cli through ``runner`` and ``forwarder``,
which import only the standard library: this package's ``__init__`` imports nothing, so the
fast path can load the runner without gw.plugin or pluggy.
"""
