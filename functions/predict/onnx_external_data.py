"""Finds tensors in an ONNX file that point at external data, without the onnx package.

An ONNX tensor can say "my bytes are in another file" (data_location EXTERNAL, with a `location` path in
external_data). A model store holds one file per version, so such a model cannot be whole, and a runtime that
followed the path would read whatever file the model names. The predict function refuses such a model before
onnxruntime sees it; the store refuses them at upload too, this is the second line.

The file is parsed with protobuf (onnxruntime's own dependency) against a subset of onnx.proto declared here:
only the fields that can lead to a tensor, and tensors' names and external-data fields. Everything else is
skipped by the C parser, so a model with millions of tree-ensemble numbers is checked in milliseconds (a
pure-Python walk took 0.3 s for a 100-tree forest on digits). Visited: the graph's initializers and sparse
initializers, every node's attributes (tensors, sparse tensors, the subgraphs of If/Loop/Scan, recursively),
model-local functions and training graphs. Field numbers are onnx.proto's, checked against the onnx package by
tests/functions/test_predict_onnx_external.py."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

# message -> [(field number, field name, what it holds: a message of this subset, "bytes" or "int32")]. Fields
# are repeated unless _SINGULAR (or a name, key or value) says otherwise, as in onnx.proto.
_SUBSET: dict[str, list[tuple[int, str, str]]] = {
    "ModelProto": [
        (7, "graph", "GraphProto"),
        (20, "training_info", "TrainingInfoProto"),
        (25, "functions", "FunctionProto"),
    ],
    "GraphProto": [
        (2, "name", "bytes"),
        (1, "node", "NodeProto"),
        (5, "initializer", "TensorProto"),
        (15, "sparse_initializer", "SparseTensorProto"),
    ],
    "NodeProto": [(3, "name", "bytes"), (5, "attribute", "AttributeProto")],
    "AttributeProto": [
        (1, "name", "bytes"),
        (5, "t", "TensorProto"),
        (6, "g", "GraphProto"),
        (10, "tensors", "TensorProto"),
        (11, "graphs", "GraphProto"),
        (22, "sparse_tensor", "SparseTensorProto"),
        (23, "sparse_tensors", "SparseTensorProto"),
    ],
    "SparseTensorProto": [(1, "values", "TensorProto"), (2, "indices", "TensorProto")],
    "FunctionProto": [
        (1, "name", "bytes"),
        (7, "node", "NodeProto"),
        (11, "attribute_proto", "AttributeProto"),
    ],
    "TrainingInfoProto": [(1, "initialization", "GraphProto"), (2, "algorithm", "GraphProto")],
    "TensorProto": [
        (8, "name", "bytes"),
        (13, "external_data", "StringStringEntryProto"),
        (14, "data_location", "int32"),
    ],
    "StringStringEntryProto": [(1, "key", "bytes"), (2, "value", "bytes")],
}
_SINGULAR = {
    ("ModelProto", "graph"),
    ("AttributeProto", "t"),
    ("AttributeProto", "g"),
    ("AttributeProto", "sparse_tensor"),
    ("SparseTensorProto", "values"),
    ("SparseTensorProto", "indices"),
    ("TrainingInfoProto", "initialization"),
    ("TrainingInfoProto", "algorithm"),
    ("TensorProto", "data_location"),
}
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


class MalformedModel(ValueError):
    """The bytes are not a protobuf message, so not an ONNX model."""


def _model_class():
    package = "mlfunctions.onnx_subset"
    file = descriptor_pb2.FileDescriptorProto(name="mlfunctions_onnx_subset.proto", package=package)
    field_type = descriptor_pb2.FieldDescriptorProto
    for message, fields in _SUBSET.items():
        described = file.message_type.add(name=message)
        for number, name, kind in fields:
            field = described.field.add(name=name, number=number)
            singular = name == "name" or name in ("key", "value") or (message, name) in _SINGULAR
            field.label = field_type.LABEL_OPTIONAL if singular else field_type.LABEL_REPEATED
            if kind == "bytes":
                field.type = field_type.TYPE_BYTES  # names are not checked as UTF-8: only shown
            elif kind == "int32":
                field.type = field_type.TYPE_INT32
            else:
                field.type = field_type.TYPE_MESSAGE
                field.type_name = f".{package}.{kind}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.ModelProto"))


_MODEL = _model_class()


def external_data_reference(model: bytes) -> str | None:
    """Where the first tensor with external data is (e.g. "graph.initializer 'W' (location 'w.bin')"), or None
    when every tensor's data is inside the file. MalformedModel when the bytes are not a protobuf message."""
    parsed = _MODEL()
    try:
        parsed.ParseFromString(model)  # protobuf's recursion limit (100) bounds how deep subgraphs nest
    except DecodeError as error:
        raise MalformedModel(str(error) or "not a protobuf message") from None
    return _find(parsed, "model")


def _find(message, path: str) -> str | None:
    kind = message.DESCRIPTOR.name
    name = _name(message)
    here = f"{path} {name!r}" if name else path
    if kind == "TensorProto":
        if message.data_location == EXTERNAL or len(message.external_data):
            location = next((_text(e.value) for e in message.external_data if e.key == b"location"), None)
            return here + (f" (location {location!r})" if location is not None else "")
        return None
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        children = [value] if isinstance(value, Message) else value
        for child in children:
            found = _find(child, f"{here}.{field.name}")
            if found is not None:
                return found
    return None


def _name(message) -> str:
    field = message.DESCRIPTOR.fields_by_name.get("name")
    return _text(message.name) if field is not None else ""


def _text(raw: bytes) -> str:
    return raw[:200].decode("utf-8", "replace")
