"""Open Inference Protocol tensors as driftline's columns and back: the datatypes a column takes,
a tensor's values from its JSON `data` or from its bytes under Triton's binary tensor data
extension (little-endian, row-major; BYTES as a 4-byte length then the bytes), and an output's
bytes. Every size is checked against the shape before anything is read."""

from __future__ import annotations

import numpy as np

from driftline.serving.intake import BadInput

NUMBERS = {"FP64": "<f8", "FP32": "<f4", "FP16": "<f2", "INT64": "<i8", "INT32": "<i4", "INT16": "<i2",
           "INT8": "i1", "UINT64": "<u8", "UINT32": "<u4", "UINT16": "<u2", "UINT8": "u1"}
FLOATS = frozenset({"FP64", "FP32", "FP16"})


def column_datatype(kind: str) -> str:
    """The datatype a model column is described with: numbers as FP64, strings as BYTES."""
    return "FP64" if kind == "double" else "BYTES"


def value_datatype(value: object) -> str:
    """The datatype of an output holding `value` (a class label or a regression's number)."""
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    return "FP64" if isinstance(value, float) else "BYTES"


def check_datatype(name: str, datatype: object, kind: str | None) -> None:
    """A number column takes any numeric datatype, a string column BYTES; an input the model does
    not have is left to the unknown-field rule."""
    if not isinstance(datatype, str):
        raise BadInput(f"input {name!r}: 'datatype' must be a string such as FP64 or BYTES")
    if kind == "double" and datatype not in NUMBERS:
        raise BadInput(f"input {name!r} is a number column: its datatype is FP64 (or another numeric type), "
                       f"got {datatype[:20]!r}")
    if kind == "string" and datatype != "BYTES":
        raise BadInput(f"input {name!r} is a string column: its datatype is BYTES, got {datatype[:20]!r}")


def json_values(name: str, data: object, count: int) -> list:
    """A tensor's JSON `data` as `count` values: flat, or nested one value a row ([[v], [v]])."""
    if type(data) is list and len(data) == count:
        if list not in map(type, data):
            return data
        if all(type(v) is list and len(v) == 1 for v in data):
            return [v[0] for v in data]
    raise BadInput(f"input {name!r}: 'data' must hold {count} values, as its shape says (flat, or one value a row)")


def binary_values(name: str, raw: memoryview, datatype: str, count: int) -> list:
    """`count` values from a tensor's bytes; a float's NaN is a missing value, as in JSON."""
    if datatype == "BYTES":
        return _strings(name, raw, count)
    dtype = "u1" if datatype == "BOOL" else NUMBERS.get(datatype)
    if dtype is None:
        raise BadInput(f"input {name!r}: datatype {datatype[:20]!r} is not one this server reads")
    size = np.dtype(dtype).itemsize * count
    if len(raw) != size:
        raise BadInput(f"input {name!r}: binary_data_size is {len(raw)} bytes; {count} {datatype} values take {size}")
    values = np.frombuffer(raw, dtype=dtype).tolist()
    if datatype == "BOOL":
        return [v != 0 for v in values]
    return [None if v != v else v for v in values] if datatype in FLOATS else values


def _strings(name: str, raw: memoryview, count: int) -> list:
    values, at, end = [], 0, len(raw)
    for i in range(count):
        if at + 4 > end:
            raise BadInput(f"input {name!r}: its binary data ends before value {i} of {count}")
        size = int.from_bytes(raw[at:at + 4], "little")
        at += 4
        if at + size > end:
            raise BadInput(f"input {name!r}: value {i} is {size} bytes long, past the end of its binary data")
        try:
            values.append(str(raw[at:at + size], "utf-8"))
        except UnicodeDecodeError:
            raise BadInput(f"input {name!r}: value {i} is not UTF-8 text") from None
        at += size
    if at != end:
        raise BadInput(f"input {name!r}: {end - at} bytes of binary data beyond its {count} values")
    return values


def to_bytes(values: list, datatype: str) -> bytes:
    """An output's values under the binary extension."""
    if datatype == "BYTES":
        encoded = [str(v).encode() for v in values]
        return b"".join(len(b).to_bytes(4, "little") + b for b in encoded)
    if datatype == "BOOL":
        return bytes(1 if v else 0 for v in values)
    return np.asarray(values, dtype=NUMBERS[datatype]).tobytes()
