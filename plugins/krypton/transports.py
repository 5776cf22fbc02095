"""Ways to reach a SIM: a PC/SC reader (pyscard), a modem's AT+CSIM (pyserial), or in-process.

Every transport has ``name``, ``transmit(apdu) -> response data + SW1 SW2`` and ``close()``.
pyscard and pyserial are optional (``pip install 'gw-credential-gateway[sim]'``) and are
imported only inside the functions that use them. Failures raise :class:`SimError` with one
clear line; nothing here ever puts APDU contents (keys, RAND, RES) into a message.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
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
# pyscard's low-level ``smartcard.scard`` module: the PC/SC calls themselves, with one
# context per SIM opened. Its high-level classes (``smartcard.System.readers()``,
# ``CardConnection``) establish a context for each listing and each connection - three
# round trips to pcscd before the first APDU where one does - and add observers to every
# transmit. The calls and their defaults follow pyscard's own PCSCCardConnection
# (pyscard 2.x, smartcard/pcsc/PCSCCardConnection.py): SCARD_SHARE_SHARED, T=0 or T=1,
# the header of the protocol the card chose for each transmit.
def _import_scard() -> Any:
    try:
        from smartcard import scard
    except ImportError:
        raise SimError(f"PC/SC support needs pyscard, which is not installed; {_EXTRA_HINT}") from None
    return scard


class PcscContext:
    """One PC/SC context (``SCardEstablishContext``): the readers, and connections to their cards."""

    def __init__(self) -> None:
        self.scard = scard = _import_scard()
        try:
            rv, self.handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        except Exception as exc:  # pyscard raises its own classes too
            raise SimError(f"the PC/SC service is not available ({_short(exc)}); is pcscd running?") from None
        if rv != scard.SCARD_S_SUCCESS:
            self.handle = None
            raise SimError(f"the PC/SC service is not available ({self.message(rv)}); is pcscd running?")

    def message(self, rv: int) -> str:
        return str(self.scard.SCardGetErrorMessage(rv)).strip().rstrip(".")

    def reader_names(self) -> list[str]:
        """The readers, in pcscd's order (none is not an error here)."""
        scard = self.scard
        rv, names = scard.SCardListReaders(self.handle, [])
        if rv == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if rv != scard.SCARD_S_SUCCESS:
            raise SimError(f"the PC/SC service is not available ({self.message(rv)}); is pcscd running?")
        return [str(name) for name in names or ()]

    def release(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            try:
                self.scard.SCardReleaseContext(handle)
            except Exception:
                pass

    def __enter__(self) -> PcscContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def pcsc_reader_names() -> list[str]:
    """Names of the PC/SC readers, in pcscd's order. SimError if PC/SC is unavailable."""
    with PcscContext() as context:
        return context.reader_names()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


class PcscTransport:
    """A card in a PC/SC reader, through pcscd and pyscard.

    ``reader`` is the reader's name, or a function that picks it from the names pcscd lists
    (listed in the same context as the connection). The card is shared with other programs, so
    the whole conversation runs inside one PC/SC transaction (``SCardBeginTransaction``):
    another process - a second gw run for another profile on the same SIM - waits for it
    instead of interleaving its SELECTs with ours, which would leave AUTHENTICATE or READ
    BINARY on the wrong file. On close the card is left as it is (``SCARD_LEAVE_CARD``), not
    powered down under other programs' feet.
    """

    def __init__(self, reader: str | Callable[[list[str]], str]) -> None:
        self._context = context = PcscContext()
        scard = context.scard
        self._hcard: Any = None
        self._in_transaction = False
        try:
            names = context.reader_names()
            name = reader(names) if callable(reader) else reader
            if name not in names:
                raise SimError(f"no PC/SC reader named '{name}'")
            self.name = name
            rv, hcard, protocol = scard.SCardConnect(
                context.handle, name, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
            )
            if rv in (scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD):
                raise SimError(f"no card in PC/SC reader '{name}'")
            if rv != scard.SCARD_S_SUCCESS:
                raise SimError(f"cannot connect to the card in PC/SC reader '{name}' ({context.message(rv)})")
            self._hcard = hcard
            self._header = scard.SCARD_PCI_T1 if protocol == scard.SCARD_PROTOCOL_T1 else scard.SCARD_PCI_T0
            rv = scard.SCardBeginTransaction(hcard)  # pcsc-lite waits while another program holds the card
            if rv != scard.SCARD_S_SUCCESS:
                raise SimError(f"cannot reserve the card in PC/SC reader '{name}' ({context.message(rv)})")
            self._in_transaction = True
        except BaseException:
            self.close()
            raise

    @property
    def atr(self) -> bytes:
        scard = self._context.scard
        rv, _reader, _state, _protocol, atr = scard.SCardStatus(self._hcard)
        if rv != scard.SCARD_S_SUCCESS:
            raise SimError(f"the card in PC/SC reader '{self.name}' was removed or stopped answering")
        return bytes(atr)

    def transmit(self, apdu: bytes) -> bytes:
        scard = self._context.scard
        try:
            rv, response = scard.SCardTransmit(self._hcard, self._header, list(apdu))
        except Exception:
            rv, response = None, []
        if rv != scard.SCARD_S_SUCCESS or len(response) < 2:
            raise SimError(f"the card in PC/SC reader '{self.name}' was removed or stopped answering")
        return bytes(response)

    def close(self, reset: bool = False) -> None:
        """End the transaction, disconnect and release the PC/SC context now (not in a destructor).

        ``reset`` ends the transaction with ``SCARD_RESET_CARD``: the card forgets a verified
        PIN, so no later program finds the SIM unlocked.
        """
        scard = self._context.scard
        hcard, self._hcard = self._hcard, None
        if hcard is not None:
            if self._in_transaction:
                self._in_transaction = False
                try:
                    scard.SCardEndTransaction(hcard, scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD)
                except Exception:
                    pass  # card removed: pcscd has ended the transaction already
            try:
                scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)
            except Exception:
                pass
        self._context.release()


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
