"""The modem transport through a real serial path: pyserial on a pty, a fake modem on the other end."""

from __future__ import annotations

import os
import re
import select
import threading
import tty

import pytest

from gw_emulators.milenage import Milenage, make_autn, recover_sqn_from_auts
from gw_emulators.usim import VirtualUsim
from gw_plugins.krypton.sim import SimError, SyncFailure, list_readers, open_sim

pytest.importorskip("serial")

CSIM = re.compile(r'^AT\+CSIM=(\d+),"([0-9A-Fa-f]*)"$')


class FakeModem:
    """Answers AT commands on a pty master like a cellular modem with echo on until ATE0."""

    def __init__(self, usim: VirtualUsim | None, *, csim: bool = True) -> None:
        self.usim, self.csim = usim, csim
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.echo = True
        self.commands: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "FakeModem":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self.master)
        os.close(self.slave)

    def _reply(self, line: str) -> str:
        if line == "ATE0":
            self.echo = False
            return "\r\nOK\r\n"
        if line == "AT":
            return "\r\nOK\r\n"
        if self.usim is None:
            return "\r\n+CME ERROR: SIM not inserted\r\n"
        if line == "AT+CIMI":
            return f"\r\n{self.usim.imsi}\r\n\r\nOK\r\n"
        m = CSIM.match(line)
        if m and self.csim and int(m.group(1)) == len(m.group(2)):
            out = self.usim.transmit(bytes.fromhex(m.group(2))).hex().upper()
            return f'\r\n+CSIM: {len(out)},"{out}"\r\n\r\nOK\r\n'
        return "\r\nERROR\r\n"

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                return
            while b"\r" in buf:
                raw, buf = buf.split(b"\r", 1)
                line = raw.decode().strip()
                if not line:
                    continue
                self.commands.append(line)
                answer = (line + "\r" if self.echo else "") + self._reply(line)
                os.write(self.master, answer.encode())


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
