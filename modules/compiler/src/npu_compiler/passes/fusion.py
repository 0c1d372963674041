"""Epilogue fusion: elementwise consumers run as epilogues of the conv/matmul before them
(conv+bias+relu, conv+add+relu...), and a Relu before a MaxPool moves below it to become the
pool's epilogue."""

from __future__ import annotations

from collections import Counter

import npu_opslib
from npu_compiler.ir import RUN_TIME_COMPILED, Graph, Node, Value
from npu_compiler.passes.registry import compiler_pass, summary

def _relu_input(graph: Graph, producers: dict, value: str, reader: Node) -> str | None:
    """The input of the Relu producing `value`, if `reader` is that value's only reader."""
    relu = producers.get(value)
    if relu is None or relu.op_type != "Relu" or graph.sole_consumer(value) is not reader:
        return None
    return relu.inputs[0]


def _sink_below(graph: Graph, pool: Node, producers: dict) -> int:
    """Move the Relu(s) feeding `pool` after it; the number of Relus removed before it."""
    source = pool.inputs[0]
    before = producers.get(source)
    if before is None:
        return 0
    if before.op_type == "Relu":
        inputs, relus = [_relu_input(graph, producers, source, pool)], [before]
    elif before.op_type == "Concat" and graph.sole_consumer(source) is pool:
        inputs = [_relu_input(graph, producers, x, before) for x in before.inputs]
        relus = [producers.get(x) for x in before.inputs]
    else:
        return 0
    if not inputs or any(x is None for x in inputs):
        return 0
    if before.op_type == "Concat":
        before.inputs = inputs
    else:
        pool.inputs = [inputs[0]] + pool.inputs[1:]
    pooled = f"{pool.outputs[0]}/before_relu"
    graph.values[pooled] = Value(pooled, graph.value(pool.outputs[0]).shape,
                                 graph.value(pool.outputs[0]).dtype)
    graph.nodes = [n for n in graph.nodes if not any(n is r for r in relus)]
    relu = Node(f"{pool.name}/relu", "Relu", [pooled], [pool.outputs[0]])
    pool.outputs = [pooled]
    graph.nodes.insert(graph.nodes.index(pool) + 1, relu)
    return len(relus)


@compiler_pass("sink_relu")
def sink_relu(graph: Graph) -> Graph:
    """A Relu before a MaxPool moves after it: max commutes with a non-decreasing function, so
    MaxPool(Relu(x)) == Relu(MaxPool(x)), and there it touches the pooled tensor, stride^2
    times smaller (fused as the MaxPool's epilogue). The Relus of a Concat's inputs move with
    it when the Concat only feeds such a MaxPool (Relu commutes with Concat too). A MaxPool
    returning Indices keeps its input: ties at zero would change them."""
    if "Relu" not in npu_opslib.get_kernel("MaxPool").fusions:
        graph.note("MaxPool takes no Relu epilogue: Relus stay where they are")
        return graph
    moved = 0
    changed = True
    while changed:
        changed = False
        producers = graph.producers()
        for pool in list(graph.nodes):
            if pool.op_type != "MaxPool" or pool.fusion or len(
                    [o for o in pool.outputs if o]) != 1:
                continue
            removed = _sink_below(graph, pool, producers)
            if removed:
                moved += removed
                changed = True
                break
    if moved:
        graph.note(f"moved {moved} Relu below MaxPool", relus_sunk=moved)
    return graph


# ------------------------------------------------------------------------ fusion
def _epilogue_of(graph: Graph, producer: Node, consumer: Node) -> tuple[str, list, dict] | None:
    """(epilogue op, extra inputs, its attributes) if `consumer` can run as an epilogue of
    `producer` (whose output it reads), else None."""
    out = producer.outputs[0]
    op = consumer.op_type
    if op in ("Relu", "Sigmoid", "Tanh"):
        return op, [], {}
    if op == "Gelu" and consumer.attrs.get("approximate", "none") == "none":
        return op, [], {}
    if op == "LeakyRelu":
        return op, [], {"alpha": float(consumer.attrs.get("alpha", 0.01))}
    if op == "Clip":
        attrs = {k: float(consumer.attrs[k]) for k in ("min", "max") if k in consumer.attrs}
        for name, bound in zip(consumer.inputs[1:3], ("min", "max")):
            if name:
                if name not in graph.constants:
                    return None
                attrs[bound] = float(graph.constants[name])
        return op, [], attrs
    if op in ("Add", "Sum", "Mul") and len(consumer.inputs) == 2:
        other = consumer.inputs[1] if consumer.inputs[0] == out else consumer.inputs[0]
        if other == out:
            return None
        out_shape = graph.value(out).shape
        other_shape = graph.value(other).shape
        if out_shape is None or other_shape is None or graph.value(
                consumer.outputs[0]).shape != out_shape:
            return None
        return ("Mul" if op == "Mul" else "Add"), [other], {}
    return None


@compiler_pass("fuse_epilogues")
def fuse_epilogues(graph: Graph) -> Graph:
    """Elementwise consumers become epilogues of their producer (conv+bias+relu, conv+add+relu,
    gemm+relu...) when the producer's kernel accepts the resulting fusion pattern. The fused
    node takes the consumer's place in the order, so the residual operand of an Add is ready."""
    fused: Counter = Counter()
    users, absorbed = graph.consumers(), set()  # kept current as consumers are absorbed
    for producer in list(graph.nodes):
        if id(producer) in absorbed or len(producer.outputs) != 1 or \
                producer.op_type in RUN_TIME_COMPILED:
            continue
        accepted = npu_opslib.get_kernel(producer.op_type).fusions
        while True:
            consumer = graph.sole_consumer(producer.outputs[0], users)
            epilogue = _epilogue_of(graph, producer, consumer) if consumer else None
            if epilogue is None:
                break
            op, extra, attrs = epilogue
            if "+".join(producer.fusion + [op]) not in accepted:
                break
            producer.fusion.append(op)
            producer.epilogue_attrs.append(attrs)
            producer.inputs = producer.inputs + extra
            producer.outputs = list(consumer.outputs)
            absorbed.add(id(consumer))
            for name in extra:  # the consumer's other operands are the producer's now
                users[name] = [producer if u is consumer else u for u in users.get(name, [])]
            graph.nodes.remove(producer)
            graph.nodes[graph.nodes.index(consumer)] = producer
        if producer.fusion:
            fused[f"{producer.op_type}+{producer.fusion_name}"] += 1
    if fused:
        graph.note(f"fused {sum(fused.values())} nodes ({summary(fused)})",
                   fusions=dict(fused))
    return graph
