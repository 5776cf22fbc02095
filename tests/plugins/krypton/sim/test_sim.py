"""gw_plugins.krypton.sim over an in-process virtual USIM and an emulated SIM file."""

from __future__ import annotations

import json

import pytest

from gw.errors import GwError
from gw_emulators.milenage import Milenage, make_autn, recover_sqn_from_auts
from gw_emulators.usim import VirtualUsim
from gw_plugins.krypton.sim import AuthResult, MacFailure, Sim, SimError, SyncFailure, decode_imsi, open_sim
from gw_plugins.krypton.transports import InProcessTransport

from .conftest import h


class Recording:
    """A transport that hands APDUs to a card and remembers them (to check what Sim sends)."""

    name = "recording"

    def __init__(self, card) -> None:
        self.card, self.sent = card, []

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu.hex().upper())
        return self.card.transmit(apdu)

    def close(self) -> None:
        self.sent.append("closed")


class TwoGSim:
    """A GSM-only SIM: it answers class 00 with 6E00."""

    def transmit(self, apdu: bytes) -> bytes:
        return b"\x6e\x00"


class Mute:
    def transmit(self, apdu: bytes) -> bytes:
        return b"\x90"


def test_errors_are_gw_errors():
    assert issubclass(SimError, GwError)
    assert issubclass(SyncFailure, SimError) and issubclass(MacFailure, SimError)


@pytest.mark.parametrize("imsi", ["440103123456789", "44010312345678", "310150123456789", "2080112345678"])
def test_imsi_walks_the_file_system(imsi):
    rec = Recording(VirtualUsim(imsi, bytes(16), bytes(16)))
    sim = Sim(rec)
    assert sim.imsi() == imsi
    # krypton-client-go's walk (endorse/iso7816.go findADFUSIM + ReadIMSI), fetching only EF_DIR's FCP
    assert rec.sent == [
        "00A40004023F00",  # MF: status only
        "00A40004022F00", "00C0000014",  # EF_DIR: its FCP gives the record length
        "00B2010426",  # record 1, length taken from EF_DIR's FCP
        "00A4040410A0000000871002FF49FF058907090000",  # USIM ADF by AID: status only
        "00A40004026F07",  # EF_IMSI: status only
        "00B0000009",
    ]
    assert sim.imsi() == imsi and len(rec.sent) == 7  # read once per Sim
    sim.close()
    assert rec.sent[-1] == "closed"


def test_authenticate_matches_vectors(vector):
    sqn = int(vector["SQN"], 16)
    card = VirtualUsim("440103123456789", h(vector["K"]), h(vector["OPc"]), sqn - 1)
    m = Milenage(h(vector["K"]), opc=h(vector["OPc"]))
    rand = h(vector["RAND"])
    with Sim(InProcessTransport(card)) as sim:
        result = sim.authenticate(rand, make_autn(m, rand, sqn, h(vector["AMF"])))
    assert isinstance(result, AuthResult)
    assert result.res.hex() == vector["f2"]
    assert result.ck.hex() == vector["f3"]
    assert result.ik.hex() == vector["f4"]
    assert result.kc is not None and len(result.kc) == 8
    assert vector["f3"] not in repr(result)


def test_authenticate_without_kc():
    card = VirtualUsim("440103123456789", bytes(16), bytes(16), 0, gsm_context=False)
    m = Milenage(bytes(16), opc=bytes(16))
    result = Sim(InProcessTransport(card)).authenticate(bytes(16), make_autn(m, bytes(16), 1))
    assert result.kc is None and len(result.ck) == 16


def test_sync_failure_carries_auts():
    card = VirtualUsim("440103123456789", bytes(16), bytes(16), 77)
    m = Milenage(bytes(16), opc=bytes(16))
    rand = bytes(range(16))
    sim = Sim(InProcessTransport(card))
    with pytest.raises(SyncFailure) as info:
        sim.authenticate(rand, make_autn(m, rand, 3))
    assert len(info.value.auts) == 14
    assert recover_sqn_from_auts(m, rand, info.value.auts) == 77
    assert sim.authenticate(rand, make_autn(m, rand, 78)).res == m.f2345(rand)[0]


def test_mac_failure():
    card = VirtualUsim("440103123456789", bytes(16), bytes(16), 0)
    wrong = Milenage(b"\x01" * 16, opc=bytes(16))
    with pytest.raises(MacFailure, match="9862"):
        Sim(InProcessTransport(card)).authenticate(bytes(16), make_autn(wrong, bytes(16), 1))


def test_bad_cards_give_clear_errors():
    with pytest.raises(SimError, match="not a UICC"):
        Sim(InProcessTransport(TwoGSim(), name="old card")).imsi()
    with pytest.raises(SimError, match="malformed"):
        Sim(InProcessTransport(Mute())).imsi()
    with pytest.raises(SimError, match="16 bytes"):
        Sim(InProcessTransport(TwoGSim())).authenticate(bytes(15), bytes(16))


def test_decode_imsi():
    assert decode_imsi(h("084904011332547698")) == "440103123456789"
    assert decode_imsi(h("0841040113325476F8")) == "44010312345678"
    for bad in ("00", "FFFFFFFFFFFFFFFFFF", "0849A4011332547698", "0249F4"):
        with pytest.raises(SimError):
            decode_imsi(h(bad))


def emulated(path, **kwargs):
    """The demo plugin's emulated reader, handed to open_sim as gw's plugin hook would."""
    from gw_emulators.usim import EmulatedReader

    options = {} if path is None else {"sim_file": str(path)}
    return open_sim("emulated", options=options, readers={"emulated": EmulatedReader()}, **kwargs)


def test_open_emulated(tmp_path, capsys):
    path = tmp_path / "sim.json"
    path.write_text(json.dumps({"imsi": "44010312345678", "k": "00" * 16, "opc": "11" * 16, "sqn": 9}))
    sim = emulated(path)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "EMULATED SIM" in err and "00" * 16 not in err
    assert sim.imsi() == "44010312345678"
    m = Milenage(bytes(16), opc=h("11" * 16))
    sim.authenticate(bytes(16), make_autn(m, bytes(16), 10))
    sim.close()
    assert json.loads(path.read_text())["sqn"] == 10


def test_open_sim_errors(tmp_path):
    with pytest.raises(SimError, match="needs a sim_file"):
        emulated(None)
    with pytest.raises(SimError, match="cannot load virtual SIM file"):
        emulated(tmp_path / "none.json")
    # without the demo plugin's hook there is no emulated reader, and the line says why
    with pytest.raises(SimError, match="offered by the demo plugin"):
        open_sim("emulated", options={"sim_file": str(tmp_path / "none.json")})
    with pytest.raises(SimError, match="unknown SIM reader"):
        open_sim("bluetooth:phone")
    with pytest.raises(SimError, match="cannot open modem"):
        open_sim(f"modem:{tmp_path}/ttyUSB9")


def test_status_callable_is_used(tmp_path):
    import contextlib

    path = tmp_path / "sim.json"
    path.write_text(json.dumps({"imsi": "440103123456789", "k": "00" * 16, "opc": "11" * 16, "sqn": 0}))
    shown = []

    def status(message):
        shown.append(message)
        return contextlib.nullcontext()

    emulated(path, status=status).close()
    assert shown == ["Looking for the SIM ..."]
