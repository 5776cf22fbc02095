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

The highest accepted SQN is kept in memory, or in a JSON ``state_file``
(``{"imsi", "k", "opc", "sqn"}``, keys in hex) updated atomically under ``flock`` so that
several processes sharing one virtual SIM see one sequence number.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .milenage import Milenage, sqn_bytes, xor

__all__ = ["VirtualUsim", "USIM_AID", "encode_imsi", "SQN_WINDOW"]

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
    ) -> None:
        self.imsi = imsi
        self._ef_imsi = encode_imsi(imsi)
        self._milenage = Milenage(k, opc=opc)
        self._k = bytes(k)
        sqn_bytes(sqn)  # validates the 48-bit range
        self._sqn = sqn
        self._state_file = state_file
        self._gsm_context = gsm_context  # include Kc in the AUTHENTICATE answer
        self._lock = threading.Lock()
        self.atr: bytes = _atr()
        self.reset()
        if state_file and not os.path.exists(state_file):
            self._write_state(sqn)

    # -- state ---------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str) -> "VirtualUsim":
        """Load a SIM from a JSON state file ``{"imsi", "k", "opc", "sqn"}``; SQN updates go back to it."""
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                str(data["imsi"]),
                bytes.fromhex(data["k"]),
                bytes.fromhex(data["opc"]),
                int(data.get("sqn", 0)),
                state_file=path,
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

    def _read_sqn(self) -> int:
        try:
            return int(json.loads(Path(self._state_file).read_text()).get("sqn", 0))  # type: ignore[arg-type]
        except FileNotFoundError:
            return self._sqn

    def _write_state(self, sqn: int) -> None:
        path = Path(self._state_file)  # type: ignore[arg-type]
        data = {"imsi": self.imsi, "k": self._k.hex(), "opc": self._milenage.opc.hex(), "sqn": sqn}
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

    # -- card ----------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on / reset: MF selected, no pending response."""
        self._df: object = MF
        self._ef: int | None = None
        self._pending = b""

    def transmit(self, apdu: bytes) -> bytes:
        """Process one command APDU; return response data followed by SW1 SW2."""
        with self._lock:
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
            inner = _tlv(0x82, b"\x78\x21") + _tlv(0x84, USIM_AID) + _tlv(0x8A, b"\x05")
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
