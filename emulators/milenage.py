"""Milenage, the 3GPP authentication and key agreement functions (TS 35.206).

Built on the AES-128 block cipher from ``cryptography`` (ECB on single blocks,
which is exactly the kernel function E_K of the specification). Checked
against the published test data of TS 35.207 (section 4; bundled in the tests).

The SIM emulator (:mod:`gw_emulators.usim`) and the Krypton emulator use it;
nothing here touches a real network.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["Milenage", "make_autn", "recover_sqn_from_auts", "xor"]

# Rotation amounts (bits) and constants c1..c5 of TS 35.206 section 4.1.
_R = (64, 0, 32, 64, 96)
_C = tuple(bytes(15) + bytes([v]) for v in (0, 1, 2, 4, 8))
_SQN_MAX = (1 << 48) - 1


def xor(a: bytes, b: bytes) -> bytes:
    """Byte-wise XOR of two equal-length strings."""
    if len(a) != len(b):
        raise ValueError("xor of strings of different lengths")
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _rot(x: bytes, bits: int) -> bytes:
    """Cyclic left rotation of a 128-bit block; the rotations used are whole bytes."""
    n = (bits // 8) % len(x)
    return x[n:] + x[:n]


def _check(name: str, value: bytes, size: int) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")
    return bytes(value)


class Milenage:
    """Milenage for one subscriber key K and operator variant OP / OPc."""

    def __init__(self, k: bytes, *, op: bytes | None = None, opc: bytes | None = None) -> None:
        k = _check("K", k, 16)
        if (op is None) == (opc is None):
            raise ValueError("give exactly one of OP and OPc")
        self._enc = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
        if op is not None:
            op = _check("OP", op, 16)
            self.opc: bytes = xor(self._e(op), op)
        else:
            self.opc = _check("OPc", opc, 16)  # type: ignore[arg-type]

    def _e(self, block: bytes) -> bytes:
        """The kernel function E_K: AES-128 on one 16-byte block."""
        return self._enc.update(block)

    def _temp(self, rand: bytes) -> bytes:
        return self._e(xor(_check("RAND", rand, 16), self.opc))

    def _out(self, i: int, temp: bytes) -> bytes:
        """OUT2..OUT5 (i = 2..5): E_K(rot(TEMP xor OPc, r_i) xor c_i) xor OPc."""
        block = xor(_rot(xor(temp, self.opc), _R[i - 1]), _C[i - 1])
        return xor(self._e(block), self.opc)

    def _out1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        sqn = _check("SQN", sqn, 6)
        amf = _check("AMF", amf, 2)
        temp = self._temp(rand)
        in1 = sqn + amf + sqn + amf
        block = xor(xor(temp, _rot(xor(in1, self.opc), _R[0])), _C[0])
        return xor(self._e(block), self.opc)

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """Network authentication code MAC-A (8 bytes)."""
        return self._out1(rand, sqn, amf)[:8]

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """Resynchronisation authentication code MAC-S (8 bytes)."""
        return self._out1(rand, sqn, amf)[8:]

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        """RES (8 bytes), CK (16), IK (16) and the anonymity key AK (6)."""
        temp = self._temp(rand)
        out2 = self._out(2, temp)
        return out2[8:], self._out(3, temp), self._out(4, temp), out2[:6]

    def f5star(self, rand: bytes) -> bytes:
        """Anonymity key AK used in resynchronisation (6 bytes)."""
        return self._out(5, self._temp(rand))[:6]


def sqn_bytes(sqn: int) -> bytes:
    """A 48-bit sequence number as 6 big-endian bytes."""
    if not 0 <= sqn <= _SQN_MAX:
        raise ValueError("SQN must fit in 48 bits")
    return sqn.to_bytes(6, "big")


def make_autn(m: Milenage, rand: bytes, sqn: int, amf: bytes = b"\x80\x00") -> bytes:
    """AUTN = (SQN xor AK) || AMF || MAC-A, as the network sends it (16 bytes)."""
    s = sqn_bytes(sqn)
    ak = m.f2345(rand)[3]
    return xor(s, ak) + _check("AMF", amf, 2) + m.f1(rand, s, amf)


def recover_sqn_from_auts(m: Milenage, rand: bytes, auts: bytes, amf: bytes = b"\x00\x00") -> int:
    """SQN_MS from AUTS = (SQN_MS xor AK*) || MAC-S; raises ValueError if MAC-S is wrong.

    TS 33.102 sends AUTS with the dummy AMF 0000 in MAC-S.
    """
    auts = _check("AUTS", auts, 14)
    sqn_ms = xor(auts[:6], m.f5star(rand))
    if m.f1star(rand, sqn_ms, amf) != auts[6:]:
        raise ValueError("AUTS does not verify (MAC-S mismatch)")
    return int.from_bytes(sqn_ms, "big")
