"""The modem transport through a real serial path: pyserial on a pty, a fake modem on the other end."""

from __future__ import annotations

import pytest

from gw_emulators.milenage import Milenage, make_autn, recover_sqn_from_auts
from gw_emulators.modem import FakeModem
from gw_emulators.usim import VirtualUsim
from gw_plugins.krypton.sim import SimError, SyncFailure, list_readers, open_sim

pytest.importorskip("serial")

K, OPC = bytes.fromhex("0396eb317b6d1c36f19c1c84cd6ffd16"), bytes.fromhex("53c15671c60a4b731c55b4a441c0bde2")


def test_modem_imsi_and_authenticate():
    usim = VirtualUsim("44010312345678", K, OPC, 40)
    m = Milenage(K, opc=OPC)
    rand = bytes.fromhex("c00d603103dcee52c4478119494202e8")
    with FakeModem(usim) as modem:
        sim = open_sim(f"modem:{modem.path}")
        assert sim.imsi() == "44010312345678"
        assert "AT+CIMI" in modem.commands
        result = sim.authenticate(rand, make_autn(m, rand, 41))
        assert result.res.hex() == "d3a628ed988620f0" and result.ck.hex() == "58c433ff7a7082acd424220f2b67c556"
        assert any(c.startswith('AT+CSIM=78,"0088008122') for c in modem.commands)
        with pytest.raises(SyncFailure) as info:
            sim.authenticate(rand, make_autn(m, rand, 41))
        assert recover_sqn_from_auts(m, rand, info.value.auts) == 41
        sim.close()


def test_modem_without_sim_or_csim():
    with FakeModem(None) as modem:
        sim = open_sim(f"modem:{modem.path}")
        with pytest.raises(SimError, match="did not report an IMSI"):
            sim.imsi()
        sim.close()
    usim = VirtualUsim("440103123456789", K, OPC)
    with FakeModem(usim, csim=False) as modem:
        sim = open_sim(f"modem:{modem.path}")
        with pytest.raises(SimError, match=r"refused AT\+CSIM \(ERROR\)"):
            sim.authenticate(bytes(16), bytes(16))
        sim.close()


def test_list_readers_reports_modems_without_keys():
    usim = VirtualUsim("440103123456789", K, OPC)
    with FakeModem(usim) as modem, FakeModem(None) as empty:
        found = list_readers(modems=[modem.path, empty.path])
    modems = [r for r in found if r["kind"] == "modem"]
    assert modems[0] == {
        "name": modem.path, "kind": "modem", "reader": f"modem:{modem.path}", "imsi": "440103123456789", "error": None
    }
    assert modems[1]["imsi"] is None and "IMSI" in modems[1]["error"]
    assert K.hex() not in repr(found)


def test_modem_pin_through_csim():
    """A modem's AT+CIMI refuses while PIN1 waits (+CME ERROR: SIM PIN required); VERIFY goes by AT+CSIM."""
    from gw_plugins.krypton.sim import PinRequired, WrongPin

    usim = VirtualUsim("440103123456789", K, OPC, pin="8251", pin_enabled=True)
    with FakeModem(usim) as modem:
        sim = open_sim(f"modem:{modem.path}")
        with pytest.raises(PinRequired):
            sim.imsi()
        assert sim.pin_tries() == 3
        with pytest.raises(WrongPin, match="2 tries left"):
            sim.verify_pin("1111")
        sim.verify_pin("8251")
        assert sim.imsi() == "440103123456789"
        state = sim.pin_state()
        assert state.enabled and state.tries_left is None  # verified: nothing to ask
        sim.close()
    verifies = [c for c in modem.commands if c.startswith('AT+CSIM=26,"0020000108')]
    assert len(verifies) == 2 and b"8251".hex().upper() in verifies[1]


def test_pin_commands_through_a_modem(gw_home):
    """`gw krypton pin status|disable` against a modem's SIM, from the real gw executable."""
    usim = VirtualUsim("440103123456789", K, OPC, pin="8251", pin_enabled=True)
    script = gw_home.root / "askpass.sh"
    script.write_text('#!/bin/sh\ncase "$1" in *Current*) echo 8251 ;; *) exit 1 ;; esac\n')
    script.chmod(0o700)
    gw_home.extra_settings["askpass"] = str(script)
    with FakeModem(usim) as modem:
        gw_home.write_config(
            f"""
            [profiles.sim]
            steps = [{{ use = "krypton", operation = "subscriber-metadata", reader = "modem:{modem.path}", pin = "prompt" }}]
            """
        )
        status = gw_home.run("krypton", "pin", "status", "--profile", "sim")
        assert status.returncode == 0 and status.stdout.strip() == "PIN1 enabled, 3 tries left", status.stderr
        out = gw_home.run("krypton", "pin", "disable", "--profile", "sim")
        assert out.returncode == 0 and out.stdout.strip() == "PIN1 disabled", out.stderr
        assert not usim.pin_state["pin_enabled"] and "8251" not in out.stdout + out.stderr
