"""A virtual USIM: the card side of the APDUs SORACOM Krypton needs (protocols.md section 6).

The card speaks T=0 style ISO 7816-4 with CLA 00:

* SELECT by file id (``00 A4 00 04 02 <FID>``) of MF 3F00, EF_DIR 2F00 and, once the USIM
  application is selected, EF_IMSI 6F07; SELECT by AID (``00 A4 04 04 <len> <AID>``, a
  prefix of at least 5 bytes selects) of the USIM ADF. ``P2=04`` returns an FCP template,
  ``P2=0C`` nothing.
* READ RECORD (``00 B2 <rec> 04 <len>``) on EF_DIR and READ BINARY (``00 B0 <off> <off> <len>``)
  on EF_IMSI. A wrong length is answered with ``6C xx`` (re-send with Le = xx).
* AUTHENTICATE (``00 88 00 81 22 10 RAND 10 AUTN``) in the 3G context, running Milenage:
  ``DB 08 RES 10 CK 10 IK 08 Kc`` on success, ``DC 0E AUTS`` on a stale sequence number,
  status ``98 62`` when the MAC in AUTN is wrong.
* Every command with response data answers ``61 xx``; ``00 C0 00 00 xx`` (GET RESPONSE)
  fetches it, as a T=0 card does.
* PIN1 (the application PIN, key reference 01) as ETSI TS 102 221 section 11.1.9-11.1.13 describe:
  VERIFY ``00 20 00 01 08 <PIN ASCII, FF padded>``, CHANGE ``00 24 00 01 10 <old><new>``,
  DISABLE ``00 26 00 01 08``, ENABLE ``00 28 00 01 08``, UNBLOCK ``00 2C 00 01 10 <PUK><new>``.
  While PIN1 is enabled and not verified, READ BINARY of EF_IMSI and AUTHENTICATE answer
  ``69 82``. A wrong PIN answers ``63 Cx`` (x tries left); the third wrong one blocks PIN1
  (``69 83``, only the PUK helps). VERIFY without data (``00 20 00 01``) asks for the state
  without spending a try: ``63 Cx`` when verification is needed, ``90 00`` when it is not
  (disabled or already verified), ``69 83`` when blocked. The ADF's FCP carries the PIN status
  template (tag ``C6``: ``90 01 <80 when PIN1 is enabled>``, ``83 01 01``). A reset (power-on)
  forgets a verification.

The highest accepted SQN and the PIN1 state (PIN, enabled, tries left) are kept in memory, or in
a JSON ``state_file`` (``{"imsi", "k", "opc", "sqn", "pin", "pin_enabled", "pin_tries", "puk"}``,
keys in hex) updated atomically under ``flock`` so that several processes sharing one virtual
SIM see one sequence number and one retry counter.

For tests and benchmarks the card logs the header (CLA INS P1 P2 P3) of every command it gets in
:attr:`VirtualUsim.log` - never the data, which may hold a PIN or keys - and can wait
``apdu_delay`` seconds per command, like a real reader's T=0 exchange.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .milenage import Milenage, sqn_bytes, xor

__all__ = ["PIN_TRIES", "SQN_WINDOW", "USIM_AID", "EmulatedReader", "InProcessCard", "VirtualUsim", "encode_imsi"]

USIM_AID = bytes.fromhex("A0000000871002FF49FF058907090000")
SQN_WINDOW = 1 << 28  # largest forward jump of SQN accepted (TS 33.102 annex C "delta")

MF, EF_DIR, EF_IMSI, ADF_USIM = 0x3F00, 0x2F00, 0x6F07, "ADF"
_DIR_RECORD_LEN = 0x26

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_NOT_FOUND = b"\x6a\x82"
SW_BAD_P1P2 = b"\x6a\x86"
SW_RECORD_NOT_FOUND = b"\x6a\x83"
SW_WRONG_OFFSET = b"\x6b\x00"
SW_NO_EF = b"\x69\x86"
SW_CONDITIONS = b"\x69\x85"
SW_INS = b"\x6d\x00"
SW_CLA = b"\x6e\x00"
SW_MAC_FAILURE = b"\x98\x62"
SW_SECURITY = b"\x69\x82"  # security status not satisfied: PIN1 not verified
SW_BLOCKED = b"\x69\x83"  # authentication method blocked: PIN1 needs the PUK
SW_PIN_STATE = b"\x69\x84"  # referenced data invalidated (e.g. CHANGE with PIN1 disabled)
PIN_TRIES = 3


def _atr() -> bytes:
    """A USIM-like ATR offering T=0 (TD1) and T=15 global bytes, with its check byte."""
    hist = bytes.fromhex("8031E073FE211B6367")
    body = bytes([0x90 | len(hist), 0x96, 0x80, 0x1F, 0xC7]) + hist
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes([tck])


def encode_imsi(imsi: str) -> bytes:
    """EF_IMSI content (9 bytes): length, then BCD with swapped nibbles, parity first, F filler."""
    if not imsi.isdigit() or not 6 <= len(imsi) <= 15:
        raise ValueError("IMSI must be 6 to 15 digits")
    nibbles = [9 if len(imsi) % 2 else 1] + [int(d) for d in imsi]
    if len(nibbles) % 2:
        nibbles.append(0xF)
    data = bytes(nibbles[i] | nibbles[i + 1] << 4 for i in range(0, len(nibbles), 2))
    return (bytes([len(data)]) + data).ljust(9, b"\xff")


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag, len(value)]) + value


class VirtualUsim:
    """An in-memory USIM card answering APDUs; see the module docstring for what it speaks."""

    def __init__(
        self,
        imsi: str,
        k: bytes,
        opc: bytes,
        sqn: int = 0,
        *,
        state_file: str | None = None,
        gsm_context: bool = True,
        pin: str | None = None,
        pin_enabled: bool = False,
        pin_tries: int = PIN_TRIES,
        puk: str = "12345678",
        apdu_delay: float = 0.0,
    ) -> None:
        self.imsi = imsi
        self._ef_imsi = encode_imsi(imsi)
        self._milenage = Milenage(k, opc=opc)
        self._k = bytes(k)
        sqn_bytes(sqn)  # validates the 48-bit range
        self._sqn = sqn
        self._state_file = state_file
        self._gsm_context = gsm_context  # include Kc in the AUTHENTICATE answer
        self._pin = {"pin": pin or "0000", "pin_enabled": bool(pin_enabled and pin), "pin_tries": pin_tries, "puk": puk}
        self.apdu_delay = apdu_delay
        #: headers (CLA INS P1 P2 [P3]) of the commands received, oldest first; never their data
        self.log: list[bytes] = []
        self._lock = threading.Lock()
        self.atr: bytes = _atr()
        self.reset()
        if state_file and not os.path.exists(state_file):
            self._write_state(sqn, keep_pin=True)

    # -- state ---------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str) -> VirtualUsim:
        """Load a SIM from a JSON state file ``{"imsi", "k", "opc", "sqn"}``; SQN updates go back to it."""
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                str(data["imsi"]),
                bytes.fromhex(data["k"]),
                bytes.fromhex(data["opc"]),
                int(data.get("sqn", 0)),
                state_file=path,
                pin=data.get("pin"),
                pin_enabled=bool(data.get("pin_enabled", False)),
                pin_tries=int(data.get("pin_tries", PIN_TRIES)),
                puk=str(data.get("puk", "12345678")),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "expected JSON {imsi, k, opc, sqn} with hex keys"
            raise ValueError(f"cannot load virtual SIM file {path}: {reason}") from None

    @property
    def sqn(self) -> int:
        """Highest sequence number accepted so far (read from the state file if there is one)."""
        if self._state_file:
            with self._locked_state():
                return self._read_sqn()
        return self._sqn

    @contextmanager
    def _locked_state(self) -> Iterator[None]:
        assert self._state_file
        with open(self._state_file + ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(Path(self._state_file).read_text()))  # type: ignore[arg-type]
        except FileNotFoundError:
            return {"sqn": self._sqn, **self._pin}

    def _read_sqn(self) -> int:
        return int(self._read_state().get("sqn", 0))

    def _write_state(self, sqn: int, *, keep_pin: bool = False) -> None:
        """Write the state file (callers hold its lock); without ``keep_pin`` PIN1's fields come from the file."""
        path = Path(self._state_file)  # type: ignore[arg-type]
        if not keep_pin and path.exists():
            state = self._read_state()
            self._pin = {k: state.get(k, v) for k, v in self._pin.items()}
        data = {"imsi": self.imsi, "k": self._k.hex(), "opc": self._milenage.opc.hex(), "sqn": sqn, **self._pin}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        self._sqn = sqn

    @property
    def pin_state(self) -> dict[str, Any]:
        """PIN1's state: ``{"pin", "pin_enabled", "pin_tries", "puk"}`` (from the state file if any)."""
        if self._state_file:
            with self._locked_state():
                state = self._read_state()
            return {k: state.get(k, v) for k, v in self._pin.items()}
        return dict(self._pin)

    @property
    def pin_tries(self) -> int:
        """Tries left before PIN1 blocks (0: blocked)."""
        return int(self.pin_state["pin_tries"])

    @property
    def pin_verified(self) -> bool:
        """Whether PIN1 was verified since the last reset."""
        return self._verified

    def set_pin(self, *, enabled: bool | None = None, tries: int | None = None, pin: str | None = None) -> None:
        """Test control: change PIN1's state as an operator's tool would (no APDU)."""
        changes: dict[str, Any] = {}
        if enabled is not None:
            changes["pin_enabled"] = enabled
        if tries is not None:
            changes["pin_tries"] = tries
        if pin is not None:
            changes["pin"] = pin
        self._update_pin(**changes)

    def _update_pin(self, **changes: Any) -> None:
        """Apply ``changes`` to PIN1's state (under the state file's lock when there is one)."""
        if self._state_file:
            with self._locked_state():
                state = self._read_state()
                self._pin = {k: state.get(k, v) for k, v in self._pin.items()} | changes
                self._write_state(int(state.get("sqn", self._sqn)), keep_pin=True)
        else:
            self._pin |= changes

    # -- card ----------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on / reset: MF selected, no pending response, PIN1 not verified."""
        self._df: object = MF
        self._ef: int | None = None
        self._pending = b""
        self._verified = False

    def transmit(self, apdu: bytes) -> bytes:
        """Process one command APDU; return response data followed by SW1 SW2."""
        with self._lock:
            self.log.append(bytes(apdu[:5]))
            if self.apdu_delay:
                time.sleep(self.apdu_delay)  # a real reader's exchange time, for benchmarks
            return self._transmit(bytes(apdu))

    def _transmit(self, apdu: bytes) -> bytes:
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[:4]
        if cla != 0x00:
            return SW_CLA
        p3 = apdu[4] if len(apdu) > 4 else 0
        body = apdu[5:]
        if ins == 0xC0:
            return self._get_response(p3)
        self._pending = b""
        if ins == 0xA4:
            return self._select(p1, p2, body[:p3] if len(body) >= p3 else None)
        if ins == 0xB2:
            return self._read_record(p1, p2, p3)
        if ins == 0xB0:
            return self._read_binary((p1 << 8) | p2, p3)
        if ins == 0x88:
            return self._authenticate(p1, p2, body[:p3] if len(body) >= p3 else None)
        if ins == 0xF2:  # STATUS: FCP of the current DF
            return self._answer(self._fcp_df())
        if ins in (0x20, 0x24, 0x26, 0x28, 0x2C):
            return self._pin_command(ins, p1, p2, p3, body)
        return SW_INS

    def _answer(self, data: bytes) -> bytes:
        """T=0: announce response data with 61 xx; GET RESPONSE delivers it."""
        if not data:
            return SW_OK
        self._pending = data
        return bytes([0x61, len(data) & 0xFF])

    def _get_response(self, le: int) -> bytes:
        data = self._pending
        if not data:
            return SW_CONDITIONS
        if le == 0 or le > len(data):
            return bytes([0x6C, len(data) & 0xFF])
        self._pending = data[le:]
        sw = bytes([0x61, len(self._pending)]) if self._pending else SW_OK
        return data[:le] + sw

    # -- selection -----------------------------------------------------------------
    def _fcp_df(self) -> bytes:
        if self._df == ADF_USIM:
            enabled = b"\x80" if self.pin_state["pin_enabled"] else b"\x00"
            ps_do = _tlv(0xC6, _tlv(0x90, enabled) + _tlv(0x83, b"\x01"))  # PIN status template
            inner = _tlv(0x82, b"\x78\x21") + _tlv(0x84, USIM_AID) + _tlv(0x8A, b"\x05") + ps_do
        else:
            inner = _tlv(0x82, b"\x78\x21") + _tlv(0x83, b"\x3f\x00") + _tlv(0x8A, b"\x05")
        return _tlv(0x62, inner)

    def _fcp_ef(self, fid: int) -> bytes:
        if fid == EF_DIR:
            desc = bytes([0x42, 0x21, 0x00, _DIR_RECORD_LEN, 0x01])
            size = _DIR_RECORD_LEN
        else:
            desc = b"\x41\x21"
            size = len(self._ef_imsi)
        inner = _tlv(0x82, desc) + _tlv(0x83, fid.to_bytes(2, "big")) + _tlv(0x8A, b"\x05")
        return _tlv(0x62, inner + _tlv(0x80, size.to_bytes(2, "big")))

    def _select(self, p1: int, p2: int, data: bytes | None) -> bytes:
        if data is None:
            return SW_WRONG_LENGTH
        if p2 not in (0x04, 0x0C):
            return SW_BAD_P1P2
        if p1 == 0x04:  # by DF name (AID)
            if len(data) < 5 or not USIM_AID.startswith(data):
                return SW_NOT_FOUND
            self._df, self._ef = ADF_USIM, None
            fcp = self._fcp_df()
        elif p1 == 0x00:  # by file id
            if len(data) != 2:
                return SW_WRONG_LENGTH
            fid = int.from_bytes(data, "big")
            if fid == MF:
                self._df, self._ef = MF, None
                fcp = self._fcp_df()
            elif fid == 0x7FFF and self._df == ADF_USIM:
                self._ef = None
                fcp = self._fcp_df()
            elif fid == EF_DIR and self._df == MF:
                self._ef = EF_DIR
                fcp = self._fcp_ef(fid)
            elif fid == EF_IMSI and self._df == ADF_USIM:
                self._ef = EF_IMSI
                fcp = self._fcp_ef(fid)
            else:
                return SW_NOT_FOUND
        else:
            return SW_BAD_P1P2
        return self._answer(fcp) if p2 == 0x04 else SW_OK

    # -- reading -------------------------------------------------------------------
    def _dir_record(self, n: int) -> bytes | None:
        if n != 1:
            return None
        app = _tlv(0x4F, USIM_AID) + _tlv(0x50, b"USIM")
        return _tlv(0x61, app).ljust(_DIR_RECORD_LEN, b"\xff")

    def _read_record(self, p1: int, p2: int, le: int) -> bytes:
        if self._ef != EF_DIR:
            return SW_NO_EF
        if p2 != 0x04:
            return SW_BAD_P1P2
        record = self._dir_record(p1)
        if record is None:
            return SW_RECORD_NOT_FOUND
        if le != len(record):
            return bytes([0x6C, len(record)])
        return record + SW_OK

    def _read_binary(self, offset: int, le: int) -> bytes:
        if self._ef != EF_IMSI:
            return SW_NO_EF
        if self._pin_needed():
            return SW_SECURITY
        content = self._ef_imsi
        if offset >= len(content):
            return SW_WRONG_OFFSET
        avail = len(content) - offset
        if le == 0 or le > avail:
            return bytes([0x6C, avail])
        return content[offset : offset + le] + SW_OK

    # -- authentication ------------------------------------------------------------
    def _authenticate(self, p1: int, p2: int, data: bytes | None) -> bytes:
        if data is None:
            return SW_WRONG_LENGTH
        if p1 != 0x00 or p2 != 0x81:
            return SW_BAD_P1P2
        if self._df != ADF_USIM:
            return SW_CONDITIONS
        if self._pin_needed():
            return SW_SECURITY
        if len(data) != 34 or data[0] != 16 or data[17] != 16:
            return SW_WRONG_LENGTH
        rand, autn = data[1:17], data[18:34]
        m = self._milenage
        res, ck, ik, ak = m.f2345(rand)
        sqn = xor(autn[:6], ak)
        amf, mac = autn[6:8], autn[8:16]
        if m.f1(rand, sqn, amf) != mac:
            return SW_MAC_FAILURE
        if self._state_file:
            with self._locked_state():
                ok, sqn_ms = self._accept(int.from_bytes(sqn, "big"), self._read_sqn())
        else:
            ok, sqn_ms = self._accept(int.from_bytes(sqn, "big"), self._sqn)
        if not ok:
            s = sqn_bytes(sqn_ms)
            auts = xor(s, m.f5star(rand)) + m.f1star(rand, s, b"\x00\x00")
            return self._answer(_tlv(0xDC, auts))  # DC 0E AUTS
        fields = [res, ck, ik]  # DB 08 RES 10 CK 10 IK [08 Kc]: each field is length-prefixed
        if self._gsm_context:
            fields.append(xor(xor(ck[:8], ck[8:]), xor(ik[:8], ik[8:])))  # Kc by conversion c3, TS 33.102
        return self._answer(b"\xdb" + b"".join(bytes([len(f)]) + f for f in fields))

    def _accept(self, sqn: int, sqn_ms: int) -> tuple[bool, int]:
        """Freshness: accept a SQN above the highest seen and not too far ahead; record it."""
        if sqn_ms < sqn <= sqn_ms + SQN_WINDOW:
            if self._state_file:
                self._write_state(sqn)
            else:
                self._sqn = sqn
            return True, sqn
        return False, sqn_ms

    # -- PIN1 ------------------------------------------------------------------------
    def _pin_needed(self) -> bool:
        return bool(self.pin_state["pin_enabled"]) and not self._verified

    @staticmethod
    def _pin_value(block: bytes) -> str | None:
        """The PIN in an 8-byte block: ASCII digits padded with FF; None when malformed."""
        text = block.rstrip(b"\xff")
        if len(block) != 8 or not 4 <= len(text) <= 8 or not text.isdigit():
            return None
        return text.decode("ascii")

    def _check_pin(self, given: str | None) -> bytes | None:
        """Compare ``given`` with PIN1: None when right (tries reset), else the status to answer."""
        state = self.pin_state
        tries = int(state["pin_tries"])
        if tries <= 0:
            return SW_BLOCKED
        if given is not None and given == state["pin"]:
            if tries != PIN_TRIES:
                self._update_pin(pin_tries=PIN_TRIES)
            return None
        tries -= 1
        self._update_pin(pin_tries=tries)
        self._verified = False
        return SW_BLOCKED if tries <= 0 else bytes([0x63, 0xC0 | tries])

    def _pin_command(self, ins: int, p1: int, p2: int, p3: int, body: bytes) -> bytes:
        if p1 != 0x00 or p2 != 0x01:
            return SW_BAD_P1P2
        data = body[:p3]
        if len(data) != p3:
            return SW_WRONG_LENGTH
        state = self.pin_state
        if ins == 0x20:  # VERIFY PIN
            if p3 == 0:  # status only: spends no try
                if int(state["pin_tries"]) <= 0:
                    return SW_BLOCKED
                if not state["pin_enabled"] or self._verified:
                    return SW_OK
                return bytes([0x63, 0xC0 | int(state["pin_tries"])])
            if p3 != 8:
                return SW_WRONG_LENGTH
            refusal = self._check_pin(self._pin_value(data))
            if refusal is None:
                self._verified = True
            return refusal or SW_OK
        if ins == 0x2C:  # UNBLOCK PIN with the PUK
            if p3 != 16 or self._pin_value(data[8:]) is None:
                return SW_WRONG_LENGTH
            refusal = self._check_puk(data[:8])  # (no PUK retry counter in this emulator)
            if refusal is not None:
                return refusal
            self._update_pin(pin=self._pin_value(data[8:]), pin_tries=PIN_TRIES)
            self._verified = True
            return SW_OK
        if ins == 0x24:  # CHANGE PIN: old, new
            if p3 != 16 or self._pin_value(data[8:]) is None:
                return SW_WRONG_LENGTH
            if not state["pin_enabled"]:
                return SW_PIN_STATE
            refusal = self._check_pin(self._pin_value(data[:8]))
            if refusal is not None:
                return refusal
            self._update_pin(pin=self._pin_value(data[8:]))
            self._verified = True
            return SW_OK
        # DISABLE (26) / ENABLE (28): both need the current PIN
        if p3 != 8:
            return SW_WRONG_LENGTH
        if bool(state["pin_enabled"]) == (ins == 0x28):
            return SW_CONDITIONS  # already in the asked-for state
        refusal = self._check_pin(self._pin_value(data))
        if refusal is not None:
            return refusal
        self._update_pin(pin_enabled=ins == 0x28)
        self._verified = ins == 0x28
        return SW_OK

    def _check_puk(self, block: bytes) -> bytes | None:
        return None if self._pin_value(block) == self.pin_state["puk"] else SW_SECURITY


class InProcessCard:
    """A transport (``name``, ``transmit``, ``close``) to a :class:`VirtualUsim` in this process."""

    def __init__(self, card: VirtualUsim, name: str) -> None:
        self.card, self.name = card, name

    def transmit(self, apdu: bytes) -> bytes:
        return self.card.transmit(bytes(apdu))

    def close(self, reset: bool = False) -> None:
        if reset:
            self.card.reset()


class EmulatedReader:
    """The ``reader = "emulated"`` SIM reader: a VirtualUsim from the step's ``sim_file``.

    Contributed to the krypton plugin through its ``gw_krypton_readers`` hook by the demo
    plugin (``gw_emulators.demo``); product code never imports this module.
    """

    name = "emulated"
    help = 'an emulated SIM from sim_file (JSON {imsi, k, opc, sqn}), for demos and tests'

    def open(self, options: dict[str, Any]) -> InProcessCard:
        """Load the virtual SIM named by ``options["sim_file"]``; ValueError with one line if it cannot."""
        import sys

        sim_file = options.get("sim_file")
        if not sim_file:
            raise ValueError("reader 'emulated' needs a sim_file (JSON {imsi, k, opc, sqn})")
        card = VirtualUsim.from_file(str(sim_file))
        print(f"gw: using an EMULATED SIM from {sim_file} (for demos and tests, not a real SIM)", file=sys.stderr)
        return InProcessCard(card, name=f"emulated SIM {sim_file}")
