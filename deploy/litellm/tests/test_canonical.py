import struct

import pytest

from auditline_litellm.canonical import config_hash, dumps


def f64(hexbits):
    return struct.unpack(">d", bytes.fromhex(hexbits))[0]


# RFC 8785 Appendix B: IEEE 754 bits -> the ECMAScript serialisation JCS requires.
@pytest.mark.parametrize(
    "bits,want",
    [
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ],
)
def test_rfc8785_numbers(bits, want):
    assert dumps(f64(bits)) == want


def test_objects_sorted_and_compact():
    doc = {"b": [1, 2.5, None, True], "a": {"z": 'é\n"', "y": 0.000002}, "c": False}
    assert dumps(doc) == '{"a":{"y":0.000002,"z":"é\\n\\""},"b":[1,2.5,null,true],"c":false}'


def test_hash_is_stable_and_prefixed():
    h = config_hash({"x": 1})
    assert h == config_hash({"x": 1}) and h.startswith("sha256:") and len(h) == 71
    assert config_hash({"x": 1.0}) == h  # 1.0 and 1 are the same JSON number


def test_no_nan():
    with pytest.raises(ValueError):
        dumps(float("nan"))
    with pytest.raises(TypeError):
        dumps(object())
