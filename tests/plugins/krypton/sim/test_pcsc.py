"""End to end through the real PC/SC stack: VirtualUsim -> VpcdCard -> pcscd (vpcd) -> pyscard -> Sim.

Needs pcscd, vsmartcard-vpcd and pyscard (tests/pcsc/install.sh); skipped without them,
except under CI=true where they fail (see conftest.py).
"""

from __future__ import annotations

import time

import pytest

from gw_emulators.milenage import Milenage, make_autn, recover_sqn_from_auts
from gw_emulators.usim import VirtualUsim
from gw_plugins.krypton.sim import MacFailure, Sim, SimError, SyncFailure, list_readers, open_sim

from .conftest import h

READER = "Virtual PCD 00 00"
SET1 = dict(K="465b5ce8b199b49faa5f0a2ee238a6bc", OPc="cd63cb71954a9f4e48a5994e37a02baf",
            RAND="23553cbe9637a89d218ae64dae47bf35", SQN=0xFF9BB4D0B607, AMF="b9b9")


def wait_for_sim(reader: str, timeout: float = 15.0) -> Sim:
    """pcscd notices a new card by polling; retry until the reader holds it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return open_sim(reader)
        except SimError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"the virtual card never showed up in {reader}: {exc}") from None
            time.sleep(0.2)


@pytest.fixture
def inserted(vpcd_insert):
    """The virtual USIM in reader 00 00, already served by pcscd (removed and awaited gone after the test)."""
    usim = VirtualUsim("440103123456789", h(SET1["K"]), h(SET1["OPc"]), SET1["SQN"] - 1)
    return usim, vpcd_insert(usim)


def test_imsi_and_authenticate_through_pcscd(inserted):
    usim, _ = inserted
    m = Milenage(h(SET1["K"]), opc=h(SET1["OPc"]))
    rand = h(SET1["RAND"])
    with wait_for_sim(f"pcsc:{READER}") as sim:
        assert sim.name == READER
        assert sim.transport.atr == usim.atr
        assert sim.imsi() == "440103123456789"
        result = sim.authenticate(rand, make_autn(m, rand, SET1["SQN"], h(SET1["AMF"])))
        assert result.res.hex() == "a54211d5e3ba50bf"
        assert result.ck.hex() == "b40ba9a3c58b2a05bbf0d987b21bf8cb"
        assert result.ik.hex() == "f769bcd751044604127672711c6d3441"
        with pytest.raises(SyncFailure) as info:  # the same challenge again is stale
            sim.authenticate(rand, make_autn(m, rand, SET1["SQN"], h(SET1["AMF"])))
        assert recover_sqn_from_auts(m, rand, info.value.auts) == SET1["SQN"]
        with pytest.raises(MacFailure):
            sim.authenticate(rand, make_autn(Milenage(bytes(16), opc=h(SET1["OPc"])), rand, SET1["SQN"] + 1))
    assert usim.sqn == SET1["SQN"]


def test_reader_by_index_auto_and_probe(inserted):
    with wait_for_sim("pcsc:0") as sim:
        assert sim.imsi() == "440103123456789"
    with open_sim("auto") as sim:
        assert sim.name == READER and sim.imsi() == "440103123456789"
    found = {r["name"]: r for r in list_readers(modems=[])}
    assert found[READER]["imsi"] == "440103123456789" and found[READER]["kind"] == "pcsc"
    assert found["Virtual PCD 00 01"]["imsi"] is None and "no card" in found["Virtual PCD 00 01"]["error"]


def test_card_removed_mid_way(inserted):
    _, card = inserted
    sim = wait_for_sim(f"pcsc:{READER}")
    assert sim.imsi() == "440103123456789"
    card.stop()
    assert sim.imsi() == "440103123456789"  # read once per run: no APDU for it now
    with pytest.raises(SimError, match="removed or stopped answering"):
        sim.authenticate(bytes(16), bytes(16))
    sim.close()


def test_empty_reader_and_unknown_reader(pcscd):
    with pytest.raises(SimError, match="no card in PC/SC reader 'Virtual PCD 00 01'"):
        open_sim("pcsc:Virtual PCD 00 01")
    with pytest.raises(SimError, match="no PC/SC reader matches"):
        open_sim("pcsc:Yubikey")
    with pytest.raises(SimError, match="several PC/SC readers"):
        open_sim("pcsc:Virtual")
    with pytest.raises(SimError, match="no PC/SC reader number 7"):
        open_sim("pcsc:7")


def test_opening_a_sim_takes_one_pcsc_context_and_calls_back_before_the_first_apdu(inserted, monkeypatch):
    """One SCardEstablishContext per SIM (pyscard's high-level classes took three round trips to
    pcscd before the first APDU), and ``connected`` runs between SCardConnect and the first APDU."""
    from smartcard import scard

    wait_for_sim(f"pcsc:{READER}").close()
    events: list[str] = []
    for name in ("SCardEstablishContext", "SCardConnect", "SCardTransmit"):
        real = getattr(scard, name)

        def spy(*args, _real=real, _name=name):
            events.append(_name)
            return _real(*args)

        monkeypatch.setattr(scard, name, spy)
    with open_sim(f"pcsc:{READER}", connected=lambda: events.append("connected")) as sim:
        assert sim.imsi() == "440103123456789"
    assert events.count("SCardEstablishContext") == 1
    first_apdu = events.index("SCardTransmit")
    assert events.index("SCardConnect") < events.index("connected") < first_apdu
    assert events.count("connected") == 1


def test_a_missing_reader_and_an_empty_reader_are_one_line_each(pcscd):
    with pytest.raises(SimError, match=r"^no PC/SC reader matches 'No Such Reader' \(readers: "):
        open_sim("pcsc:No Such Reader")
    with pytest.raises(SimError, match=r"^no card in PC/SC reader 'Virtual PCD 00 01'$"):
        open_sim("pcsc:Virtual PCD 00 01")
