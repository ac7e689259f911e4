#!/usr/bin/env python3
"""export_layout.py - the layer layout ONNX Runtime makes of a fake-quant export.

Usage: python3 tests/export_layout.py MODEL [--keep-bn]

Loads MODEL with ONNX Runtime's CPU provider at its default graph optimizations, writes
the optimized graph (SessionOptions.optimized_model_filepath) to a temporary directory and
counts, in MODEL, its Conv/Gemm/MatMul layers, the quantized ones among them (the data
input is a DequantizeLinear's output and the output reaches a QuantizeLinear, directly or
through a Relu: what ONNX Runtime's QDQ selectors can fuse) and its BatchNormalization
nodes, and in the optimized graph the layers ORT runs as integer kernels (QLinearConv,
QGemm, QLinearMatMul, ...).  Prints one line
    layers=L quantized=Q integer=I batchnorm=B
and exits 0 when I >= Q > 0 and no BatchNormalization is left (with --keep-bn: when B > 0),
else 1.
"""
import collections
import os
import sys
import tempfile

import onnx
import onnxruntime as ort

LAYERS = {"Conv", "Gemm", "MatMul"}
INTEGER = {"QLinearConv", "QGemm", "QLinearMatMul", "NhwcQLinearConv", "MatMulInteger",
           "ConvInteger"}


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--keep-bn"):
        print(__doc__.split("\n")[2], file=sys.stderr)
        return 2
    path = sys.argv[1]
    keep = len(sys.argv) == 3
    model = onnx.load(path)
    ops = collections.Counter(n.op_type for n in model.graph.node)
    with tempfile.TemporaryDirectory() as d:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.optimized_model_filepath = os.path.join(d, "opt.onnx")
        ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        opt = collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath)
                                  .graph.node)
    producer = {o: n for n in model.graph.node for o in n.output}
    readers = collections.defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            readers[i].append(n)

    def quantized(n):
        src = producer.get(n.input[0])
        if src is None or src.op_type != "DequantizeLinear":
            return False
        nxt = readers[n.output[0]]
        if len(nxt) == 1 and nxt[0].op_type == "Relu":
            nxt = readers[nxt[0].output[0]]
        return len(nxt) == 1 and nxt[0].op_type == "QuantizeLinear"

    layers = sum(ops[k] for k in LAYERS)
    nq = sum(1 for n in model.graph.node if n.op_type in LAYERS and quantized(n))
    integer = sum(opt[k] for k in INTEGER)
    bn = ops["BatchNormalization"]
    print("layers=%d quantized=%d integer=%d batchnorm=%d" % (layers, nq, integer, bn))
    if keep:
        return 0 if bn > 0 else 1
    return 0 if integer >= nq > 0 and bn == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
