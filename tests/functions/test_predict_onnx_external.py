"""ONNX models whose tensors point at external data are refused by the predict function before onnxruntime
loads them (functions/predict/onnx_external_data.py, used by served_model.py), wherever the tensor hides:
initializers, sparse initializers, node attributes (tensor, tensors, sparse tensor), subgraphs of If and Loop
at any depth, model-local functions and their attribute defaults, training graphs.

Each model is real (built with the onnx package) and the file it points at really exists in the working
directory, where onnxruntime would read it: the first test shows onnxruntime does, so a refusal here is the
only thing standing between a model and the file it names."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import function_harness  # noqa: F401  (puts the function folders on sys.path)
import onnx_external_data
from served_model import ServedModel, UnservableModel

WEIGHTS = np.ones((4, 3), np.float32)


@pytest.fixture(autouse=True)
def weights_file_beside(tmp_path, monkeypatch):
    """A real w.bin in the working directory: what an external tensor named "w.bin" would be read from."""
    (tmp_path / "w.bin").write_bytes(WEIGHTS.tobytes())
    monkeypatch.chdir(tmp_path)


def _external(tensor: TensorProto, location: str | None = "w.bin", flag: bool = True) -> TensorProto:
    """Moves the tensor's data out of the file, as onnx's external-data saving does (or half of it)."""
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    if flag:
        tensor.data_location = TensorProto.EXTERNAL
    if location is not None:
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", location
        length = tensor.external_data.add()
        length.key, length.value = "length", str(WEIGHTS.nbytes)
    return tensor


def _weights(name: str = "W") -> TensorProto:
    return numpy_helper.from_array(WEIGHTS, name)


def _model(nodes, initializers=(), *, functions=(), sparse=(), opset=17, output="y") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "main",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        list(initializers),
        sparse_initializer=list(sparse),
    )
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("local", 1)] if functions else [])
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions))


def _matmul_model(weights: TensorProto) -> onnx.ModelProto:
    return _model([helper.make_node("MatMul", ["input", "W"], ["y"])], [weights])


def _constant(name: str, tensor: TensorProto, attribute: str = "value") -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], name=f"make_{name}", **{attribute: tensor})


def _if(name: str, then_nodes, output: str) -> onnx.NodeProto:
    """An If running `then_nodes` (which give `output`) on one branch and a plain constant on the other."""
    then_branch = helper.make_graph(
        then_nodes, f"{name}_then", [], [helper.make_tensor_value_info(output, 1, None)]
    )
    fallback = [_constant(output, numpy_helper.from_array(WEIGHTS, f"{name}_fallback"))]
    else_branch = helper.make_graph(
        fallback, f"{name}_else", [], [helper.make_tensor_value_info(output, 1, None)]
    )
    return helper.make_node(
        "If", ["cond"], [f"{name}_out"], name=name, then_branch=then_branch, else_branch=else_branch
    )


def _cond() -> onnx.NodeProto:
    return _constant("cond", numpy_helper.from_array(np.array(True), "cond"))


def _sparse(location: str = "w.bin") -> onnx.SparseTensorProto:
    values = _external(numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "W"), location)
    indices = numpy_helper.from_array(np.array([0, 5], np.int64), "W_indices")
    return helper.make_sparse_tensor(values, indices, [4, 3])


def _function_with(node: onnx.NodeProto, attribute_defaults=()) -> onnx.FunctionProto:
    function = helper.make_function("local", "Weights", [], ["w"], [node], [helper.make_opsetid("", 17)])
    function.attribute_proto.extend(attribute_defaults)
    return function


def _training(initializer: TensorProto) -> onnx.ModelProto:
    model = _matmul_model(_weights())
    training = model.training_info.add()
    training.initialization.CopyFrom(helper.make_graph([], "init", [], [], [initializer]))
    return model


def _nested_ifs(depth: int, innermost) -> onnx.NodeProto:
    node = _if("if0", innermost, "v")
    for level in range(1, depth):
        node = _if(f"if{level}", [node, helper.make_node("Identity", [node.output[0]], ["v"])], "v")
    return node


def test_onnxruntime_itself_follows_a_relative_external_path():
    # The danger, shown: from bytes alone, onnxruntime reads w.bin from its working directory.
    model = _matmul_model(_external(_weights()))
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    [result] = session.run(None, {"input": np.ones((1, 4), np.float32)})
    assert result.tolist() == [[4.0, 4.0, 4.0]]


EXTERNAL_MODELS = {
    "initializer": (lambda: _matmul_model(_external(_weights())), "model.graph 'main'.initializer 'W'"),
    "initializer, data_location only": (
        lambda: _matmul_model(_external(_weights(), location=None)),
        "model.graph 'main'.initializer 'W'",
    ),
    "initializer, external_data entries only": (
        lambda: _matmul_model(_external(_weights(), flag=False)),
        "initializer 'W' (location 'w.bin')",
    ),
    "initializer with a path out of the directory": (
        lambda: _matmul_model(_external(_weights(), location="../../etc/passwd")),
        "(location '../../etc/passwd')",
    ),
    "sparse initializer": (
        lambda: _model([helper.make_node("MatMul", ["input", "W"], ["y"])], sparse=[_sparse()]),
        "model.graph 'main'.sparse_initializer.values 'W'",
    ),
    "Constant node's tensor": (
        lambda: _model(
            [_constant("W", _external(_weights())), helper.make_node("MatMul", ["input", "W"], ["y"])]
        ),
        "node 'make_W'.attribute 'value'.t 'W'",
    ),
    "Constant node's sparse tensor": (
        lambda: _model([_constant("W", _sparse(), "sparse_value")]),
        "attribute 'sparse_value'.sparse_tensor.values 'W'",
    ),
    "attribute holding a list of tensors": (
        lambda: _model(
            [
                helper.make_node(
                    "Custom", ["input"], ["y"], domain="x", tensors=[_weights("ok"), _external(_weights())]
                )
            ]
        ),
        "attribute 'tensors'.tensors 'W'",
    ),
    "If branch": (
        lambda: _model(
            [_cond(), _if("choose", [_constant("v", _external(_weights()))], "v")], output="choose_out"
        ),
        "node 'choose'.attribute 'then_branch'.g 'choose_then'.node 'make_v'",
    ),
    "If inside If inside If": (
        lambda: _model(
            [
                _cond(),
                _nested_ifs(3, [_constant("v", _external(_weights()))]),
            ],
            output="if2_out",
        ),
        ".g 'if0_then'.node 'make_v'.attribute 'value'.t 'W'",
    ),
    "model-local function's node": (
        lambda: _model(
            [helper.make_node("Weights", [], ["y"], domain="local")],
            functions=[_function_with(_constant("w", _external(_weights())))],
        ),
        "model.functions 'Weights'.node 'make_w'.attribute 'value'.t 'W'",
    ),
    "model-local function's attribute default": (
        lambda: _model(
            [helper.make_node("Weights", [], ["y"], domain="local")],
            functions=[
                _function_with(
                    helper.make_node("Identity", ["x"], ["w"]),
                    [helper.make_attribute("default_w", _external(_weights()))],
                )
            ],
        ),
        "model.functions 'Weights'.attribute_proto 'default_w'.t 'W'",
    ),
    "training graph": (
        lambda: _training(_external(_weights("W_init"))),
        "model.training_info.initialization 'init'.initializer 'W_init'",
    ),
}


@pytest.mark.parametrize(("build", "where"), EXTERNAL_MODELS.values(), ids=EXTERNAL_MODELS.keys())
def test_model_with_external_data_is_refused_before_loading(build, where):
    model = build()
    with pytest.raises(UnservableModel) as caught:
        ServedModel(model.SerializeToString(), "iris", 7)
    message = str(caught.value)
    assert message.startswith("model iris v7 keeps tensor data outside the file, at model."), message
    assert where in message, message
    assert "never reads the files a model points at" in message


def test_self_contained_models_pass_and_the_same_model_external_does_not():
    inside = _matmul_model(_weights())
    assert onnx_external_data.external_data_reference(inside.SerializeToString()) is None
    served = ServedModel(inside.SerializeToString(), "m", 1, {"task": "regression"})
    assert served.features == 4
    outside = _matmul_model(_external(_weights()))
    assert onnx_external_data.external_data_reference(outside.SerializeToString()) == (
        "model.graph 'main'.initializer 'W' (location 'w.bin')"
    )


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2); lengths here stay below 2**28."""
    key, length, varint = number << 3 | 2, len(payload), b""
    while True:
        byte, length = length & 0x7F, length >> 7
        varint += bytes([byte | (0x80 if length else 0)])
        if not length:
            return bytes([key]) + varint + payload


def test_nesting_deeper_than_protobufs_limit_is_not_a_model():
    # Built on the wire: the onnx package itself cannot build it. 40 subgraphs, each three messages deeper
    # (graph -> node -> attribute -> graph), is past protobuf's recursion limit of 100.
    graph = _field(5, _external(_weights()).SerializeToString())  # GraphProto.initializer
    for _ in range(40):
        attribute = _field(1, b"then_branch") + _field(6, graph)  # AttributeProto.name, .g
        graph = _field(
            1, _field(4, b"If") + _field(5, attribute)
        )  # GraphProto.node: NodeProto.op_type, .attribute
    with pytest.raises(UnservableModel, match="model m v1 is not a valid ONNX model"):
        ServedModel(_field(7, graph), "m", 1)  # ModelProto.graph
    # Ten levels deep is fine for protobuf, and the tensor is found there.
    graph = _field(5, _external(_weights()).SerializeToString())
    for _ in range(10):
        graph = _field(1, _field(4, b"If") + _field(5, _field(1, b"then_branch") + _field(6, graph)))
    found = onnx_external_data.external_data_reference(_field(7, graph))
    assert (
        found
        == "model.graph" + ".node.attribute 'then_branch'.g" * 10 + ".initializer 'W' (location 'w.bin')"
    )


@pytest.mark.parametrize("message", sorted(onnx_external_data._SUBSET))
def test_the_subset_has_onnx_protos_field_numbers(message):
    # The predict function has no onnx package: its field table is checked against onnx's own descriptors.
    described = getattr(onnx, message).DESCRIPTOR
    for number, name, kind in onnx_external_data._SUBSET[message]:
        field = described.fields_by_name[name]
        assert field.number == number, f"{message}.{name}"
        repeated = (
            name not in ("name", "key", "value") and (message, name) not in onnx_external_data._SINGULAR
        )
        assert field.is_repeated == repeated, f"{message}.{name}"
        if field.message_type is not None:
            assert field.message_type.name == kind, f"{message}.{name}"
        else:
            assert kind in ("bytes", "int32"), f"{message}.{name}"
