#!/usr/bin/env python3
"""int_check.py - checks that an exported model is integer-only.

    int_check.py MODEL.onnx [--expect-int4]

onnx.checker (full_check) must pass.  Then, with the types shape inference
gives: the only nodes that read a float tensor computed in the graph are the
input quantizers (QuantizeLinear of a graph input, or of what float Casts and
layout ops made of it: the Cast to float32 of a float16 input) and the output
dequantization (nodes downstream of a Cast to float, which must stay float
up to the graph outputs).  Every other node reads and writes integers.
Prints one summary line; exit 1 on a violation.
"""
import sys

import onnx
from onnx import TensorProto, shape_inference

FLOATS = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
# ops that move or convert the input's values before the input quantizer
HEAD_OPS = {"Cast", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten"}


def main():
    path = sys.argv[1]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    g = inferred.graph
    types = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        types[vi.name] = vi.type.tensor_type.elem_type
    inits = {t.name: t for t in g.initializer}
    for t in g.initializer:
        types[t.name] = t.data_type
    graph_inputs = {i.name for i in g.input if i.name not in inits}
    head = set(graph_inputs)  # the float input and its Casts / layout ops
    tail = set()          # float values of the output dequantization
    n_int = n_tail = n_inq = n_head = 0
    bad = []
    for n in g.node:
        ins = [i for i in n.input if i]
        outs_float = [types.get(o) in FLOATS for o in n.output]
        computed_float = [i for i in ins if i not in inits and types.get(i) in FLOATS]
        if n.op_type == "QuantizeLinear" and ins[0] in head:
            n_inq += 1
            continue
        if n.op_type in HEAD_OPS and ins and ins[0] in head and all(outs_float) and \
                all(i == ins[0] for i in computed_float):
            head.update(n.output)
            n_head += 1
            continue
        if n.op_type == "Shape":
            n_int += 1         # reads only the dims (int64 shape arithmetic)
            continue
        if n.op_type == "Cast" and all(outs_float) and not computed_float:
            tail.update(n.output)          # integer -> float: the output dequantization
            n_tail += 1
            continue
        if computed_float:
            if not all(i in tail for i in computed_float) or not all(outs_float):
                bad.append("%s (%s) computes in float inside the integer graph" %
                           (n.name, n.op_type))
            tail.update(n.output)
            n_tail += 1
            continue
        if any(outs_float):
            bad.append("%s (%s) makes a float tensor from integers without a Cast" %
                       (n.name, n.op_type))
        n_int += 1
    if n_inq == 0:
        bad.append("no input QuantizeLinear")
    n_int4 = sum(1 for t in g.initializer
                 if t.data_type in (TensorProto.INT4, TensorProto.UINT4))
    if "--expect-int4" in sys.argv and n_int4 == 0:
        bad.append("no INT4/UINT4 initializer")
    for b in bad:
        print("int_check: %s: %s" % (path, b))
    print("int_check: %s: opset %d, %d float node(s) before %d input quantizer(s), %d integer "
          "nodes, %d output dequantization nodes, %d INT4/UINT4 initializers%s" %
          (path, next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
           n_head, n_inq, n_int, n_tail, n_int4, "" if not bad else ", FAILED"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
