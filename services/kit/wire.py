"""Decode protobuf requests so that malformed bytes name the offending field.

The gRPC runtime would answer a request it cannot parse with a bare INTERNAL. The error interceptor
instead hands the raw bytes to `decode`, which parses them and, when parsing fails, walks the wire
format against the message descriptor to find the first field that is wrong (wire type not matching
the declared type, a string that is not UTF-8, a truncated value) and reports it as a
`google.rpc.BadRequest` field violation via `InvalidArgument`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from services.kit.errors import FieldViolation, InvalidArgument

M = TypeVar("M", bound=Message)

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = 0, 1, 2, 3, 4, 5

_T = FieldDescriptor
_WIRE_TYPES: dict[int, set[int]] = {
    **{t: {_VARINT} for t in (_T.TYPE_INT32, _T.TYPE_INT64, _T.TYPE_UINT32, _T.TYPE_UINT64, _T.TYPE_SINT32)},
    _T.TYPE_SINT64: {_VARINT},
    _T.TYPE_BOOL: {_VARINT},
    _T.TYPE_ENUM: {_VARINT},
    _T.TYPE_FIXED64: {_I64},
    _T.TYPE_SFIXED64: {_I64},
    _T.TYPE_DOUBLE: {_I64},
    _T.TYPE_FIXED32: {_I32},
    _T.TYPE_SFIXED32: {_I32},
    _T.TYPE_FLOAT: {_I32},
    _T.TYPE_STRING: {_LEN},
    _T.TYPE_BYTES: {_LEN},
    _T.TYPE_MESSAGE: {_LEN},
    _T.TYPE_GROUP: {_SGROUP},
}
_PACKABLE = {_VARINT, _I64, _I32}


class _Malformed(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path, self.problem = path, problem


def decode(message_cls: type[M], data: bytes) -> M:
    """Parse `data` as `message_cls`, or raise `InvalidArgument` naming the bad field."""
    message = message_cls()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        try:
            _walk(message_cls.DESCRIPTOR, memoryview(data), "")
        except _Malformed as bad:
            raise InvalidArgument([FieldViolation(bad.path or "(request)", bad.problem)]) from exc
        raise InvalidArgument([FieldViolation("(request)", f"malformed protobuf: {exc}")]) from exc
    # A known field sent with the wrong wire type parses "successfully" into the unknown-field set.
    # Fields unknown to this version are fine (newer clients), so only a size mismatch after
    # dropping them triggers the (slower) walk, which flags known fields of the wrong type.
    message.DiscardUnknownFields()
    if message.ByteSize() != len(data):
        try:
            _walk(message_cls.DESCRIPTOR, memoryview(data), "")
        except _Malformed as bad:
            raise InvalidArgument([FieldViolation(bad.path or "(request)", bad.problem)]) from None
    return message


def _varint(buf: memoryview, pos: int, path: str) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _Malformed(path, "truncated value")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Malformed(path, "varint too long")


def _field_path(prefix: str, field: FieldDescriptor | None, number: int, index: int | None) -> str:
    name = field.name if field is not None else f"#{number}"
    base = f"{prefix}.{name}" if prefix else name
    return f"{base}[{index}]" if index is not None else base


def _walk(desc: Any, buf: memoryview, prefix: str) -> None:
    """`desc` is a message Descriptor (the pure-Python or the upb one)."""
    pos = 0
    counts: dict[int, int] = {}
    while pos < len(buf):
        key, pos = _varint(buf, pos, prefix)
        number, wire = key >> 3, key & 7
        field = desc.fields_by_number.get(number)
        repeated = field is not None and field.is_repeated
        index = counts.get(number, 0) if repeated else None
        counts[number] = counts.get(number, 0) + 1
        path = _field_path(prefix, field, number, index)
        if number == 0:
            raise _Malformed(prefix or "(request)", "field number 0 is invalid")
        if field is not None:
            expected = _WIRE_TYPES.get(field.type, set())
            packed = repeated and wire == _LEN and expected & _PACKABLE
            if wire not in expected and not packed:
                raise _Malformed(path, f"wrong type: expected {_type_name(field)}")
        if wire == _VARINT:
            _, pos = _varint(buf, pos, path)
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
            if pos > len(buf):
                raise _Malformed(path, "truncated value")
        elif wire == _LEN:
            length, pos = _varint(buf, pos, path)
            end = pos + length
            if end > len(buf):
                raise _Malformed(path, "truncated value")
            chunk = buf[pos:end]
            pos = end
            if field is None:
                continue
            if field.type == _T.TYPE_STRING:
                try:
                    bytes(chunk).decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _Malformed(path, f"not valid UTF-8 (byte {exc.start})") from exc
            elif field.type == _T.TYPE_MESSAGE:
                _walk(field.message_type, chunk, path)
        elif wire == _SGROUP:
            raise _Malformed(path, "groups are not supported")
        else:
            raise _Malformed(path, f"invalid wire type {wire}")


def _type_name(field: FieldDescriptor) -> str:
    if field.type == _T.TYPE_MESSAGE and field.message_type is not None:
        return str(field.message_type.full_name)
    if field.type == _T.TYPE_ENUM and field.enum_type is not None:
        return str(field.enum_type.full_name)
    return {v: k for k, v in vars(_T).items() if k.startswith("TYPE_")}.get(field.type, "?")[5:].lower()
