"""Python values to DynamoDB attribute values and back (chalicelib/aws/dynamo.py), no AWS needed."""
import pytest
from hypothesis import given, strategies as st

from chalicelib.aws.dynamo import deserialize_item, serialize_item


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e125, max_value=1e125))
def test_every_finite_float_in_range_serializes(value):
    back = deserialize_item(serialize_item({"n": value}))["n"]
    if abs(value) < 1e-130:
        assert back == 0
    else:
        assert back == pytest.approx(value, rel=1e-15)


def test_denormal_float_becomes_zero_instead_of_failing():
    assert deserialize_item(serialize_item({"p": 2.2250738585e-313}))["p"] == 0


def test_nan_is_refused():
    with pytest.raises(ValueError):
        serialize_item({"n": float("nan")})


def test_nested_values_and_none_are_handled():
    item = {"a": {"b": [1, 2.5, {"c": None}], "d": None}, "e": None, "s": "x"}
    assert deserialize_item(serialize_item(item)) == {"a": {"b": [1, 2.5, {}]}, "s": "x"}
