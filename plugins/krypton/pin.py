"""The SIM's PIN1 as gw's second factor for Krypton, and ``gw krypton pin status|enable|disable|change``.

The card enforces it: with PIN1 enabled a USIM refuses EF_IMSI and AUTHENTICATE (``69 82``)
until VERIFY succeeds, and blocks after three wrong PINs. gw sends exactly one VERIFY per run
and never retries it: a wrong PIN is one line with the tries left. With one try left it asks
the person at the terminal before sending (and refuses without one). The PIN is resolved only
once the card says it needs it, is registered as a secret (scrubbed from every message) and is
never cached, stored or logged.
"""

from __future__ import annotations

import re
from typing import Any

from gw.plugin import GwError, StepError, UsageError, profile_option

_LITERAL = re.compile(r"\d{4,8}\Z")
_YES = ("y", "yes")


def _confirm_last_try(ask: Any, name: str, action: str) -> None:
    """Ask before spending PIN1's last try; refuse without a terminal."""
    question = (f"The SIM in {name} has ONE PIN try left: a wrong PIN blocks it and only the PUK "
                f"unblocks it. {action} now? [y/N] ")
    try:
        answer = ask(question, secret=False)
    except GwError:
        raise StepError(
            f"the SIM in {name} has one PIN try left; gw sends the PIN then only after you confirm "
            "at a terminal, and there is none: run the command in a terminal"
        ) from None
    if answer.strip().lower() not in _YES:
        raise StepError(f"PIN not sent: the SIM in {name} keeps its last try")


def _resolve_pin(ctx: Any, ref: str, tries: int) -> str:
    plural = "try" if tries == 1 else "tries"
    if _LITERAL.match(ref):  # already resolved by the core (every string option may be a reference)
        pin = ref
    else:
        pin = ctx.resolve_secret(ref, label=f"SIM PIN ({tries} {plural} left)")
    ctx.add_secret(pin)
    return pin


def unlock(ctx: Any, sim: Any, ref: str | None) -> None:
    """Verify PIN1 when the step has a ``pin`` and the card asks for it: at most one VERIFY."""
    if not ref:
        return  # the card says whether it needed one: see read_imsi
    tries = sim.pin_tries()  # VERIFY without data: spends no try
    if tries is None:
        return  # PIN1 disabled (or still verified): nothing to send
    if tries == 1:
        _confirm_last_try(ctx.ask, sim.name, "Send the PIN")
    sim.verify_pin(_resolve_pin(ctx, ref, tries))


def read_imsi(sim: Any, ref: str | None) -> str:
    """The IMSI; a card that wants a PIN the step does not give is one clear line (no VERIFY sent)."""
    from .sim import PinRequired

    try:
        return str(sim.imsi())
    except PinRequired:
        if ref:
            raise
        raise StepError(
            f"the SIM in {sim.name} has its PIN1 enabled and this krypton step has no pin: add "
            'pin = "prompt" (or a vault:/op:// reference) to the step; no PIN was sent'
        ) from None


# -- gw krypton pin ---------------------------------------------------------------------
def configure_pin_parser(actions: Any) -> None:
    """Add ``pin status|enable|disable|change`` under ``gw krypton``."""
    import argparse
    import textwrap

    pin = actions.add_parser(
        "pin",
        help="the SIM's PIN1: status (tries left), enable, disable, change",
        description=textwrap.fill(
            "Show or change the SIM's PIN1 (the second factor of the Krypton login) in the reader of the "
            "profile's krypton step (PC/SC or modem; --reader overrides it). status prints whether PIN1 "
            "is enabled and the tries left, and spends no try; enable, disable and change ask for the "
            "PIN(s) on the terminal, send one command, ask before the last try, and never print a PIN. "
            "Three wrong PINs block the SIM: only its PUK unblocks it.",
            width=88,
        ),
        epilog="examples:\n  gw krypton pin status --profile sim\n  gw krypton pin enable --profile sim\n"
               "  gw krypton pin change --profile sim\n"
               "  gw krypton pin status --profile sim --reader 'pcsc:Gemalto PC Twin Reader 00 00'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pin.add_argument("pin_action", choices=("status", "enable", "disable", "change"), metavar="ACTION",
                     help="status | enable | disable | change")
    profile_option(pin, "profile whose krypton step names the reader")
    pin.add_argument("--reader", help="override the step's reader (pcsc:<name>, modem:<device> ...)")


def _state_line(state: Any) -> str:
    if state.blocked:
        return "PIN1 blocked: unblock it with the SIM's PUK"
    if not state.enabled:
        return "PIN1 disabled: whoever holds the SIM can use it"
    tries = "" if state.tries_left is None else f", {state.tries_left} {'try' if state.tries_left == 1 else 'tries'} left"
    return f"PIN1 enabled{tries}"


def _ask_pin(app: Any, label: str) -> str:
    from .sim import Sim

    value = app.ask(label, secret=True)
    app.add_secret(value)
    Sim._pin_block(value)  # 4 to 8 digits, else one line
    return value


def run_pin_command(args: Any, app: Any) -> int:
    """``gw krypton pin ACTION --profile P``: one PIN command at most, never the PIN printed."""
    from .readers import open_step_sim

    options = app.step_options(args.profile, "krypton")
    if args.reader:
        options["reader"] = args.reader
    if (options.get("reader") or "auto") == "cellular":
        raise UsageError("the profile's krypton step uses reader = \"cellular\": give --reader with the SIM's reader")
    ctx = app.step_context(args.profile, step="krypton")
    sim = open_step_sim(ctx, options)
    try:
        state = sim.pin_state()
        if args.pin_action == "status":
            app.emit(_state_line(state))
            return 0
        if state.blocked:
            raise StepError(_state_line(state).replace("PIN1 blocked", f"the SIM in {sim.name} has PIN1 blocked"))
        action = args.pin_action
        if action == "enable" and state.enabled:
            app.emit("PIN1 already enabled")
            return 0
        if action == "disable" and not state.enabled:
            app.emit("PIN1 already disabled")
            return 0
        if action == "change" and not state.enabled:
            raise StepError("PIN1 is disabled: enable it first (gw krypton pin enable), then change it")
        tries = state.tries_left
        if tries == 1:
            _confirm_last_try(app.ask, sim.name, f"{action.capitalize()} the PIN")
        current = _ask_pin(app, "Current SIM PIN: ")
        if action == "change":
            new = _ask_pin(app, "New SIM PIN (4-8 digits): ")
            if _ask_pin(app, "New SIM PIN again: ") != new:
                raise StepError("the two new PINs differ; nothing was sent to the SIM")
            sim.change_pin(current, new)
            app.emit("PIN1 changed")
        else:
            sim.set_pin_enabled(current, action == "enable")
            app.emit(f"PIN1 {action}d")
        return 0
    finally:
        sim.close()
