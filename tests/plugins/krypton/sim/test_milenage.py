"""Milenage (TS 35.206) against the published TS 35.207 test sets, and AUTN / AUTS round trips."""

from __future__ import annotations

import pytest

from gw_emulators.milenage import Milenage, make_autn, recover_sqn_from_auts, xor

from .conftest import h


def test_opc_is_derived_from_op(vector):
    assert Milenage(h(vector["K"]), op=h(vector["OP"])).opc.hex() == vector["OPc"]


@pytest.mark.parametrize("variant", ["op", "opc"])
def test_every_function_matches_the_vectors(vector, variant):
    m = Milenage(h(vector["K"]), **{variant: h(vector["OP" if variant == "op" else "OPc"])})
    rand, sqn, amf = h(vector["RAND"]), h(vector["SQN"]), h(vector["AMF"])
    assert m.f1(rand, sqn, amf).hex() == vector["f1"]
    assert m.f1star(rand, sqn, amf).hex() == vector["f1star"]
    res, ck, ik, ak = m.f2345(rand)
    assert res.hex() == vector["f2"]
    assert ck.hex() == vector["f3"]
    assert ik.hex() == vector["f4"]
    assert ak.hex() == vector["f5"]
    assert m.f5star(rand).hex() == vector["f5star"]


def test_autn_is_built_from_the_vector_values(vector):
    m = Milenage(h(vector["K"]), opc=h(vector["OPc"]))
    autn = make_autn(m, h(vector["RAND"]), int(vector["SQN"], 16), h(vector["AMF"]))
    assert autn == xor(h(vector["SQN"]), h(vector["f5"])) + h(vector["AMF"]) + h(vector["f1"])


def test_autn_worked_example_set_1():
    m = Milenage(h("465b5ce8b199b49faa5f0a2ee238a6bc"), op=h("cdc202d5123e20f62b6d676ac72cb318"))
    autn = make_autn(m, h("23553cbe9637a89d218ae64dae47bf35"), 0xFF9BB4D0B607, h("b9b9"))
    assert autn.hex() == "55f328b43577b9b94a9ffac354dfafb3"


def test_default_amf_is_8000():
    m = Milenage(bytes(16), opc=bytes(16))
    assert make_autn(m, bytes(16), 1)[6:8] == b"\x80\x00"


def test_auts_round_trip_and_mac_check(vector):
    m = Milenage(h(vector["K"]), opc=h(vector["OPc"]))
    rand, sqn = h(vector["RAND"]), h(vector["SQN"])
    auts = xor(sqn, h(vector["f5star"])) + m.f1star(rand, sqn, b"\x00\x00")
    assert recover_sqn_from_auts(m, rand, auts) == int(vector["SQN"], 16)
    # With the vector's AMF, MAC-S is exactly the published f1*.
    assert recover_sqn_from_auts(m, rand, xor(sqn, h(vector["f5star"])) + h(vector["f1star"]), h(vector["AMF"])) == int(
        vector["SQN"], 16
    )
    with pytest.raises(ValueError, match="MAC-S"):
        recover_sqn_from_auts(m, rand, auts[:-1] + bytes([auts[-1] ^ 1]))
    other = Milenage(bytes(16), opc=h(vector["OPc"]))
    with pytest.raises(ValueError):
        recover_sqn_from_auts(other, rand, auts)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        Milenage(bytes(16))
    with pytest.raises(ValueError):
        Milenage(bytes(16), op=bytes(16), opc=bytes(16))
    with pytest.raises(ValueError):
        Milenage(bytes(15), opc=bytes(16))
    m = Milenage(bytes(16), opc=bytes(16))
    with pytest.raises(ValueError):
        m.f2345(bytes(15))
    with pytest.raises(ValueError):
        make_autn(m, bytes(16), 1 << 48)
    with pytest.raises(ValueError):
        recover_sqn_from_auts(m, bytes(16), bytes(13))


def test_bundled_vectors_are_the_published_ones():
    import json
    import os

    from .conftest import BUNDLED_VECTORS, SHARED_VECTORS

    if not SHARED_VECTORS.exists():
        if os.environ.get("CI") == "true":
            raise AssertionError(f"CI must have the published vectors at {SHARED_VECTORS}")
        import pytest

        pytest.skip(f"no published vectors at {SHARED_VECTORS}")
    assert json.loads(BUNDLED_VECTORS.read_text()) == json.loads(SHARED_VECTORS.read_text())
