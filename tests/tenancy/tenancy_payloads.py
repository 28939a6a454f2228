"""What an attacker uploads or sends: ONNX models pointing at external data from every place a tensor can
live, zip bombs dressed as skops files, and raw HTTP that a well-behaved client would never send."""

from __future__ import annotations

import io
import socket
import zipfile

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper
from onnx.external_data_helper import set_external_data

# Where an uploader would like the store (or a function loading the model) to read from.
STOLEN_PATH = "../../../../etc/passwd"
FLOATS = 4


def _tensor(name: str, external: bool) -> TensorProto:
    tensor = numpy_helper.from_array(np.arange(FLOATS, dtype=np.float32), name=name)
    if external:
        set_external_data(tensor, location=STOLEN_PATH)
        tensor.ClearField("raw_data")
    return tensor


def _sparse(name: str, external: bool):
    values = _tensor(name, external)  # a sparse initializer is named by its values
    indices = numpy_helper.from_array(np.arange(FLOATS, dtype=np.int64), name=f"{name}_indices")
    return helper.make_sparse_tensor(values, indices, [FLOATS])


def _io():
    return (
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [FLOATS])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [FLOATS])],
    )


def _model(graph):
    model = helper.make_model(graph, producer_name="attacker", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _add_constant(constant_node, name="main"):
    inputs, outputs = _io()
    return helper.make_graph(
        [constant_node, helper.make_node("Add", ["X", "C"], ["Y"])], name, inputs, outputs
    )


def initializer(external: bool):
    inputs, outputs = _io()
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "C"], ["Y"])],
        "main",
        inputs,
        outputs,
        initializer=[_tensor("C", external)],
    )
    return _model(graph)


def node_attribute(external: bool):
    return _model(_add_constant(helper.make_node("Constant", [], ["C"], value=_tensor("value", external))))


def sparse_initializer(external: bool):
    inputs, outputs = _io()
    graph = helper.make_graph(
        [helper.make_node("Add", ["X", "C"], ["Y"])],
        "main",
        inputs,
        outputs,
        sparse_initializer=[_sparse("C", external)],
    )
    return _model(graph)


def sparse_attribute(external: bool):
    return _model(
        _add_constant(helper.make_node("Constant", [], ["C"], sparse_value=_sparse("value", external)))
    )


def subgraph(external: bool):
    """An If whose branches each add a constant; the then-branch keeps its constant as an initializer."""

    def branch(name: str, tensor):
        out = [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [FLOATS])]
        return helper.make_graph(
            [helper.make_node("Add", ["X", tensor.name], [f"{name}_out"])],
            name,
            [],
            out,
            initializer=[tensor],
        )

    inputs, outputs = _io()
    condition = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    node = helper.make_node(
        "If",
        ["cond"],
        ["Y"],
        then_branch=branch("then", _tensor("C_then", external)),
        else_branch=branch("else", _tensor("C_else", False)),
    )
    return _model(helper.make_graph([node], "main", [*inputs, condition], outputs))


def local_function(external: bool):
    """A model-local function whose body holds the constant in a Constant node."""
    body = [
        helper.make_node("Constant", [], ["C"], value=_tensor("value", external)),
        helper.make_node("Add", ["x", "C"], ["y"]),
    ]
    function = helper.make_function(
        "attacker.fn", "AddConstant", ["x"], ["y"], body, [helper.make_opsetid("", 17)]
    )
    return _with_function(function)


def _with_function(function):
    inputs, outputs = _io()
    graph = helper.make_graph(
        [helper.make_node("AddConstant", ["X"], ["Y"], domain="attacker.fn")], "main", inputs, outputs
    )
    model = helper.make_model(
        graph,
        producer_name="attacker",
        functions=[function],
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("attacker.fn", 1)],
    )
    model.ir_version = 8
    return model


def function_default(external: bool):
    """A local function whose attribute's default value is a tensor (FunctionProto.attribute_proto)."""
    body = [
        helper.make_node("Constant", [], ["C"], value_float=1.0),
        helper.make_node("Add", ["x", "C"], ["y"]),
    ]
    function = helper.make_function(
        "attacker.fn", "AddConstant", ["x"], ["y"], body, [helper.make_opsetid("", 17)]
    )
    function.attribute_proto.append(helper.make_attribute("weights", _tensor("weights", external)))
    return _with_function(function)


def training_graph(external: bool):
    """A model with training info whose initialization graph holds the tensor."""
    model = initializer(False)
    init = helper.make_graph([], "init", [], [], initializer=[_tensor("C_init", external)])
    algorithm = helper.make_graph([], "algorithm", [], [])
    model.training_info.append(helper.make_training_info(algorithm, [], init, []))
    return model


EXTERNAL_DATA_PLACES = {
    "initializer": initializer,
    "node-attribute": node_attribute,
    "sparse-initializer": sparse_initializer,
    "sparse-attribute": sparse_attribute,
    "subgraph": subgraph,
    "local-function": local_function,
    "function-default": function_default,
    "training-graph": training_graph,
}


def onnx_bytes(build, external: bool) -> bytes:
    return build(external).SerializeToString()


def valid(model) -> bool:
    try:
        checker.check_model(model)
    except Exception:  # noqa: BLE001 - any checker failure
        return False
    return True


# -- zip bombs ---------------------------------------------------------------------------------------------


def skops_estimator() -> bytes:
    """A genuine skops file (the control: accepted where the bombs are not)."""
    import skops.io
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    return skops.io.dumps(LogisticRegression(max_iter=300).fit(*load_iris(return_X_y=True)))


def schema_bomb(inflated_bytes: int) -> bytes:
    """A "skops file" whose schema.json inflates to `inflated_bytes` of whitespace: skops reads and parses the
    schema whole to list its types, so an unchecked store would hold all of it in memory."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("schema.json", "w", force_zip64=True) as member,
    ):
        member.write(b'{"__class__": "LogisticRegression", "__module__": "sklearn.linear_model"}')
        chunk = b" " * (1 << 20)
        for _ in range(inflated_bytes >> 20):
            member.write(chunk)
    return buffer.getvalue()


def many_members(count: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", "{}")
        for number in range(count):
            archive.writestr(f"{number}.npy", b"")
    return buffer.getvalue()


def large_stored(total_bytes: int, members: int = 4) -> bytes:
    """Members stored without compression (as skops writes them) adding up to `total_bytes`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", "{}")
        for number in range(members):
            archive.writestr(f"{number}.npy", b"\0" * (total_bytes // members))
    return buffer.getvalue()


# -- raw HTTP ----------------------------------------------------------------------------------------------


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lowercased names) and body of one answer that ends with the connection closing or
    with Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete answer; got {data[:200]!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)
    }
    length = int(headers.get("content-length", "-1"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body
