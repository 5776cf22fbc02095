"""Ways to reach a SIM: a PC/SC reader (pyscard), a modem's AT+CSIM (pyserial), or in-process.

Every transport has ``name``, ``transmit(apdu) -> response data + SW1 SW2`` and ``close()``.
pyscard and pyserial are optional (``pip install 'gw-credential-gateway[sim]'``) and are
imported only inside the functions that use them. Failures raise :class:`SimError` with one
clear line; nothing here ever puts APDU contents (keys, RAND, RES) into a message.
"""

from __future__ import annotations

import re
import time
from typing import Any, Protocol

from gw.plugin import StepError

__all__ = [
    "MODEM_GLOBS",
    "InProcessTransport",
    "ModemTransport",
    "PcscTransport",
    "PinRequired",
    "SimError",
    "Transport",
    "pcsc_reader_names",
]

MODEM_GLOBS = ("/dev/ttyUSB*", "/dev/ttyACM*")
_EXTRA_HINT = "install it with: pip install 'gw-credential-gateway[sim]'"


class SimError(StepError):
    """Talking to the SIM failed (no reader, no card, no USIM, bad answer ...)."""


class PinRequired(SimError):
    """The SIM's PIN1 is enabled and not verified: it refuses EF_IMSI and AUTHENTICATE (6982)."""


class Transport(Protocol):
    name: str

    def transmit(self, apdu: bytes) -> bytes: ...

    def close(self, reset: bool = False) -> None:
        """Release the card; ``reset`` asks for a card reset (ends a PIN verification)."""


# -- in-process --------------------------------------------------------------------
class InProcessTransport:
    """Hands APDUs to an object with ``transmit`` in this process (e.g. a VirtualUsim)."""

    def __init__(self, card: Any, name: str = "in-process card") -> None:
        self.card, self.name = card, name

    def transmit(self, apdu: bytes) -> bytes:
        return bytes(self.card.transmit(bytes(apdu)))

    def close(self, reset: bool = False) -> None:
        if reset and callable(getattr(self.card, "reset", None)):
            self.card.reset()


# -- PC/SC -------------------------------------------------------------------------
def _import_pyscard() -> Any:
    try:
        import smartcard.System
    except ImportError:
        raise SimError(f"PC/SC support needs pyscard, which is not installed; {_EXTRA_HINT}") from None
    import smartcard

    return smartcard


def pcsc_reader_names() -> list[str]:
    """Names of the PC/SC readers, in pcscd's order. SimError if PC/SC is unavailable."""
    _import_pyscard()
    from smartcard.System import readers

    try:
        return [str(r) for r in readers()]
    except Exception as exc:  # pyscard raises its own classes for a missing pcscd
        raise SimError(f"the PC/SC service is not available ({_short(exc)}); is pcscd running?") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


class PcscTransport:
    """A card in a PC/SC reader, through pcscd and pyscard.

    The card is shared with other programs, so the whole conversation runs inside one PC/SC
    transaction (``SCardBeginTransaction``): another process - a second gw run for another
    profile on the same SIM - waits for it instead of interleaving its SELECTs with ours,
    which would leave AUTHENTICATE or READ BINARY on the wrong file. On close the card is
    left as it is (``SCARD_LEAVE_CARD``), not powered down under other programs' feet.
    """

    def __init__(self, reader: str) -> None:
        _import_pyscard()
        from smartcard.Exceptions import CardConnectionException, NoCardException
        from smartcard.scard import SCARD_LEAVE_CARD
        from smartcard.System import readers

        try:
            found = [r for r in readers() if str(r) == reader]
        except Exception as exc:
            raise SimError(f"the PC/SC service is not available ({_short(exc)}); is pcscd running?") from None
        if not found:
            raise SimError(f"no PC/SC reader named '{reader}'")
        self.name = reader
        self._hcard: Any = None
        self._conn = found[0].createConnection()
        try:
            self._conn.connect(disposition=SCARD_LEAVE_CARD)
        except NoCardException:
            self.close()
            raise SimError(f"no card in PC/SC reader '{reader}'") from None
        except CardConnectionException as exc:
            self.close()
            raise SimError(f"cannot connect to the card in PC/SC reader '{reader}' ({_short(exc)})") from None
        self._begin_transaction()

    def _begin_transaction(self) -> None:
        """Exclusive use of the card until :meth:`close` (pcsc-lite waits while another holds it)."""
        from smartcard.scard import (
            SCARD_S_SUCCESS,
            SCardBeginTransaction,
            SCardGetErrorMessage,
        )

        hcard = getattr(getattr(self._conn, "component", self._conn), "hcard", None)
        if hcard is None:
            return
        rv = SCardBeginTransaction(hcard)
        if rv != SCARD_S_SUCCESS:
            self.close()
            raise SimError(
                f"cannot reserve the card in PC/SC reader '{self.name}' ({SCardGetErrorMessage(rv).strip()})"
            )
        self._hcard = hcard

    @property
    def atr(self) -> bytes:
        return bytes(self._conn.getATR())

    def transmit(self, apdu: bytes) -> bytes:
        try:
            data, sw1, sw2 = self._conn.transmit(list(apdu))
        except Exception:
            raise SimError(f"the card in PC/SC reader '{self.name}' was removed or stopped answering") from None
        return bytes(data) + bytes([sw1, sw2])

    def close(self, reset: bool = False) -> None:
        """End the transaction, disconnect and release the PC/SC context now (not in a destructor).

        ``reset`` ends the transaction with ``SCARD_RESET_CARD``: the card forgets a verified
        PIN, so no later program finds the SIM unlocked.
        """
        hcard, self._hcard = self._hcard, None
        if hcard is not None:
            try:
                from smartcard.scard import (
                    SCARD_LEAVE_CARD,
                    SCARD_RESET_CARD,
                    SCardEndTransaction,
                )

                SCardEndTransaction(hcard, SCARD_RESET_CARD if reset else SCARD_LEAVE_CARD)
            except Exception:
                pass  # card removed: pcscd has ended the transaction already
        try:
            self._conn.release()
        except Exception:
            pass
        if hasattr(self._conn, "hcontext"):
            self._conn.hcontext = None  # pyscard's __del__ would retry a failed release and complain


# -- modem (AT commands over a serial port) ----------------------------------------
_FINAL = re.compile(r"^(OK|ERROR|\+CME ERROR:.*|\+CMS ERROR:.*|NO CARRIER)$")
_CSIM = re.compile(r'^\+CSIM:\s*(\d+)\s*,\s*"?([0-9A-Fa-f]*)"?$')


class ModemTransport:
    """A cellular modem's SIM, reached with ``AT+CSIM`` (27.007 generic SIM access)."""

    def __init__(self, device: str, *, baudrate: int = 115200, timeout: float = 5.0) -> None:
        try:
            import serial
        except ImportError:
            raise SimError(f"modem support needs pyserial, which is not installed; {_EXTRA_HINT}") from None
        self.name = device
        self.timeout = timeout
        try:
            # exclusive: a second gw process must not interleave its AT commands with ours
            self._port = serial.Serial(device, baudrate=baudrate, timeout=0.2, write_timeout=timeout, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SimError(f"cannot open modem {device} ({_short(exc)})") from None
        try:
            self._port.reset_input_buffer()
        except Exception:
            pass
        # A modem in echo mode repeats each command; switch echo off but tolerate it anyway.
        lines, final = self.command("ATE0", timeout=min(timeout, 2.0))
        if final != "OK":
            self.close()
            raise SimError(f"modem {device} does not answer AT commands ({final})")

    def command(self, line: str, *, timeout: float | None = None) -> tuple[list[str], str]:
        """Send one AT command; return (information lines, final result code)."""
        import serial

        try:
            self._port.write(line.encode("ascii") + b"\r")
            self._port.flush()
        except (serial.SerialException, OSError):
            raise SimError(f"modem {self.name} went away") from None
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        buf, lines = b"", list[str]()
        while time.monotonic() < deadline:
            try:
                chunk = self._port.read(max(1, self._port.in_waiting))
            except (serial.SerialException, OSError):
                raise SimError(f"modem {self.name} went away") from None
            buf += chunk
            while b"\n" in buf or b"\r" in buf:
                cut = min(i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0)
                text, buf = buf[:cut].decode("ascii", "replace").strip(), buf[cut + 1 :]
                if not text or text == line:  # blank or echo
                    continue
                if _FINAL.match(text):
                    return lines, text
                lines.append(text)
        return lines, "no answer"

    def cimi(self) -> str:
        """The IMSI as the modem reports it (AT+CIMI)."""
        lines, final = self.command("AT+CIMI")
        digits = [ln for ln in lines if ln.isdigit()]
        if "SIM PIN" in final.upper():  # 27.007 +CME ERROR 11: SIM PIN required
            raise PinRequired(f"the SIM in modem {self.name} has its PIN1 enabled and refuses to be read without it")
        if final != "OK" or not digits:
            raise SimError(f"modem {self.name} did not report an IMSI (AT+CIMI: {final})")
        return digits[0]

    def transmit(self, apdu: bytes) -> bytes:
        hexed = apdu.hex().upper()
        lines, final = self.command(f'AT+CSIM={len(hexed)},"{hexed}"')
        if final != "OK":
            raise SimError(f"modem {self.name} refused AT+CSIM ({final})")
        for ln in lines:
            m = _CSIM.match(ln)
            if m:
                size, payload = int(m.group(1)), m.group(2)
                if size != len(payload) or size < 4 or size % 2:
                    break
                return bytes.fromhex(payload)
        raise SimError(f"modem {self.name} gave no valid +CSIM answer")

    def close(self, reset: bool = False) -> None:
        # A modem keeps its SIM verified until it restarts (as after AT+CPIN); ``reset`` is not sent.
        try:
            self._port.close()
        except Exception:
            pass
