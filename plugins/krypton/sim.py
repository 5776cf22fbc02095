"""The SIM side of SORACOM Krypton: read the IMSI and run AUTHENTICATE (docs/protocols.md §6).

No HTTP here. :func:`open_sim` picks a transport (PC/SC reader, modem, or a reader another
plugin offers through the ``gw_krypton_readers`` hook, such as the demo plugin's emulated SIM)
and returns a :class:`Sim`, which speaks T=0 APDUs with CLA 00.

The APDU sequence follows krypton-client-go's (``endorse/iso7816.go`` in
github.com/soracom/endorse-client-go, vendored by soracom/krypton-client-go): GET RESPONSE only
where the answer's data is used, and the IMSI read once per run. A cold handshake costs

==  ======================================  =============================================
 1  SELECT MF 3F00                          status only (no GET RESPONSE)
 2  SELECT EF_DIR 2F00                      its FCP gives EF_DIR's record length ...
 3  GET RESPONSE                            ... so this one is fetched
 4  READ RECORD 1                           ``61 / 4F`` = the USIM AID (A0000000871002...)
 5  SELECT ADF USIM by AID                  status only
 6  SELECT EF_IMSI 6F07                     status only
 7  READ BINARY 9 bytes                     swapped-nibble BCD IMSI (modems: AT+CIMI)
 8  AUTHENTICATE 00 88 00 81 22 ...         ``DB`` RES CK IK [Kc] | ``DC`` AUTS | 9862
 9  GET RESPONSE                            the AUTHENTICATE answer
==  ======================================  =============================================

9 APDUs where krypton-cli needs 11 (it fetches the ADF's FCP and re-selects the ADF before
AUTHENTICATE), and 7 with a stored Krypton session (no AUTHENTICATE), as krypton-cli.

PIN1 (ETSI TS 102 221 section 11.1.9-11.1.13): while it is enabled and not verified the card
answers ``69 82`` to READ BINARY of EF_IMSI and to AUTHENTICATE (:class:`PinRequired`).
:meth:`Sim.pin_tries` asks the card (VERIFY without data, no try spent); :meth:`Sim.verify_pin`
sends the one VERIFY; a wrong PIN is :class:`WrongPin` with the tries left, a blocked one
:class:`PinBlocked`. A SIM whose PIN was verified is reset when closed, so the verification
does not outlive the run.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any

from .transports import (
    MODEM_GLOBS,
    ModemTransport,
    PcscTransport,
    PinRequired,
    SimError,
    Transport,
    pcsc_reader_names,
)

__all__ = [
    "USIM_AID_PREFIX",
    "AuthResult",
    "MacFailure",
    "PinBlocked",
    "PinRequired",
    "PinState",
    "Sim",
    "SimError",
    "SyncFailure",
    "WrongPin",
    "decode_imsi",
    "list_readers",
    "open_sim",
]

USIM_AID_PREFIX = bytes.fromhex("A0000000871002")
_MAX_EXCHANGES = 16

_SW_TEXT = {
    0x6700: "wrong length",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "referenced data invalidated",
    0x6985: "conditions of use not satisfied",
    0x6986: "no current EF",
    0x6A82: "file not found",
    0x6A83: "record not found",
    0x6A86: "incorrect P1/P2",
    0x6B00: "wrong offset",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
    0x6F00: "technical problem",
    0x9862: "authentication error (MAC)",
}


class SyncFailure(SimError):
    """The SIM found the challenge's sequence number stale; ``auts`` resynchronises the server."""

    def __init__(self, auts: bytes) -> None:
        super().__init__("the SIM reports a sequence-number (SQN) synchronisation failure")
        self.auts = bytes(auts)


class MacFailure(SimError):
    """The SIM rejected AUTN: the network does not hold this SIM's key (status 9862)."""

    def __init__(self) -> None:
        super().__init__("the SIM rejected the challenge: AUTN failed its MAC check (status 9862)")


class PinBlocked(SimError):
    """PIN1 is blocked after too many wrong PINs (6983): only the PUK unblocks it."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"the SIM in {name} has blocked its PIN1 after three wrong PINs; unblock it with its PUK "
            "(from the SIM's card or your operator) in a phone or a SIM tool, then try again"
        )


class WrongPin(SimError):
    """The card refused the PIN (63Cx); ``tries_left`` more wrong PINs block it."""

    def __init__(self, name: str, tries_left: int) -> None:
        plural = "try" if tries_left == 1 else "tries"
        super().__init__(f"the SIM in {name} refused the PIN: {tries_left} {plural} left before it blocks")
        self.tries_left = tries_left


@dataclass
class PinState:
    """PIN1 as the card reports it; never the PIN itself."""

    enabled: bool
    tries_left: int | None  # None when the card does not say (e.g. PIN1 disabled)
    blocked: bool = False


@dataclass
class AuthResult:
    """Outcome of a successful AUTHENTICATE in the 3G context."""

    res: bytes
    ck: bytes
    ik: bytes
    kc: bytes | None

    def __repr__(self) -> str:  # keys never end up in logs or tracebacks
        return f"AuthResult(res=<{len(self.res)} bytes>, ck=<hidden>, ik=<hidden>, kc={'<hidden>' if self.kc else None})"


def _sw_text(sw: int) -> str:
    return f"{sw:04X}" + (f" {_SW_TEXT[sw]}" if sw in _SW_TEXT else "")


def decode_imsi(ef_imsi: bytes) -> str:
    """The IMSI in EF_IMSI: length byte, then BCD with swapped nibbles, parity nibble first, F filler."""
    if len(ef_imsi) < 2 or not 1 <= ef_imsi[0] <= 8 or len(ef_imsi) < 1 + ef_imsi[0]:
        raise SimError("EF_IMSI does not hold an IMSI (bad length byte)")
    nibbles = []
    for b in ef_imsi[1 : 1 + ef_imsi[0]]:
        nibbles += [b & 0x0F, b >> 4]
    digits = []
    for n in nibbles[1:]:  # the first nibble is the parity / identity type
        if n == 0xF:
            break
        if n > 9:
            raise SimError("EF_IMSI does not hold an IMSI (non-decimal digit)")
        digits.append(str(n))
    if not 6 <= len(digits) <= 15:
        raise SimError("EF_IMSI does not hold an IMSI (wrong number of digits)")
    return "".join(digits)


def _tlvs(data: bytes) -> Iterable[tuple[int, bytes]]:
    """Simple BER-TLV items (one-byte tags, short lengths); stops at padding or a truncated item."""
    i = 0
    while i + 2 <= len(data) and data[i] not in (0x00, 0xFF):
        tag, size = data[i], data[i + 1]
        if size > 0x7F or i + 2 + size > len(data):
            return
        yield tag, data[i + 2 : i + 2 + size]
        i += 2 + size


class Sim:
    """A USIM behind a transport with ``transmit(apdu) -> data + SW1 SW2``."""

    def __init__(self, transport: Transport | Any, *, name: str | None = None) -> None:
        self.transport = transport
        self.name: str = str(name or getattr(transport, "name", None) or "SIM")
        self._aid: bytes | None = None
        self._imsi: str | None = None
        self._pin_verified = False
        #: command APDUs sent so far (GET RESPONSE and re-sends included)
        self.apdus = 0

    # -- APDU exchange ------------------------------------------------------------
    def exchange(self, apdu: bytes, *, fetch: bool = True) -> tuple[bytes, int]:
        """Send a command, following 61xx (GET RESPONSE) and 6Cxx (re-send with Le); (data, SW).

        With ``fetch=False`` an answer announcing data (61xx) is taken as success (SW 9000)
        without fetching it: the caller needs the status only.
        """
        data = b""
        command = bytes(apdu)
        for _ in range(_MAX_EXCHANGES):
            resp = bytes(self.transport.transmit(command))
            self.apdus += 1
            if len(resp) < 2:
                raise SimError(f"the SIM in {self.name} gave a malformed answer (under 2 bytes)")
            data += resp[:-2]
            sw1, sw2 = resp[-2], resp[-1]
            if sw1 in (0x61, 0x9F) and not fetch:
                return data, 0x9000
            if sw1 in (0x61, 0x9F):
                command = bytes([0x00, 0xC0, 0x00, 0x00, sw2])
            elif sw1 == 0x6C and len(command) == 5:  # wrong Le: re-send with Le = xx
                command = command[:4] + bytes([sw2])
            else:
                return data, (sw1 << 8) | sw2
        raise SimError(f"the SIM in {self.name} kept asking for more exchanges (bad response)")

    def _expect_ok(self, apdu: bytes, what: str) -> bytes:
        data, sw = self.exchange(apdu)
        if sw != 0x9000:
            raise SimError(f"the SIM in {self.name} refused {what} (status {_sw_text(sw)})")
        return data

    # -- USIM application -----------------------------------------------------------
    def _select_fid(self, fid: int, *, fetch: bool = False) -> tuple[bytes, int]:
        return self.exchange(bytes([0x00, 0xA4, 0x00, 0x04, 0x02]) + fid.to_bytes(2, "big"), fetch=fetch)

    def _find_usim_aid(self) -> bytes | None:
        """Read EF_DIR's records for the USIM application's AID."""
        fcp, sw = self._select_fid(0x2F00, fetch=True)  # the FCP's record length is used
        if sw != 0x9000:
            return None
        rec_len, count = 0, 16
        for tag, value in _tlvs(fcp[2:] if fcp[:1] == b"\x62" else b""):
            if tag == 0x82 and len(value) >= 5:
                rec_len, count = int.from_bytes(value[2:4], "big"), max(1, value[4])
        for n in range(1, min(count, 32) + 1):
            record, sw = self.exchange(bytes([0x00, 0xB2, n, 0x04, rec_len & 0xFF]))
            if sw != 0x9000:
                break
            for tag, value in _tlvs(record):
                if tag != 0x61:
                    continue
                for inner_tag, aid in _tlvs(value):
                    if inner_tag == 0x4F and aid.startswith(USIM_AID_PREFIX):
                        return aid
        return None

    def select_usim(self) -> bytes:
        """Select the USIM application (once per session); returns its AID."""
        if self._aid is not None:
            return self._aid
        _, sw = self._select_fid(0x3F00)
        if sw == 0x6E00:
            raise SimError(f"the card in {self.name} is not a UICC (it refused class 00); a 2G SIM has no USIM")
        if sw != 0x9000:
            raise SimError(f"the card in {self.name} refused to select its master file (status {_sw_text(sw)})")
        aid = self._find_usim_aid()
        # Without EF_DIR, try selecting by the USIM AID prefix (partial DF name).
        candidate = aid or USIM_AID_PREFIX
        _, sw = self.exchange(bytes([0x00, 0xA4, 0x04, 0x04, len(candidate)]) + candidate, fetch=False)
        if sw != 0x9000:
            raise SimError(f"the card in {self.name} has no USIM application")
        self._aid = candidate
        return candidate

    # -- public API -----------------------------------------------------------------
    def imsi(self) -> str:
        """The IMSI: from EF_IMSI in the USIM application (modems: AT+CIMI); read once per Sim."""
        if self._imsi is None:
            self._imsi = self._read_imsi()
        return self._imsi

    def _read_imsi(self) -> str:
        cimi = getattr(self.transport, "cimi", None)
        if callable(cimi):
            imsi = str(cimi())
            if not imsi.isdigit() or not 6 <= len(imsi) <= 15:
                raise SimError(f"{self.name} reported an invalid IMSI")
            return imsi
        self.select_usim()
        _, sw = self.exchange(bytes([0x00, 0xA4, 0x00, 0x04, 0x02, 0x6F, 0x07]), fetch=False)
        if sw != 0x9000:
            raise SimError(f"the SIM in {self.name} refused to select EF_IMSI (status {_sw_text(sw)})")
        data, sw = self.exchange(bytes([0x00, 0xB0, 0x00, 0x00, 0x09]))
        self._pin_status_check(sw)
        if sw != 0x9000:
            raise SimError(f"the SIM in {self.name} refused to read EF_IMSI (status {_sw_text(sw)})")
        return decode_imsi(data)

    def _pin_status_check(self, sw: int) -> None:
        if sw == 0x6982:
            raise PinRequired(f"the SIM in {self.name} has its PIN1 enabled and refuses to be read without it")
        if sw == 0x6983:
            raise PinBlocked(self.name)

    # -- PIN1 ---------------------------------------------------------------------------
    @staticmethod
    def _pin_block(pin: str) -> bytes:
        if not pin.isdigit() or not 4 <= len(pin) <= 8:
            raise SimError("a SIM PIN is 4 to 8 digits")
        return pin.encode("ascii").ljust(8, b"\xff")

    def _pin_apdu(self, ins: int, data: bytes = b"") -> int:
        self.select_usim()
        _, sw = self.exchange(bytes([0x00, ins, 0x00, 0x01, len(data)]) + data if data else
                              bytes([0x00, ins, 0x00, 0x01]), fetch=False)
        return sw

    def _pin_result(self, sw: int, what: str) -> None:
        """Turn a PIN command's status into nothing (9000) or the matching error."""
        if sw == 0x9000:
            return
        if sw == 0x6983 or sw == 0x63C0:
            raise PinBlocked(self.name)
        if sw & 0xFFF0 == 0x63C0:
            raise WrongPin(self.name, sw & 0x0F)
        raise SimError(f"the SIM in {self.name} refused {what} (status {_sw_text(sw)})")

    def pin_tries(self) -> int | None:
        """Tries left when PIN1 must be verified now; None when it need not be. Spends no try."""
        sw = self._pin_apdu(0x20)
        if sw == 0x9000:
            return None
        if sw == 0x6983 or sw == 0x63C0:
            raise PinBlocked(self.name)
        if sw & 0xFFF0 == 0x63C0:
            return sw & 0x0F
        raise SimError(f"the SIM in {self.name} did not report its PIN1 state (status {_sw_text(sw)})")

    def pin_state(self) -> PinState:
        """PIN1 enabled or not (the ADF's PIN status template) and its tries left."""
        self.select_usim()
        fcp, sw = self.exchange(bytes([0x00, 0xA4, 0x04, 0x04, len(self._aid or b"")]) + (self._aid or b""))
        if sw != 0x9000:
            raise SimError(f"the SIM in {self.name} refused to select its USIM (status {_sw_text(sw)})")
        enabled = None
        for tag, value in _tlvs(fcp[2:] if fcp[:1] == b"\x62" else b""):
            if tag == 0xC6:
                for inner, flags in _tlvs(value):
                    if inner == 0x90 and flags:
                        enabled = bool(flags[0] & 0x80)
        try:
            tries = self.pin_tries()
        except PinBlocked:
            return PinState(enabled=True, tries_left=0, blocked=True)
        if enabled is None:  # no PIN status template: an unverified PIN answers 63Cx
            enabled = tries is not None
        return PinState(enabled=enabled, tries_left=tries)

    def verify_pin(self, pin: str) -> None:
        """Send VERIFY once (never retried): WrongPin with the tries left, or PinBlocked."""
        self._pin_result(self._pin_apdu(0x20, self._pin_block(pin)), "the PIN")
        self._pin_verified = True

    def change_pin(self, old: str, new: str) -> None:
        """CHANGE PIN1 from ``old`` to ``new`` (PIN1 must be enabled)."""
        sw = self._pin_apdu(0x24, self._pin_block(old) + self._pin_block(new))
        if sw == 0x6984:
            raise SimError(f"the SIM in {self.name} cannot change a disabled PIN1: enable it first")
        self._pin_result(sw, "to change the PIN")
        self._pin_verified = True

    def set_pin_enabled(self, pin: str, enabled: bool) -> None:
        """ENABLE (28) or DISABLE (26) PIN1 with the current PIN."""
        sw = self._pin_apdu(0x28 if enabled else 0x26, self._pin_block(pin))
        if sw == 0x6985:
            raise SimError(f"PIN1 of the SIM in {self.name} is already {'enabled' if enabled else 'disabled'}")
        self._pin_result(sw, f"to {'enable' if enabled else 'disable'} the PIN")
        self._pin_verified = True

    def authenticate(self, rand: bytes, autn: bytes) -> AuthResult:
        """Run AUTHENTICATE (3G context). Raises SyncFailure (with AUTS), MacFailure or SimError."""
        rand, autn = bytes(rand), bytes(autn)
        if len(rand) != 16 or len(autn) != 16:
            raise SimError("RAND and AUTN must be 16 bytes each")
        self.select_usim()
        data, sw = self.exchange(bytes([0x00, 0x88, 0x00, 0x81, 0x22, 0x10]) + rand + b"\x10" + autn)
        if sw == 0x9862:
            raise MacFailure()
        self._pin_status_check(sw)
        if sw != 0x9000:
            raise SimError(f"the SIM in {self.name} refused AUTHENTICATE (status {_sw_text(sw)})")
        return self._parse_auth(data)

    def _parse_auth(self, data: bytes) -> AuthResult:
        bad = SimError(f"the SIM in {self.name} gave a malformed AUTHENTICATE answer")
        if data[:1] == b"\xdc":
            if len(data) < 16 or data[1] != 14:
                raise bad
            raise SyncFailure(data[2:16])
        if data[:1] != b"\xdb":
            raise bad
        fields: list[bytes] = []
        i = 1
        while i < len(data) and len(fields) < 4:
            size = data[i]
            if i + 1 + size > len(data):
                raise bad
            fields.append(data[i + 1 : i + 1 + size])
            i += 1 + size
        if len(fields) < 3 or not 4 <= len(fields[0]) <= 16 or len(fields[1]) != 16 or len(fields[2]) != 16:
            raise bad
        kc = fields[3] if len(fields) > 3 and len(fields[3]) == 8 else None
        return AuthResult(res=fields[0], ck=fields[1], ik=fields[2], kc=kc)

    def close(self) -> None:
        """Release the SIM; one whose PIN was verified is reset so the verification ends here."""
        if self._pin_verified:
            try:
                self.transport.close(reset=True)
            except TypeError:  # a transport that cannot reset
                self.transport.close()
        else:
            self.transport.close()

    def __enter__(self) -> Sim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- opening a SIM ------------------------------------------------------------------
StatusFn = Callable[[str], ContextManager[None]]


def _pcsc_pick(spec: str, names: list[str]) -> str:
    """The reader ``spec`` names among ``names``: an index, a name, or a unique part of one."""
    if not names:
        raise SimError("no PC/SC reader is connected")
    if spec.isdigit():
        index = int(spec)
        if index >= len(names):
            raise SimError(f"no PC/SC reader number {index} (there are {len(names)}, counting from 0)")
        return names[index]
    if spec in names:
        return spec
    matches = [n for n in names if spec.lower() in n.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SimError(f"no PC/SC reader matches '{spec}' (readers: {', '.join(names)})")
    raise SimError(f"'{spec}' matches several PC/SC readers ({', '.join(matches)}); be more specific")


def _open_pcsc(spec: str, connected: Callable[[], None] | None = None) -> Sim:
    sim = Sim(PcscTransport(lambda names: _pcsc_pick(spec, names)))
    try:
        if connected:
            connected()
        sim.select_usim()
    except BaseException:
        sim.close()
        raise
    return sim


def _open_plugin_reader(reader: Any, options: dict[str, Any]) -> Sim:
    """A SIM behind a reader another plugin offers (``gw_krypton_readers``)."""
    try:
        transport = reader.open(dict(options))
    except (ValueError, OSError) as exc:
        raise SimError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    return Sim(transport)


def _modem_devices() -> list[str]:
    return sorted(p for pattern in MODEM_GLOBS for p in glob.glob(pattern))


def _open_auto(connected: Callable[[], None] | None = None) -> Sim:
    reasons: list[str] = []
    try:
        names = pcsc_reader_names()
    except SimError as exc:
        names = []
        reasons.append(str(exc))
    for name in names:
        try:
            return _open_pcsc(name, connected)
        except SimError as exc:
            reasons.append(str(exc))
    for device in _modem_devices():
        try:
            transport = ModemTransport(device, timeout=3.0)
        except SimError as exc:
            reasons.append(str(exc))
            continue
        sim = Sim(transport)
        try:
            sim.imsi()
            return sim
        except SimError as exc:
            sim.close()
            reasons.append(str(exc))
    if not names and not _modem_devices():
        reasons.append("no PC/SC reader and no modem (" + ", ".join(MODEM_GLOBS) + ") found")
    raise SimError("no SIM found: " + "; ".join(reasons))


def open_sim(
    reader: str,
    *,
    options: dict[str, Any] | None = None,
    readers: dict[str, Any] | None = None,
    status: StatusFn | None = None,
    connected: Callable[[], None] | None = None,
) -> Sim:
    """Open a SIM: ``auto``, ``pcsc:<name or index>``, ``modem:<serial device>``, or a name in ``readers``.

    ``readers`` maps names to the objects plugins return from ``gw_krypton_readers`` (see
    :mod:`.hookspecs`); such a reader gets the step's ``options`` to open its transport.
    ``connected`` is called once a PC/SC card is connected, before its first APDU: while the
    card answers, this thread mostly waits, and the caller's work there overlaps it.
    """
    import contextlib

    show = status or (lambda message: contextlib.nullcontext())
    reader = (reader or "auto").strip()
    kind, _, arg = reader.partition(":")
    extra = readers or {}
    with show("Looking for the SIM ..."):
        if reader == "auto":
            return _open_auto(connected)
        if reader in extra:
            return _open_plugin_reader(extra[reader], options or {})
        if kind == "pcsc" and arg:
            return _open_pcsc(arg, connected)
        if kind == "modem" and arg:
            return Sim(ModemTransport(arg))
    offered = "".join(f", {name}" for name in sorted(extra))
    hint = "" if "emulated" in extra or reader != "emulated" else (
        " (the emulated SIM is offered by the demo plugin, which is not installed or is disabled)"
    )
    raise SimError(f"unknown SIM reader '{reader}': use auto, pcsc:<name or index>, modem:<serial device>{offered}{hint}")


def list_readers(*, modems: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Readers and modems with the IMSI of their SIM or the error; for ``gw krypton probe``. Never keys."""
    found: list[dict[str, Any]] = []
    try:
        names = pcsc_reader_names()
    except SimError as exc:
        found.append({"name": "PC/SC", "kind": "pcsc", "reader": None, "imsi": None, "error": str(exc)})
        names = []
    for name in names:
        entry: dict[str, Any] = {"name": name, "kind": "pcsc", "reader": f"pcsc:{name}", "imsi": None, "error": None}
        try:
            with Sim(PcscTransport(name)) as sim:
                entry["imsi"] = sim.imsi()
        except PinRequired:
            entry["error"], entry["pin_locked"] = "PIN1 enabled: the SIM shows its IMSI after the PIN", True
        except SimError as exc:
            entry["error"] = str(exc)
        found.append(entry)
    for device in _modem_devices() if modems is None else list(modems):
        entry = {"name": device, "kind": "modem", "reader": f"modem:{device}", "imsi": None, "error": None}
        try:
            with Sim(ModemTransport(device, timeout=3.0)) as sim:
                entry["imsi"] = sim.imsi()
        except PinRequired:
            entry["error"], entry["pin_locked"] = "PIN1 enabled: the SIM shows its IMSI after the PIN", True
        except SimError as exc:
            entry["error"] = str(exc)
        found.append(entry)
    return found
