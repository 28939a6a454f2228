"""Find every tensor of an ONNX model that points at external data, wherever ONNX lets a tensor live.

A function loads its model from the stored bytes alone, and a tensor whose data is "in the file next to the
model" would make onnx or onnxruntime open a path chosen by the uploader. So every place a tensor can hide is
walked: initializers and sparse initializers, node attributes (tensors, sparse tensors, and the subgraphs of
If, Loop and Scan, recursively), local functions (their nodes and their attributes' default values), and the
training graphs. A tensor counts as external when it says so (`data_location`) or carries `external_data`
entries at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def external_tensors(model) -> Iterator[str]:
    """Where each external tensor of `model` (an onnx.ModelProto) is, e.g. "graph 'main' initializer 'W'"."""
    yield from _graph(model.graph, f"graph {model.graph.name!r}")
    for function in model.functions:
        where = f"function {function.name!r}"
        yield from _nodes(function.node, where)
        yield from _attributes(function.attribute_proto, f"{where} default")
    for number, training in enumerate(model.training_info):
        yield from _graph(training.initialization, f"training_info[{number}] initialization")
        yield from _graph(training.algorithm, f"training_info[{number}] algorithm")


def _graph(graph, where: str) -> Iterator[str]:
    for tensor in graph.initializer:
        if _external(tensor):
            yield f"{where} initializer {tensor.name!r}"
    for sparse in graph.sparse_initializer:
        if _sparse_external(sparse):
            yield f"{where} sparse initializer {sparse.values.name!r}"
    yield from _nodes(graph.node, where)


def _nodes(nodes: Iterable, where: str) -> Iterator[str]:
    for node in nodes:
        yield from _attributes(node.attribute, f"{where} node {node.name or node.op_type!r}")


def _attributes(attributes: Iterable, where: str) -> Iterator[str]:
    for attribute in attributes:
        here = f"{where} attribute {attribute.name!r}"
        tensors = ([attribute.t] if attribute.HasField("t") else []) + list(attribute.tensors)
        sparse = ([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []) + list(
            attribute.sparse_tensors
        )
        if any(_external(tensor) for tensor in tensors) or any(_sparse_external(s) for s in sparse):
            yield here
        graphs = ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs)
        for graph in graphs:
            yield from _graph(graph, f"{here} subgraph {graph.name!r}")


def _external(tensor) -> bool:
    from onnx import TensorProto

    return tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data) > 0


def _sparse_external(sparse) -> bool:
    return _external(sparse.values) or _external(sparse.indices)
