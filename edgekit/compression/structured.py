"""Structured pruning: remove whole Conv2D filters and Dense units, rebuilding a smaller model.

Magnitude pruning only zeroes weights; this module deletes output channels and
rebuilds a physically smaller tf_keras model with the surviving weights, so
parameters, MACs and latency all drop.

How channels flow: a *source* (Conv2D, Dense, SeparableConv2D pointwise part)
chooses which of its output channels survive. The choice travels through
*pass-through* layers that keep channels one-to-one (BatchNormalization,
pooling, Dropout, element-wise activations, padding) or map them predictably
(DepthwiseConv2D: input channel ``c`` owns outputs ``c*dm .. c*dm+dm-1``;
Flatten: channels-last index ``p*C + c`` for every spatial position ``p``)
until it reaches *consumers* (the next Conv2D/Dense/SeparableConv2D), whose
input weights are sliced to match.

Element-wise joins (a residual ``Add``, and Subtract, Multiply, Average,
Maximum, Minimum) meet channel ``c`` of every input, so the sources that reach
one join lose the same channels: union-find over the channel spaces puts them
in one *group* (:class:`ChannelGroup`): a residual branch's last convolution
with its projection shortcut, or with the producer of an identity shortcut's
input, transitively through chained blocks. A group is scored as one (the sum
of its members' normalised scores) and pruned as one.

A group is left alone, with the reason for each of its sources in
``report["skipped"]``, when its channels reach something that needs their
count unchanged (Concatenate, Reshape, a Dot merge, Lambda or custom layers, a
nested model, a Softmax over channels, a shared layer, the model output, so
the final classifier's units are never removed), come from the model input or
such a layer, or meet at a join after a depthwise multiplier or Flatten
rearranged them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from edgekit._tf import keras
from edgekit.errors import ModelError, UsageError
from edgekit.models.flops import count_macs, count_params, layer_macs

log = logging.getLogger(__name__)

Criterion = Literal["l1", "l2", "bn_scale"]
"""How filters are ranked (see :func:`prune_structured`); the one list of criteria: ``get_args(Criterion)``."""

SOURCES: frozenset[str] = frozenset({"Conv2D", "Dense", "SeparableConv2D"})
"""Layers whose output channels (filters / units) can be removed."""

PASS_THROUGH: frozenset[str] = frozenset(
    {
        "BatchNormalization",
        "DepthwiseConv2D",
        "MaxPooling2D",
        "AveragePooling2D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "Dropout",
        "SpatialDropout2D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "ActivityRegularization",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "ThresholdedReLU",
        "ZeroPadding2D",
        "Cropping2D",
        "UpSampling2D",
        "Flatten",
    }
)
"""Layers that carry a channel selection from their single input to their output."""

BN_SEEK: frozenset[str] = PASS_THROUGH - {"BatchNormalization", "DepthwiseConv2D", "Flatten"}
"""Layers the ``bn_scale`` criterion looks through to find the BatchNormalization of a source."""

MERGES: frozenset[str] = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot"})
JOINS: frozenset[str] = MERGES - {"Dot"}
"""Element-wise merges: channel ``c`` of the output comes from channel ``c`` of every input, so the sources of all
inputs lose the same channels together (a residual ``Add`` couples its branch with its shortcut)."""
REARRANGE: frozenset[str] = frozenset({"Reshape", "Permute", "RepeatVector", "Conv2DTranspose", "Conv1D", "Conv3D"})
NESTED: frozenset[str] = frozenset({"Functional", "Sequential", "Model"})


@dataclass(frozen=True)
class StructuredResult:
    """A structurally pruned copy of a model and what was removed."""

    model: Any
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelGroup:
    """Sources whose output channels are removed together, because element-wise joins (``joins``, e.g. a residual
    ``Add``) meet their channels one to one; a source that meets no join is a group of its own.

    ``problems``: why the group's channels cannot be removed, as (source the problem is about, or None for the
    group's channels as a whole, phrase) in model order; empty when they can.
    """

    sources: tuple[str, ...]
    joins: tuple[str, ...] = ()
    problems: tuple[tuple[str | None, str], ...] = ()

    @property
    def coupled(self) -> bool:
        return bool(self.joins)

    def reason(self, source: str) -> str | None:
        """Why ``source`` (a member) keeps its channels, naming the group when it is coupled; None if it loses some."""
        if not self.problems:
            return None
        origin, phrase = next((p for p in self.problems if p[0] == source), self.problems[0])
        if origin == source:
            return phrase
        if not self.joins:
            return f"its channels {phrase}"
        others = [s for s in self.sources if s != source]
        coupling = f"its channels are coupled through {', '.join(self.joins)}" + (
            f" with {', '.join(others)}" if others else "")
        if origin is None:
            return f"{coupling}, and the group's channels {phrase}"
        return f"{coupling}, and {origin} cannot lose channels: {phrase}"


@dataclass
class _Node:
    layer: Any
    kind: str
    inbound: list[str]
    consumers: list[str] = field(default_factory=list)
    calls: int = 1
    is_output: bool = False


# --------------------------------------------------------------------------- graph


def _graph(model: Any) -> dict[str, _Node]:
    """The model's layers in topological order, with producers and consumers by name."""
    if getattr(model, "inputs", None) is None or not getattr(model, "_is_graph_network", False):
        raise ModelError(
            f"model '{model.name}' is not a built Sequential or functional model; "
            "structured pruning needs its layer graph"
        )
    nodes: dict[str, _Node] = {}
    for layer in model.layers:
        calls = [i for i in range(len(layer.inbound_nodes)) if f"{layer.name}_ib-{i}" in model._network_nodes]
        inbound: list[str] = []
        if calls:
            node = layer.inbound_nodes[calls[0]]
            producers = node.inbound_layers if isinstance(node.inbound_layers, (list, tuple)) else [node.inbound_layers]
            inbound = [p.name for p in producers]
        nodes[layer.name] = _Node(layer, type(layer).__name__, inbound, calls=max(1, len(calls)))
    for name, node in nodes.items():
        for producer in node.inbound:
            if producer in nodes:
                nodes[producer].consumers.append(name)
    for tensor in model.outputs:
        nodes[tensor._keras_history.layer.name].is_output = True
    return nodes


def _layer_problem(node: _Node) -> str | None:
    """Why channels cannot flow through (or be removed from) this layer, as a phrase naming it; None if they can."""
    k = keras()
    layer, kind = node.layer, node.kind
    if kind in MERGES - JOINS:
        return f"{layer.name} ({kind}), a merge that needs matching channels"
    if kind == "Concatenate":
        return f"{layer.name} (Concatenate), which joins the channels of several layers"
    if kind == "Lambda":
        return f"{layer.name} (Lambda), code whose use of channels is unknown"
    if kind in REARRANGE:
        return f"{layer.name} ({kind}), which rearranges channels"
    if kind == "Softmax" or (kind == "Activation" and getattr(layer.activation, "__name__", "") == "softmax"):
        return f"{layer.name} (Softmax), which normalises over channels"
    if kind in NESTED and hasattr(layer, "layers"):
        return f"{layer.name} ({kind}), a nested model (filter removal rebuilds top-level layers only)"
    if kind not in SOURCES | PASS_THROUGH | JOINS or type(layer) is not getattr(k.layers, kind, None):
        return f"{layer.name} ({kind}), a layer structured pruning does not handle"
    if node.calls > 1:
        return f"{layer.name}, a shared layer (called {node.calls} times)"
    if kind in JOINS:
        shapes = layer.input_shape if isinstance(layer.input_shape, list) else [layer.input_shape]
        if len({tuple(s)[-1] for s in shapes} | {tuple(layer.output_shape)[-1]}) != 1:
            return f"{layer.name} ({kind}), which broadcasts channels between its inputs"
    elif len(node.inbound) != 1:
        return f"{layer.name}, which has {len(node.inbound)} inputs"
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return f"{layer.name}, which uses {layer.data_format}"
    if int(getattr(layer, "groups", 1) or 1) != 1:
        return f"{layer.name}, a grouped convolution"
    if kind == "BatchNormalization":
        axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        rank = len(layer.input_shape)
        if [a % rank for a in axis] != [rank - 1]:
            return f"{layer.name}, which normalises over axis {layer.axis}, not the channel axis"
    return None


def _own_problem(node: _Node) -> str | None:
    """Why a source's own output channels cannot be removed, whatever its group; None if nothing about it forbids."""
    if node.is_output:
        return "its output is the model output (classifier units are never removed)"
    own = _layer_problem(node)
    if own:
        return f"the layer is {own}"
    if getattr(getattr(node.layer, "activation", None), "__name__", "") == "softmax":
        return "it applies softmax over its channels"
    if not node.consumers:
        return "its output is not used"
    return None


def _remaps(node: _Node) -> bool:
    """Whether the layer carries channels to its output other than one to one (a depthwise multiplier, Flatten)."""
    if node.kind == "DepthwiseConv2D":
        return int(node.layer.depth_multiplier) != 1
    return node.kind == "Flatten" and len(node.layer.input_shape) > 2


class _Coupling:
    """Union-find over channel spaces: each source's output channels, the model inputs and the outputs of layers
    channels cannot pass; an element-wise join unites the spaces of its inputs."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.sources: list[list[str]] = []
        self.joins: list[list[str]] = []
        self.problems: list[list[tuple[str | None, str]]] = []

    def new(self, source: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.sources.append([source] if source else [])
        self.joins.append([])
        self.problems.append([])
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, spaces: list[int], join: str) -> int:
        roots = sorted({self.find(s) for s in spaces})
        root = roots[0]
        for other in roots[1:]:
            self.parent[other] = root
            self.sources[root].extend(self.sources[other])
            self.joins[root].extend(self.joins[other])
            self.problems[root].extend(self.problems[other])
        self.joins[root].append(join)
        return root

    def block(self, space: int, origin: str | None, phrase: str) -> None:
        self.problems[self.find(space)].append((origin, phrase))

    def groups(self, order: list[str]) -> list[ChannelGroup]:
        rank = {name: i for i, name in enumerate(order)}
        out = []
        for i in range(len(self.parent)):
            if self.find(i) != i or not self.sources[i]:
                continue
            sources = tuple(sorted(self.sources[i], key=rank.__getitem__))
            problems = sorted(self.problems[i], key=lambda p: rank.get(p[0], -1) if p[0] else -1)
            out.append(ChannelGroup(sources, tuple(dict.fromkeys(self.joins[i])), tuple(problems)))
        return sorted(out, key=lambda g: rank[g.sources[0]])


def _channel_groups(nodes: dict[str, _Node]) -> list[ChannelGroup]:
    """Every source's group (model order), walking the graph once: a layer's output channels belong to its
    producer's space (pass-through), a new space (sources, model inputs, layers channels cannot pass), or the union
    of its inputs' spaces (element-wise joins)."""
    c = _Coupling()
    space: dict[str, int] = {}  # layer → the channel space of its output
    remapped: dict[str, str] = {}  # layer → the layer upstream that mapped its channels other than one to one
    for name, node in nodes.items():
        inputs = [p for p in node.inbound if p in space]
        problem = _layer_problem(node)
        if problem:  # its input channels cannot be selected
            for p in inputs:
                c.block(space[p], None, f"reach {problem}")
        if node.kind == "InputLayer":
            space[name] = c.new()
            c.block(space[name], None, f"come from the model input ({name})")
        elif node.kind in SOURCES:
            space[name] = c.new(name)
            own = _own_problem(node)
            if own:
                c.block(space[name], name, own)
        elif problem or not inputs:
            space[name] = c.new()
            c.block(space[name], None, f"come from {problem}" if problem else
                    f"come from the model input (through {name}, {node.kind})")  # a Sequential's first layer
        elif node.kind in JOINS:
            mapped = [remapped[p] for p in inputs if p in remapped]
            space[name] = c.union([space[p] for p in inputs], f"{name} ({node.kind})")
            if mapped:
                c.block(space[name], None, f"meet at {name} ({node.kind}) after {mapped[0]} "
                        f"({nodes[mapped[0]].kind}) mapped them other than one to one")
                remapped[name] = mapped[0]
        else:
            space[name] = space[inputs[0]]
            if _remaps(node):
                remapped[name] = name
            elif inputs[0] in remapped:
                remapped[name] = remapped[inputs[0]]
        if node.is_output and node.kind not in SOURCES:
            c.block(space[name], None, f"reach the model output through {name} ({node.kind})")
    return c.groups(list(nodes))


# --------------------------------------------------------------------------- scores


def _out_kernel(layer: Any) -> np.ndarray:
    """The weights that make each output channel, as a (fan_in, channels) matrix."""
    kernel = layer.pointwise_kernel if type(layer).__name__ == "SeparableConv2D" else layer.kernel
    kernel = np.asarray(kernel.numpy())
    return kernel.reshape(-1, kernel.shape[-1])


def _scores(nodes: dict[str, _Node], name: str, criterion: str) -> tuple[np.ndarray, str]:
    """Importance of each output channel of a source, and the criterion really used."""
    kernel = _out_kernel(nodes[name].layer)
    if criterion == "bn_scale":
        current = nodes[name]
        while len(current.consumers) == 1:
            nxt = nodes[current.consumers[0]]
            if nxt.kind == "BatchNormalization" and nxt.layer.scale and _layer_problem(nxt) is None:
                return np.abs(np.asarray(nxt.layer.gamma.numpy(), dtype=np.float64)), f"bn_scale ({nxt.layer.name})"
            if nxt.kind not in BN_SEEK:
                break
            current = nxt
        return np.abs(kernel).sum(axis=0, dtype=np.float64), "l1 (no BatchNorm follows)"
    if criterion == "l2":
        return np.sqrt(np.square(kernel, dtype=np.float64).sum(axis=0)), "l2"
    return np.abs(kernel).sum(axis=0, dtype=np.float64), "l1"


def _top(scores: np.ndarray, n_keep: int) -> np.ndarray:
    """Indices (ascending) of the ``n_keep`` highest scores; ties keep the earlier channel."""
    order = np.argsort(-scores, kind="stable")
    return np.sort(order[:n_keep])


# --------------------------------------------------------------------------- propagation


def _expand(keep: np.ndarray, multiplier: int) -> np.ndarray:
    """Depthwise outputs owned by the kept input channels: c*dm + m."""
    return (keep[:, None] * multiplier + np.arange(multiplier)[None, :]).ravel()


def _flatten_index(keep: np.ndarray, input_shape: Any) -> np.ndarray:
    """Channels-last Flatten: channel c at spatial position p becomes feature p*C + c."""
    dims = [int(d) for d in list(input_shape)[1:]]
    positions, channels = math.prod(dims[:-1]), dims[-1]
    return (np.arange(positions)[:, None] * channels + keep[None, :]).ravel()


def _propagate(nodes: dict[str, _Node], chosen: dict[str, np.ndarray]) -> dict[str, tuple[Any, Any]]:
    """(input keep, output keep) of every layer, given the kept output channels of each pruned source."""
    flows: dict[str, tuple[Any, Any]] = {}
    for name, node in nodes.items():
        keeps = [flows[p][1] for p in node.inbound if p in flows]
        keep_in = next((k for k in keeps if k is not None), None)
        if keep_in is not None and any(k is None or not np.array_equal(k, keep_in) for k in keeps):
            # unreachable: a join's inputs are one group, and a layer with other inputs blocks its sources
            raise RuntimeError(f"the inputs of {name} ({node.kind}) keep different channels")
        if node.kind in SOURCES:
            keep_out = chosen.get(name)
        elif keep_in is None:
            keep_out = None
        elif node.kind == "DepthwiseConv2D":
            keep_out = _expand(keep_in, int(node.layer.depth_multiplier))
        elif node.kind == "Flatten":
            keep_out = _flatten_index(keep_in, node.layer.input_shape)
        elif node.kind in PASS_THROUGH | JOINS:
            keep_out = keep_in
        else:  # unreachable: sources that would feed such a layer are skipped
            raise RuntimeError(f"channel selection reached {name} ({node.kind})")
        flows[name] = (keep_in, keep_out)
    return flows


def _with_channels(shape: Any, keep: Any) -> list[Any]:
    shape = list(shape)
    return shape if keep is None else shape[:-1] + [len(keep)]


def _macs_after(nodes: dict[str, _Node], flows: dict[str, tuple[Any, Any]]) -> int:
    total = 0
    for name, node in nodes.items():
        if node.kind not in SOURCES | {"DepthwiseConv2D"}:
            continue
        keep_in, keep_out = flows[name]
        layer = node.layer
        total += layer_macs(
            layer, _with_channels(layer.input_shape, keep_in), _with_channels(layer.output_shape, keep_out)
        )
    return total


# --------------------------------------------------------------------------- rebuild


def _take(array: np.ndarray, keep: Any, axis: int) -> np.ndarray:
    return array if keep is None else np.take(array, keep, axis=axis)


def _sliced_weights(node: _Node, keep_in: Any, keep_out: Any) -> list[np.ndarray]:
    """The surviving weights of one layer, in ``get_weights()`` order."""
    layer, kind = node.layer, node.kind
    weights = layer.get_weights()
    if kind == "Conv2D":
        out = [_take(_take(weights[0], keep_in, 2), keep_out, 3)]
        return out + [_take(b, keep_out, 0) for b in weights[1:]]
    if kind == "Dense":
        out = [_take(_take(weights[0], keep_in, 0), keep_out, 1)]
        return out + [_take(b, keep_out, 0) for b in weights[1:]]
    if kind == "SeparableConv2D":
        mid = None if keep_in is None else _expand(keep_in, int(layer.depth_multiplier))
        depthwise = _take(weights[0], keep_in, 2)
        pointwise = _take(_take(weights[1], mid, 2), keep_out, 3)
        return [depthwise, pointwise] + [_take(b, keep_out, 0) for b in weights[2:]]
    if kind == "DepthwiseConv2D":
        return [_take(weights[0], keep_in, 2)] + [_take(b, keep_out, 0) for b in weights[1:]]
    if kind == "BatchNormalization":
        return [_take(w, keep_in, 0) for w in weights]
    return weights


def _rebuild(model: Any, nodes: dict[str, _Node], chosen: dict[str, np.ndarray],
             flows: dict[str, tuple[Any, Any]]) -> Any:
    """A new model with the chosen channels and the surviving weights copied in."""
    k = keras()

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if layer.name in chosen:
            config["units" if type(layer).__name__ == "Dense" else "filters"] = int(len(chosen[layer.name]))
        try:
            return layer.__class__.from_config(config)
        except Exception as exc:  # noqa: BLE001 - any failure to copy a user layer is reported the same way
            if not layer.weights:
                return layer  # stateless (e.g. Lambda): sharing the instance shares no weights
            raise ModelError(f"cannot copy layer '{layer.name}' ({type(layer).__name__}): {exc}") from exc

    new = k.models.clone_model(model, clone_function=clone)
    for layer in new.layers:
        if layer.name not in nodes:
            continue
        keep_in, keep_out = flows.get(layer.name, (None, None))
        layer.set_weights(_sliced_weights(nodes[layer.name], keep_in, keep_out))
    return new


# --------------------------------------------------------------------------- public


def _validate(ratio: float | None, mac_budget: float | None, criterion: str, min_keep: int) -> None:
    if (ratio is None) == (mac_budget is None):
        raise UsageError("structured pruning needs exactly one of ratio (--structured) or mac_budget")
    if ratio is not None and not (isinstance(ratio, (int, float)) and 0.0 <= ratio < 1.0):
        raise UsageError(f"structured ratio must be in [0, 1), got {ratio!r}")
    if mac_budget is not None and not (isinstance(mac_budget, (int, float)) and 0.0 < mac_budget <= 1.0):
        raise UsageError(f"structured mac_budget must be in (0, 1], got {mac_budget!r}")
    if criterion not in get_args(Criterion):
        raise UsageError(f"structured criterion must be one of {', '.join(get_args(Criterion))}, got {criterion!r}")
    if not isinstance(min_keep, int) or isinstance(min_keep, bool) or min_keep < 1:
        raise UsageError(f"structured min_keep must be an integer >= 1, got {min_keep!r}")


def _group_scores(nodes: dict[str, _Node], group: ChannelGroup, criterion: str) -> np.ndarray:
    """Importance of each channel of a group: its source's scores, or for coupled sources the sum of each member's
    scores divided by that member's mean, so a 3×3 convolution's larger norms do not outvote a 1×1 projection's."""
    if len(group.sources) == 1:
        return _scores(nodes, group.sources[0], criterion)[0]
    total = np.zeros(0)
    for name in group.sources:
        s = _scores(nodes, name, criterion)[0]
        mean = float(s.mean()) if len(s) else 0.0
        total = (total if total.size else np.zeros_like(s)) + (s / mean if mean > 0 else np.zeros_like(s))
    return total


def _fractions(groups: Mapping[str, ChannelGroup], ratio: float,
               per_layer: Mapping[str, float] | None) -> dict[str, float]:
    """The fraction of each group's channels to remove: ``ratio``, or the largest ``per_layer`` fraction given
    for one of its members (a fraction chosen for one coupled source is the fraction of its whole group)."""
    given = per_layer or {}
    return {key: max((float(given[m]) for m in g.sources if m in given), default=ratio) for key, g in groups.items()}


def _by_ratio(scores: dict[str, np.ndarray], fractions: Mapping[str, float], min_keep: int) -> dict[str, np.ndarray]:
    chosen = {}
    for name, s in scores.items():
        total = len(s)
        n_keep = max(min(min_keep, total), total - int(math.floor(fractions[name] * total + 1e-9)))
        chosen[name] = _top(s, n_keep)
    return chosen


def _by_member(groups: Mapping[str, ChannelGroup], chosen: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The kept channels of every source, from those of its group."""
    return {member: keep for key, keep in chosen.items() for member in groups[key].sources}


def _by_budget(
    nodes: dict[str, _Node], groups: Mapping[str, ChannelGroup], scores: dict[str, np.ndarray], target: float,
    min_keep: int,
) -> tuple[dict[str, np.ndarray], bool]:
    """Remove globally least important channels (score / group mean) until MACs <= target."""
    names = list(scores)
    entries: list[tuple[float, int, int]] = []
    for li, name in enumerate(names):
        s = scores[name]
        mean = float(s.mean()) if len(s) else 0.0
        norm = s / mean if mean > 0 else np.zeros_like(s)
        entries.extend((float(v), li, int(c)) for c, v in enumerate(norm))
    entries.sort()

    def choose(n_removed: int) -> dict[str, np.ndarray]:
        removed: dict[str, list[int]] = {n: [] for n in names}
        for _, li, c in entries[:n_removed]:
            name = names[li]
            if len(scores[name]) - len(removed[name]) > min(min_keep, len(scores[name])):
                removed[name].append(c)
        return {n: np.setdiff1d(np.arange(len(scores[n])), removed[n]) for n in names}

    def macs(n_removed: int) -> int:
        return _macs_after(nodes, _propagate(nodes, _by_member(groups, choose(n_removed))))

    lo, hi = 0, len(entries)
    if macs(hi) > target:
        return choose(hi), False
    while lo < hi:  # smallest number of removals that meets the budget
        mid = (lo + hi) // 2
        if macs(mid) <= target:
            hi = mid
        else:
            lo = mid + 1
    return choose(lo), True


def channel_groups(model: Any) -> list[ChannelGroup]:
    """The filter/unit sources of ``model`` in groups whose channels are removed together (model order)."""
    return _channel_groups(_graph(model))


def removable_sources(model: Any, *, one_per_group: bool = False) -> dict[str, str | None]:
    """Every filter/unit source of ``model`` → None if its output channels can be removed, else why not.

    ``one_per_group``: in a coupled group only the source with the most MACs says None; the others say that their
    channels go with it (so a per-layer measurement of that one is the group's, and weighs the larger cost)."""
    nodes = _graph(model)
    out: dict[str, str | None] = {}
    for group in _channel_groups(nodes):
        for name in group.sources:
            out[name] = group.reason(name)
        if not one_per_group or group.problems or len(group.sources) == 1:
            continue
        layers = [nodes[n].layer for n in group.sources]
        lead = max(layers, key=lambda la: layer_macs(la, la.input_shape, la.output_shape)).name
        for name in group.sources:
            if name != lead:
                out[name] = (f"its channels are removed with those of {lead} (coupled through "
                             f"{', '.join(group.joins)}), whose row measures the group")
    return out


def prune_structured(
    model: Any,
    *,
    ratio: float | None = None,
    mac_budget: float | None = None,
    criterion: Criterion = "l1",
    min_keep: int = 1,
    per_layer: Mapping[str, float] | None = None,
) -> StructuredResult:
    """Remove the least important Conv2D filters / Dense units and return a smaller model.

    ``ratio`` removes that fraction of the output channels of every prunable
    group; ``mac_budget`` instead removes the globally least important channels
    (criterion divided by its group's mean) until MACs <= mac_budget x the
    original MACs. ``per_layer`` (layer name → fraction) overrides ``ratio`` for those
    layers' groups (``ratio`` defaults to 0 then), e.g. fractions chosen per layer from a
    sensitivity analysis. ``criterion``: ``l1``/``l2`` norm of each channel's weights,
    or ``bn_scale`` (|gamma| of the BatchNormalization that follows; L1 where
    none does). ``min_keep`` channels always survive in each group. The input
    model is not modified; the returned model is uncompiled.

    Sources coupled by element-wise joins (the last convolution of a residual branch, its projection shortcut,
    or the producer of an identity shortcut's input, transitively through chained blocks) form one group
    (:func:`channel_groups`): they lose the same channels, ranked by the sum of their normalised scores.
    """
    if per_layer and ratio is None and mac_budget is None:
        ratio = 0.0
    _validate(ratio, mac_budget, criterion, min_keep)
    if per_layer and mac_budget is not None:
        raise UsageError("structured per_layer fractions go with ratio, not mac_budget")
    for name, r in (per_layer or {}).items():
        if not (isinstance(r, (int, float)) and 0.0 <= r < 1.0):
            raise UsageError(f"structured per_layer.{name}: fraction must be in [0, 1), got {r!r}")
    started = time.perf_counter()
    nodes = _graph(model)
    unknown = set(per_layer or {}) - set(nodes)
    if unknown:
        raise UsageError(f"structured per_layer: no layer named {sorted(unknown)[0]!r} in the model")
    all_groups = _channel_groups(nodes)
    groups = {g.sources[0]: g for g in all_groups if not g.problems}
    skipped: list[dict[str, Any]] = [_row(g, name, {"reason": g.reason(name)}) for g in all_groups if g.problems
                                     for name in g.sources]
    scores = {key: _group_scores(nodes, g, criterion) for key, g in groups.items()}

    macs_before = count_macs(model)
    budget_met = True
    if ratio is not None:
        by_group = _by_ratio(scores, _fractions(groups, float(ratio), per_layer), min_keep)
    else:
        target = float(mac_budget) * macs_before  # type: ignore[arg-type]
        by_group, budget_met = _by_budget(nodes, groups, scores, target, min_keep)
        if not budget_met:
            log.warning("MAC budget %.3f not reachable by removing prunable channels; pruned as far as allowed",
                        mac_budget)
    chosen = _by_member(groups, by_group)
    flows = _propagate(nodes, chosen)
    pruned = _rebuild(model, nodes, chosen, flows)

    order = {name: i for i, name in enumerate(nodes)}
    report: dict[str, Any] = {
        "method": "ratio" if ratio is not None else "mac_budget",
        "ratio": ratio,
        "per_layer": dict(per_layer or {}),
        "mac_budget": mac_budget,
        "criterion": criterion,
        "min_keep": min_keep,
        "params_before": count_params(model),
        "params_after": count_params(pruned),
        "macs_before": macs_before,
        "macs_after": count_macs(pruned),
        "layers": sorted((_row(g, n, {"kept": int(len(chosen[n])), "total": int(len(scores[key])),
                                      "criterion": _scores(nodes, n, criterion)[1]})
                          for key, g in groups.items() for n in g.sources), key=lambda r: order[r["name"]]),
        "skipped": sorted(skipped, key=lambda r: order[r["layer"]]),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if mac_budget is not None:
        report["budget_met"] = budget_met
    log.info(
        "structured pruning: params %d -> %d, MACs %d -> %d",
        report["params_before"], report["params_after"], report["macs_before"], report["macs_after"],
    )
    return StructuredResult(model=pruned, report=report)


def _row(group: ChannelGroup, name: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A report row of source ``name``: ``layers`` (kept/total/criterion) or ``skipped`` (reason); a coupled
    source also names its group (``group``: the sources, ``joins``: where they meet)."""
    key = "name" if "kept" in fields else "layer"
    row: dict[str, Any] = {key: name, **fields}
    if group.coupled:
        row["group"], row["joins"] = list(group.sources), list(group.joins)
    return row
