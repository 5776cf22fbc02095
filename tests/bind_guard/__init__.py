"""Tests bind loopback only (issue 15.8): see loopback_only.py."""
