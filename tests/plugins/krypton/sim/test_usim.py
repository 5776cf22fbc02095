"""The virtual USIM at APDU level: selection, EF_DIR, EF_IMSI, AUTHENTICATE, T=0 behaviour, state file."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from gw_emulators.milenage import Milenage, make_autn, recover_sqn_from_auts
from gw_emulators.usim import SQN_WINDOW, USIM_AID, VirtualUsim, encode_imsi

from .conftest import h

K1 = "465b5ce8b199b49faa5f0a2ee238a6bc"
OPC1 = "cd63cb71954a9f4e48a5994e37a02baf"
RAND1 = "23553cbe9637a89d218ae64dae47bf35"
SQN1 = 0xFF9BB4D0B607


def tx(card: VirtualUsim, apdu: str) -> str:
    return card.transmit(h(apdu.replace(" ", ""))).hex().upper()


def full(card: VirtualUsim, apdu: str) -> tuple[bytes, str]:
    """Send a command and follow 61xx with GET RESPONSE, as a T=0 host does."""
    resp = card.transmit(h(apdu.replace(" ", "")))
    if resp[0] == 0x61:
        resp = card.transmit(bytes([0, 0xC0, 0, 0, resp[1]]))
    return resp[:-2], resp[-2:].hex().upper()


def select_usim(card: VirtualUsim) -> None:
    assert full(card, "00 A4 04 04 10" + USIM_AID.hex())[1] == "9000"


@pytest.fixture
def card(vector) -> VirtualUsim:
    return VirtualUsim("440103123456789", h(vector["K"]), h(vector["OPc"]), int(vector["SQN"], 16) - 1)


def test_atr_is_well_formed():
    atr = VirtualUsim("440103123456789", bytes(16), bytes(16)).atr
    assert atr[0] == 0x3B
    check = 0
    for b in atr[1:]:
        check ^= b
    assert check == 0  # TCK makes the XOR of T0..TCK zero


def test_selection_walk_mf_dir_adf_imsi():
    card = VirtualUsim("440103123456789", bytes(16), bytes(16))
    assert tx(card, "00 A4 00 04 02 3F00")[:2] == "61"
    fcp, sw = full(card, "00 A4 00 04 02 3F00")
    assert sw == "9000" and fcp[0] == 0x62
    fcp, sw = full(card, "00 A4 00 04 02 2F00")
    assert sw == "9000" and bytes.fromhex("8205422100") in fcp  # linear fixed EF, record length follows
    # READ RECORD with the wrong length: 6C26 tells the right one.
    assert tx(card, "00 B2 01 04 00") == "6C26"
    record = tx(card, "00 B2 01 04 26")
    assert record.startswith("61" + "18" + "4F10" + USIM_AID.hex().upper())
    assert record.endswith("9000")
    assert tx(card, "00 B2 02 04 26") == "6A83"
    # EF_IMSI is only inside the USIM application.
    assert tx(card, "00 A4 00 04 02 6F07") == "6A82"
    assert tx(card, "00 A4 04 04 07 A0000000871002")[:2] == "61"  # partial AID selects
    assert tx(card, "00 A4 00 0C 02 6F07") == "9000"  # P2=0C: no FCP
    assert tx(card, "00 B0 00 00 09") == "084904011332547698" + "9000"
    assert tx(card, "00 B0 00 00 00") == "6C09"
    assert tx(card, "00 B0 00 09 01") == "6B00"


def test_errors_for_unknown_things():
    card = VirtualUsim("440103123456789", bytes(16), bytes(16))
    assert tx(card, "A0 A4 00 00 02 3F00") == "6E00"  # GSM class byte: not a 2G SIM
    assert tx(card, "00 CA 00 00 00") == "6D00"
    assert tx(card, "00 A4 04 04 05 A000000099") == "6A82"
    assert tx(card, "00 C0 00 00 10") == "6985"  # nothing pending
    assert tx(card, "00 B0 00 00 09") == "6986"  # no EF selected
    assert tx(card, "00 88 00 81 22" + "10" + "00" * 16 + "10" + "00" * 16) == "6985"  # USIM not selected
    assert tx(card, "00A4") == "6700"


@pytest.mark.parametrize(
    "imsi, ef",
    [
        ("440103123456789", "084904011332547698"),
        ("44010312345678", "0841040113325476F8"),  # 14 digits: even parity nibble 1, F filler
        ("295050901234567", "082959509010325476"),
    ],
)
def test_imsi_bcd(imsi, ef):
    assert encode_imsi(imsi).hex().upper() == ef.upper()
    card = VirtualUsim(imsi, bytes(16), bytes(16))
    select_usim(card)
    assert full(card, "00 A4 00 04 02 6F07")[1] == "9000"
    data, sw = full(card, "00 B0 00 00 09")
    assert (data.hex().upper(), sw) == (ef.upper(), "9000")


def auth_apdu(rand: bytes, autn: bytes) -> str:
    return "00 88 00 81 22 10" + rand.hex() + "10" + autn.hex()


def test_authenticate_success_matches_vectors(card, vector):
    select_usim(card)
    m = Milenage(h(vector["K"]), opc=h(vector["OPc"]))
    rand = h(vector["RAND"])
    autn = make_autn(m, rand, int(vector["SQN"], 16), h(vector["AMF"]))
    data, sw = full(card, auth_apdu(rand, autn))
    assert sw == "9000"
    assert data[:2] == b"\xdb\x08"
    assert data[2:10].hex() == vector["f2"]
    assert data[10] == 16 and data[11:27].hex() == vector["f3"]
    assert data[27] == 16 and data[28:44].hex() == vector["f4"]
    assert data[44] == 8 and len(data) == 53
    assert card.sqn == int(vector["SQN"], 16)


def test_worked_example_vector_set_1():
    """The exact bytes for test set 1, with the SIM's highest SQN just below the vector's."""
    card = VirtualUsim("440103123456789", h(K1), h(OPC1), SQN1 - 7)
    assert tx(card, "00A4040407A0000000871002") == "6123"  # FCP with the PIN status template (C6)
    # AUTN = (SQN xor AK) || AMF || MAC-A = 55F328B43577 || B9B9 || 4A9FFAC354DFAFB3
    command = "0088008122" "10" "23553CBE9637A89D218AE64DAE47BF35" "10" "55F328B43577B9B94A9FFAC354DFAFB3"
    assert tx(card, command) == "6135"
    assert tx(card, "00C0000035") == (
        "DB" "08" "A54211D5E3BA50BF"
        "10" "B40BA9A3C58B2A05BBF0D987B21BF8CB"
        "10" "F769BCD751044604127672711C6D3441"
        "08" "EAE4BE823AF9A08B"
        "9000"
    )
    # The same challenge again is a replay: DC 0E AUTS with AUTS = (SQN_MS xor AK*) || MAC-S.
    assert tx(card, command) == "6110"
    assert tx(card, "00C0000010") == "DC0E" "BA853F3C123C" "CF44E93596E355C6" "9000"
    m = Milenage(h(K1), opc=h(OPC1))
    assert recover_sqn_from_auts(m, h(RAND1), h("BA853F3C123CCF44E93596E355C6")) == SQN1
    # A flipped MAC bit: 98 62.
    assert tx(card, command[:-2] + "B2") == "9862"


def test_sync_failure_auts_gives_back_the_sims_sqn(vector):
    m = Milenage(h(vector["K"]), opc=h(vector["OPc"]))
    card = VirtualUsim("440103123456789", h(vector["K"]), h(vector["OPc"]), 5000)
    select_usim(card)
    rand = h(vector["RAND"])
    for stale in (5000, 10, SQN_WINDOW + 5001):  # equal, older, too far ahead
        data, sw = full(card, auth_apdu(rand, make_autn(m, rand, stale)))
        assert sw == "9000" and data[:2] == b"\xdc\x0e" and len(data) == 16
        assert recover_sqn_from_auts(m, rand, data[2:]) == 5000
    data, sw = full(card, auth_apdu(rand, make_autn(m, rand, SQN_WINDOW + 5000)))
    assert data[:1] == b"\xdb" and card.sqn == SQN_WINDOW + 5000


def test_mac_failure(card, vector):
    select_usim(card)
    wrong = Milenage(bytes(16), opc=h(vector["OPc"]))
    rand = h(vector["RAND"])
    assert tx(card, auth_apdu(rand, make_autn(wrong, rand, int(vector["SQN"], 16)))) == "9862"
    assert card.sqn == int(vector["SQN"], 16) - 1  # nothing accepted


def test_get_response_in_pieces():
    card = VirtualUsim("440103123456789", bytes(16), bytes(16))
    assert tx(card, "00 A4 00 04 02 3F00") == "610D"
    first = tx(card, "00 C0 00 00 04")
    assert first.endswith("6109") and len(first) == 12
    assert tx(card, "00 C0 00 00 09").endswith("9000")


def test_without_gsm_context_there_is_no_kc():
    card = VirtualUsim("440103123456789", h(K1), h(OPC1), SQN1 - 1, gsm_context=False)
    select_usim(card)
    data, _ = full(card, auth_apdu(h(RAND1), h("55F328B43577B9B94A9FFAC354DFAFB3")))
    assert len(data) == 1 + 9 + 17 + 17


def _authenticate_in_child(path: str, sqn: int, queue) -> None:  # pragma: no cover - runs in a child
    card = VirtualUsim.from_file(path)
    m = Milenage(bytes.fromhex(K1), opc=bytes.fromhex(OPC1))
    card.transmit(bytes.fromhex("00A4040407A0000000871002"))
    rand = bytes(range(16))
    queue.put(card.transmit(bytes.fromhex("0088008122") + b"\x10" + rand + b"\x10" + make_autn(m, rand, sqn)).hex())


def test_state_file_keeps_sqn_across_processes(tmp_path):
    path = tmp_path / "sim.json"
    path.write_text(json.dumps({"imsi": "440103123456789", "k": K1, "opc": OPC1, "sqn": 100}))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_authenticate_in_child, args=(str(path), 150, queue))
    child.start()
    child.join(20)
    assert queue.get(timeout=5) == "6135"
    assert json.loads(path.read_text())["sqn"] == 150
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    # A second SIM object loaded from the file sees the child's SQN: 150 is now stale.
    card = VirtualUsim.from_file(str(path))
    assert card.sqn == 150
    select_usim(card)
    m = Milenage(h(K1), opc=h(OPC1))
    rand = bytes(range(16))
    data, _ = full(card, auth_apdu(rand, make_autn(m, rand, 150)))
    assert data[:1] == b"\xdc" and recover_sqn_from_auts(m, rand, data[2:]) == 150
    data, _ = full(card, auth_apdu(rand, make_autn(m, rand, 151)))
    assert data[:1] == b"\xdb" and json.loads(path.read_text())["sqn"] == 151


def test_from_file_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot load virtual SIM file"):
        VirtualUsim.from_file(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"imsi": "1"}')
    with pytest.raises(ValueError, match="expected JSON"):
        VirtualUsim.from_file(str(bad))


# -- PIN1 (ETSI TS 102 221 11.1.9 VERIFY, 11.1.10 CHANGE, 11.1.11/12 DISABLE/ENABLE, 11.1.13 UNBLOCK)
def pin_block(pin: str) -> str:
    return (pin.encode().ljust(8, b"\xff")).hex().upper()


def test_pin1_guards_imsi_and_authenticate_until_verified():
    card = VirtualUsim("440103123456789", h(K1), h(OPC1), SQN1 - 7, pin="8251", pin_enabled=True)
    select_usim(card)
    assert tx(card, "00 A4 00 0C 02 6F07") == "9000"
    assert tx(card, "00 B0 00 00 09") == "6982"
    command = "0088008122" "10" "23553CBE9637A89D218AE64DAE47BF35" "10" "55F328B43577B9B94A9FFAC354DFAFB3"
    assert tx(card, command) == "6982"
    assert tx(card, "00 20 00 01") == "63C3"  # the state, no try spent
    assert tx(card, "00 20 00 01 08" + pin_block("1111")) == "63C2"
    assert tx(card, "00 20 00 01") == "63C2"
    assert tx(card, "00 20 00 01 08" + pin_block("8251")) == "9000"
    assert card.pin_tries == 3 and card.pin_verified
    assert tx(card, "00 20 00 01") == "9000"
    assert tx(card, "00 B0 00 00 09") == encode_imsi("440103123456789").hex().upper() + "9000"
    assert tx(card, command) == "6135"
    card.reset()  # power cycle: verification forgotten
    select_usim(card)
    assert tx(card, "00 A4 00 0C 02 6F07") == "9000" and tx(card, "00 B0 00 00 09") == "6982"


def test_third_wrong_pin_blocks_and_the_puk_unblocks():
    card = VirtualUsim("440103123456789", h(K1), h(OPC1), pin="8251", pin_enabled=True, puk="11223344")
    select_usim(card)
    assert [tx(card, "00 20 00 01 08" + pin_block("0000")) for _ in range(3)] == ["63C2", "63C1", "6983"]
    assert tx(card, "00 20 00 01 08" + pin_block("8251")) == "6983"  # even the right PIN: blocked
    assert tx(card, "00 20 00 01") == "6983"
    assert tx(card, "00 2C 00 01 10" + pin_block("99999999") + pin_block("1357")) == "6982"
    assert tx(card, "00 2C 00 01 10" + pin_block("11223344") + pin_block("1357")) == "9000"
    assert card.pin_state == {"pin": "1357", "pin_enabled": True, "pin_tries": 3, "puk": "11223344"}


def test_change_disable_enable_and_the_status_template():
    card = VirtualUsim("440103123456789", h(K1), h(OPC1), pin="8251", pin_enabled=True)
    fcp, sw = full(card, "00 A4 04 04 10" + USIM_AID.hex())
    assert sw == "9000" and bytes.fromhex("C6069001808301 01".replace(" ", "")) in fcp
    assert tx(card, "00 24 00 01 10" + pin_block("8251") + pin_block("24680")) == "9000"
    assert tx(card, "00 26 00 01 08" + pin_block("8251")) == "63C2"  # the old PIN no longer works
    assert tx(card, "00 26 00 01 08" + pin_block("24680")) == "9000"
    assert tx(card, "00 26 00 01 08" + pin_block("24680")) == "6985"  # already disabled
    assert tx(card, "00 24 00 01 10" + pin_block("24680") + pin_block("1111")) == "6984"  # disabled: no change
    fcp, _ = full(card, "00 A4 04 04 10" + USIM_AID.hex())
    assert bytes.fromhex("C60690010083 0101".replace(" ", "")) in fcp
    assert tx(card, "00 20 00 01") == "9000"  # nothing to verify
    assert tx(card, "00 28 00 01 08" + pin_block("24680")) == "9000"
    assert card.pin_state["pin_enabled"] and card.pin_tries == 3
    assert tx(card, "00 20 00 01 04 31323334") == "6700"  # a PIN block is 8 bytes


def test_pin_state_lives_in_the_state_file(tmp_path):
    """Several processes (gw runs, pcscd's card thread) share one retry counter through the file."""
    path = tmp_path / "sim.json"
    path.write_text(json.dumps({"imsi": "440103123456789", "k": K1, "opc": OPC1, "sqn": 5,
                                "pin": "8251", "pin_enabled": True}))
    first = VirtualUsim.from_file(str(path))
    select_usim(first)
    assert tx(first, "00 20 00 01 08" + pin_block("0000")) == "63C2"
    second = VirtualUsim.from_file(str(path))
    assert second.pin_tries == 2
    select_usim(second)
    assert tx(second, "00 20 00 01 08" + pin_block("0000")) == "63C1"
    assert first.pin_tries == 1
    saved = json.loads(path.read_text())
    assert saved["pin_tries"] == 1 and saved["sqn"] == 5 and oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_log_keeps_headers_only():
    card = VirtualUsim("440103123456789", h(K1), h(OPC1), pin="8251", pin_enabled=True)
    tx(card, "00 20 00 01 08" + pin_block("8251"))
    assert card.log == [bytes.fromhex("0020000108")]  # never the PIN
