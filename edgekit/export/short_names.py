"""Short tensor and node names in exported files: the converters' TensorFlow scopes are a large part of a small model.

Both converters name tensors by the TensorFlow scope, and TFLite joins a fused op's names with ';'
(``reference_cnn/quant_dense1/MatMul;reference_cnn/quant_dense1/Relu;reference_cnn/quant_dense1/BiasAdd``); in a
43 KB int8 ONNX file of the reference CNN about 13 KB are such names. :func:`short_name` keeps only what edgekit
reads back from a name, the Keras layer scope that :func:`edgekit.compression.mixed.names_layer` matches (anchored
after the model's top-level scope, here ``m``), and a number that makes the name unique:
``m/quant_dense1/7``. So a shortened file still tells which layer each tensor and node belongs to, and a later
stage (int8 protection, per-layer precision records) matches layers in it as before.

Graph inputs and outputs keep their names (runtimes feed and fetch by them). The removed model scopes are
recorded in the file's edgekit metadata (``short_names``: the scope that ``m`` stands for, and the rule).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SCOPE = "m"
"""The model scope every shortened name starts with."""
RULE = "m/<layer scope>/<n>"
"""The rule, in the metadata: each ';'-joined part keeps its Keras layer scope, the model scope becomes m."""
WRAPPERS = ("StatefulPartitionedCall", "PartitionedCall")


def _parts(name: str) -> list[tuple[str, str]]:
    """(model scope, layer scope) of each ';'-joined part of a converter name that has both."""
    out = []
    for part in name.split(";"):
        segs = part.split("/")
        while segs and segs[0].startswith(WRAPPERS):
            segs = segs[1:]
        if len(segs) >= 3:
            out.append((segs[0], "/".join(segs[1:-1])))
    return out


def short_name(name: str, n: int, scopes: set[str] | None = None) -> str:
    """``name`` shortened to its layer scopes and the number ``n`` (``t<n>`` when it names no layer); the model
    scopes it drops are added to ``scopes``."""
    kept: list[str] = []
    for model, layer in _parts(name):
        if scopes is not None and model != SCOPE:  # a name shortened before keeps its layer scope
            scopes.add(model)
        if layer not in kept:
            kept.append(layer)
    return ";".join(f"{SCOPE}/{layer}/{n}" for layer in kept) if kept else f"t{n}"


def record(scopes: Iterable[str], saved: int) -> dict[str, Any]:
    """The ``short_names`` entry of the file's edgekit metadata."""
    return {"scopes": sorted(scopes), "rule": RULE, "bytes_saved": saved}


def shorten_onnx(model: Any) -> dict[str, Any] | None:
    """Rename the tensors (but graph inputs/outputs) and nodes of an ONNX ``ModelProto`` in place; returns the
    metadata record, or None when the graph has subgraphs (left as it is)."""
    graph = model.graph
    if any(a.g.node or a.graphs for node in graph.node for a in node.attribute):
        return None
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    tensors = [t for t in dict.fromkeys([*(i.name for i in graph.initializer), *(s.values.name for s in
                                                                                  graph.sparse_initializer),
                                         *(x for node in graph.node for x in (*node.input, *node.output))])
               if t not in keep]
    scopes: set[str] = set()
    new = {t: short_name(t, i, scopes) for i, t in enumerate(tensors)}
    saved = sum(len(t) - len(s) for t, s in new.items())
    for node_n, node in enumerate(graph.node):
        old = node.name
        node.name = short_name(old, node_n, scopes) if old else ""
        saved += len(old) - len(node.name)
        node.input[:] = [new.get(x, x) for x in node.input]
        node.output[:] = [new.get(x, x) for x in node.output]
    for init in graph.initializer:
        init.name = new.get(init.name, init.name)
    for sparse in graph.sparse_initializer:
        sparse.values.name = new.get(sparse.values.name, sparse.values.name)
        sparse.indices.name = new.get(sparse.indices.name, sparse.indices.name)
    for vi in graph.value_info:
        vi.name = new.get(vi.name, vi.name)
    for vi in graph.input:  # older opsets list initializers among the inputs
        vi.name = new.get(vi.name, vi.name)
    return record(scopes, saved)


def shorten_tflite(model: Any) -> dict[str, Any]:
    """Rename the tensors (but subgraph inputs/outputs) of a TFLite ``ModelT`` (the flatbuffers object API) in
    place; returns the metadata record."""
    scopes: set[str] = set()
    saved = 0
    n = 0
    for sub in model.subgraphs or []:
        keep = {int(i) for i in [*(sub.inputs if sub.inputs is not None else []),
                                 *(sub.outputs if sub.outputs is not None else [])]}
        for index, tensor in enumerate(sub.tensors or []):
            old = tensor.name.decode("utf-8", "replace") if isinstance(tensor.name, bytes) else (tensor.name or "")
            if index in keep or not old:
                continue
            tensor.name = short_name(old, n, scopes)
            n += 1
            saved += len(old.encode()) - len(tensor.name)
    return record(scopes, saved)
