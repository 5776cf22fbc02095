"""gw.commands.serve: the ``gw serve`` group and ``gw serve ecs`` (in-process; the endpoint itself:
tests/core/test_ecs_server.py)."""

from __future__ import annotations


def test_serve_ecs_needs_temporary_credentials(keys_home):
    result = keys_home.run_in_process("serve", "ecs", "--profile", "keys")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("gw: profile 'keys' yields long-term keys;")


def test_serve_ecs_refuses_a_bad_listen_address_before_anything_runs(keys_home):
    result = keys_home.run_in_process("serve", "ecs", "--profile", "keys", "--listen", "127.0.0.1:http")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "gw: --listen '127.0.0.1:http': the port must be a number from 0 to 65535\n"


def test_serve_without_a_service_is_a_usage_error(keys_home):
    result = keys_home.run_in_process("serve")
    assert result.returncode == 2
    assert "the following arguments are required: SERVICE" in result.stderr
