"""Installs the loopback-only bind guard in every Python process the tests start (loopback_only.py)."""

import loopback_only

loopback_only.install()
