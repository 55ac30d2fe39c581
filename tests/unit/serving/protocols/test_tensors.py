"""Open Inference Protocol tensors: datatypes, JSON data and Triton's binary layout."""

from __future__ import annotations

import numpy as np
import pytest
from tritonclient.utils import serialize_byte_tensor

from driftline.serving.intake import BadInput
from driftline.serving.protocols.tensors import (
    binary_values,
    check_datatype,
    column_datatype,
    json_values,
    to_bytes,
    value_datatype,
)


@pytest.mark.parametrize(("datatype", "values"), [
    ("FP64", [1.5, -2.0, 1e300]), ("FP32", [1.5, -2.0]), ("FP16", [0.5]), ("INT64", [2 ** 40, -3]),
    ("INT32", [7, -7]), ("INT8", [-128, 127]), ("UINT8", [0, 255]), ("UINT16", [65535]), ("BOOL", [True, False]),
    ("BYTES", ["north", "", "é"]),
])
def test_binary_values_read_back_what_was_written(datatype, values):
    assert binary_values("x", memoryview(to_bytes(values, datatype)), datatype, len(values)) == values


def test_a_floats_nan_is_missing_and_bytes_are_read_as_tritons_client_writes_them():
    raw = np.array([1.0, np.nan], dtype="<f4").tobytes()
    assert binary_values("x", memoryview(raw), "FP32", 2) == [1.0, None]
    written = serialize_byte_tensor(np.array(["north", "south"], dtype=object)).item()
    assert binary_values("x", memoryview(written), "BYTES", 2) == ["north", "south"]
    with pytest.raises(BadInput, match="datatype 'BF16' is not one this server reads"):
        binary_values("x", memoryview(b"\0\0"), "BF16", 1)


def test_datatypes_of_columns_and_of_answers():
    assert (column_datatype("double"), column_datatype("string")) == ("FP64", "BYTES")
    assert [value_datatype(v) for v in (True, 1, 1.0, "a")] == ["BOOL", "INT64", "FP64", "BYTES"]
    check_datatype("age", "INT32", "double")  # any numeric datatype for a number column
    check_datatype("note", "BOOL", None)  # not a model column: the unknown-field rule judges it
    for name, datatype, kind in (("age", "BOOL", "double"), ("region", "FP64", "string"), ("age", 3, "double")):
        with pytest.raises(BadInput):
            check_datatype(name, datatype, kind)


def test_json_data_is_flat_or_one_value_a_row():
    assert json_values("x", [1, None], 2) == json_values("x", [[1], [None]], 2) == [1, None]
    for data in ([[1, 2]], [1], [[1], 2], "12", None):
        with pytest.raises(BadInput, match="must hold"):
            json_values("x", data, 2)
