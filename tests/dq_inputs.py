#!/usr/bin/env python3
"""dq_inputs.py - checks that every layer of a fake-quant export reads quantized values.

    dq_inputs.py MODEL.onnx [--expect-signed N]

For every Conv and Gemm of MODEL (a QDQ export), follows its data input (input 0)
back through the ops that keep or pool quantized values without computing new ones
(MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Identity, Dropout: the ops
--recipe-template follows to place a quantizer) and requires a DequantizeLinear there.
No exception for the first layer: a layer that reads the graph input directly is an
offender too.  With --expect-signed N, exactly N of those DequantizeLinear nodes must
read int8 levels (signed quantizers).  onnx.checker (full_check) must pass.  Prints
one summary line, or one line per offender (layer, what it reads, the path) and exits 1.
"""
import argparse
import sys

import onnx
from onnx import numpy_helper

PASS_OPS = {"MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Identity",
            "Dropout"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--expect-signed", type=int)
    args = ap.parse_args()
    m = onnx.load(args.model)
    onnx.checker.check_model(m, full_check=True)
    inits = {t.name: t for t in m.graph.initializer}
    prod = {o: n for n in m.graph.node for o in n.output}
    graph_inputs = {i.name for i in m.graph.input}
    offenders = []
    n_layers = n_signed = 0
    for n in m.graph.node:
        if n.op_type not in ("Conv", "Gemm"):
            continue
        n_layers += 1
        v = n.input[0]
        path = []
        while v in prod and prod[v].op_type in PASS_OPS:
            path.append(prod[v].op_type)
            v = prod[v].input[0]
        d = prod.get(v)
        if d is None or d.op_type != "DequantizeLinear":
            what = d.op_type + " '" + d.name + "'" if d is not None else \
                ("the graph input '%s'" % v if v in graph_inputs else "'%s'" % v)
            offenders.append("%s (%s) reads %s%s" % (n.name, n.op_type, what,
                             " through " + ", ".join(path) if path else ""))
            continue
        if len(d.input) > 2 and d.input[2] in inits:
            n_signed += numpy_helper.to_array(inits[d.input[2]]).dtype.name == "int8"
    for o in offenders:
        print("dq_inputs: %s: not a DequantizeLinear: %s" % (args.model, o))
    if offenders:
        print("dq_inputs: %s: %d of %d Conv/Gemm layers read unquantized values"
              % (args.model, len(offenders), n_layers))
        return 1
    if args.expect_signed is not None and n_signed != args.expect_signed:
        print("dq_inputs: %s: %d layers read int8 levels, expected %d"
              % (args.model, n_signed, args.expect_signed))
        return 1
    print("all %d Conv/Gemm layers read a DequantizeLinear (%d of them int8 levels)"
          % (n_layers, n_signed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
