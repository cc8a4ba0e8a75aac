"""The subset of EasyRec's and TorchEasyRec's pipeline schemas that mtlrec reads, built in Python.

The messages are declared field by field in :mod:`.easyrec_schema` and :mod:`.torcheasyrec_schema`,
with the real names, numbers and defaults of ``easy_rec/python/protos/*.proto`` (package ``protos``,
alibaba/EasyRec) and ``tzrec/protos/*.proto`` (package ``tzrec.protos``, alibaba/TorchEasyRec), and
turned into message classes here through a ``FileDescriptorProto`` filled programmatically: no
``protoc`` at build or run time. Every field is declared ``optional`` (or ``repeated``), so that a
config leaving out a field those projects mark ``required`` still parses; the converter says what is
missing where it matters.

Fields that exist in those projects but that mtlrec does not map are declared too, so that they
parse and are reported as ignored; a field that is declared nowhere is a parse error.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from mtlrec.config.easyrec_text import easyrec_schema, torcheasyrec_schema
from mtlrec.config.easyrec_text.declarations import Enum, F, Msg

FieldProto = descriptor_pb2.FieldDescriptorProto

#: scalar type names of the ``.proto`` language → descriptor types
SCALARS: dict[str, int] = {
    "string": FieldProto.TYPE_STRING,
    "bool": FieldProto.TYPE_BOOL,
    "float": FieldProto.TYPE_FLOAT,
    "double": FieldProto.TYPE_DOUBLE,
    "int32": FieldProto.TYPE_INT32,
    "int64": FieldProto.TYPE_INT64,
    "uint32": FieldProto.TYPE_UINT32,
    "uint64": FieldProto.TYPE_UINT64,
}

EASYREC = "easyrec"
TORCHEASYREC = "torcheasyrec"
DIALECTS = (EASYREC, TORCHEASYREC)

_SCHEMAS: dict[str, tuple[str, list[Msg], list[Enum]]] = {
    EASYREC: (easyrec_schema.PACKAGE, easyrec_schema.MESSAGES, easyrec_schema.ENUMS),
    TORCHEASYREC: (torcheasyrec_schema.PACKAGE, torcheasyrec_schema.MESSAGES, torcheasyrec_schema.ENUMS),
}


def _default_text(value: Any) -> str:
    """A default value as ``FieldDescriptorProto.default_value`` spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _add_field(message: descriptor_pb2.DescriptorProto, spec: F, package: str, enums: set[str], oneofs: list[str]):
    field = message.field.add(name=spec.name, number=spec.number)
    field.label = FieldProto.LABEL_REPEATED if spec.repeated else FieldProto.LABEL_OPTIONAL
    if spec.type in SCALARS:
        field.type = SCALARS[spec.type]
    else:
        field.type = FieldProto.TYPE_ENUM if spec.type in enums else FieldProto.TYPE_MESSAGE
        field.type_name = f".{package}.{spec.type}"
    if spec.default is not None:
        field.default_value = _default_text(spec.default)
    if spec.oneof is not None:
        if spec.oneof not in oneofs:
            oneofs.append(spec.oneof)
            message.oneof_decl.add(name=spec.oneof)
        field.oneof_index = oneofs.index(spec.oneof)


def file_descriptor(dialect: str) -> descriptor_pb2.FileDescriptorProto:
    """The ``FileDescriptorProto`` of one dialect's schema (``easyrec`` or ``torcheasyrec``)."""
    package, messages, enums = _SCHEMAS[dialect]
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"mtlrec_{dialect}_pipeline.proto", package=package, syntax="proto2"
    )
    enum_names = {enum.name for enum in enums}
    for enum in enums:
        target = proto.enum_type.add(name=enum.name)
        for name, number in enum.values:
            target.value.add(name=name, number=number)
    for spec in messages:
        _add_message(proto.message_type.add(), spec, package, enum_names)
    return proto


def _add_message(message: descriptor_pb2.DescriptorProto, spec: Msg, package: str, enums: set[str]) -> None:
    message.name = spec.name
    if spec.map_entry:
        message.options.map_entry = True
    for nested in spec.nested:
        _add_message(message.nested_type.add(), nested, package, enums)
    oneofs: list[str] = []
    for field in spec.fields:
        _add_field(message, field, package, enums, oneofs)


@cache
def pool(dialect: str) -> descriptor_pool.DescriptorPool:
    """A descriptor pool of its own holding the dialect's schema (no clash with other protobuf users)."""
    result = descriptor_pool.DescriptorPool()
    result.Add(file_descriptor(dialect))
    return result


def pipeline_class(dialect: str) -> type:
    """The message class of the dialect's top-level ``EasyRecConfig``."""
    package = _SCHEMAS[dialect][0]
    return message_factory.GetMessageClass(pool(dialect).FindMessageTypeByName(f"{package}.EasyRecConfig"))


def easyrec_pipeline_class() -> type:
    """EasyRec's ``protos.EasyRecConfig`` (the subset mtlrec reads)."""
    return pipeline_class(EASYREC)


def torcheasyrec_pipeline_class() -> type:
    """TorchEasyRec's ``tzrec.protos.EasyRecConfig`` (the subset mtlrec reads)."""
    return pipeline_class(TORCHEASYREC)
