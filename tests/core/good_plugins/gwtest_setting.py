"""A plugin with ``[settings]`` keys of its own (``gw_settings``), for tests/core/test_plugin_settings.py:
a step and a command that read them with ``ctx.setting``."""

from __future__ import annotations

from gw.plugin import AWS, AwsCredentials, Command, Option, Setting, StepType, hookimpl


@hookimpl
def gw_settings() -> list[Setting]:
    return [
        Setting("gwtest_greeting", Option(str, default="hello", help="what the test step says")),
        Setting("gwtest_level", Option(int, default=1, choices=(1, 2, 3))),
    ]


def _run(ctx, options, upstream) -> AwsCredentials:
    return AwsCredentials(access_key_id="AKIAGWTESTSETTING000",
                          secret_access_key=f"{ctx.setting('gwtest_greeting')}-{ctx.setting('gwtest_level')}")


def _show(args, ctx) -> int:
    ctx.emit(f"{ctx.setting('gwtest_greeting')} {ctx.setting('gwtest_level')}")
    return 0


@hookimpl
def gw_step_types() -> list[StepType]:
    return [StepType("gwtest-setting-keys", run=_run, produces=AWS)]


@hookimpl
def gw_commands() -> list[Command]:
    return [Command("gwtest-settings", help="print the test plugin's settings", configure=lambda parser: None,
                    run=_show, description="Print gwtest_greeting and gwtest_level.",
                    epilog="examples:\n  gw gwtest-settings")]
