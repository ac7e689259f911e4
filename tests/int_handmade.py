#!/usr/bin/env python3
"""int_handmade.py - a hand-built fake-quant (QDQ) model for the int export.

    int_handmade.py make OUT.onnx
    int_handmade.py compare FAKE.onnx INT.onnx

`make` writes a QDQ graph that exercises what the trained fixtures do not:
per-channel weight scales, a depthwise convolution with odd (SAT Default)
levels, a Concat of two branches quantized with one scale, AveragePool,
ReLU6 as Clip, a constant added to a pre-activation, BatchNormalization on a
convolution without bias, GlobalAveragePool feeding a Gemm, and Softmax at the
end.  Weights are random integer levels; input [N, 1, 28, 28].  The scales are
deliberately not round numbers: with round ones, exact ties (x.5 levels) are
common, and the int export rounds those half up where QuantizeLinear rounds
half to even.

`compare` runs both models in ONNX Runtime (graph optimizations off: the QDQ
semantics as ONNX specifies them) on 512 random k/255 images and checks that
the integer model's predictions equal the fake model's on >= 99.5 % of them and
that the probabilities agree to 1e-3.
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(7)
inits = []
nodes = []


def const(name, arr):
    inits.append(numpy_helper.from_array(np.asarray(arr), name))
    return name


def node(op, ins, out, **attrs):
    nodes.append(helper.make_node(op, ins, [out], name=out + "_node", **attrs))
    return out


def act_q(x, name, scale, r):
    """QuantizeLinear(uint8) -> Clip(0, R) -> DequantizeLinear."""
    s = const(name + "_s", np.float32(scale))
    z = const(name + "_z", np.uint8(0))
    q = node("QuantizeLinear", [x, s, z], name + "_q")
    if r < 255:
        q = node("Clip", [q, const(name + "_lo", np.uint8(0)), const(name + "_hi", np.uint8(r))],
                 name + "_c")
    return node("DequantizeLinear", [q, s, z], name)


def weight(name, shape, lo, hi, scale, odd=False, axis=None):
    k = rng.integers(lo, hi + 1, size=shape)
    if odd:
        k = 2 * rng.integers((lo + 1) // 2, (hi + 1) // 2, size=shape) - 1
    kq = const(name + "_k", k.astype(np.int8))
    s = const(name + "_s", np.asarray(scale, np.float32))
    z = const(name + "_z", np.zeros(np.shape(scale), np.int8))
    kw = {} if axis is None else {"axis": axis}
    return node("DequantizeLinear", [kq, s, z], name, **kw)


def bn(x, name, c):
    g = const(name + "_g", rng.uniform(0.5, 1.5, c).astype(np.float32))
    b = const(name + "_b", rng.uniform(-0.2, 0.2, c).astype(np.float32))
    m = const(name + "_m", rng.uniform(-0.5, 0.5, c).astype(np.float32))
    v = const(name + "_v", rng.uniform(0.5, 2.0, c).astype(np.float32))
    return node("BatchNormalization", [x, g, b, m, v], name)


def make(path):
    x = "input"
    w1 = weight("w1", (8, 1, 3, 3), -127, 127, rng.uniform(0.002, 0.01, 8), axis=0)
    b1 = const("b1", rng.uniform(-0.1, 0.1, 8).astype(np.float32))
    c1 = node("Conv", [x, w1, b1], "c1", pads=[1, 1, 1, 1])
    a1 = act_q(node("Relu", [c1], "r1"), "a1", 0.0513, 15)
    # branch A: MaxPool; branch B: depthwise conv with odd levels, BN, ReLU6
    pa = node("MaxPool", [a1], "pa", kernel_shape=[2, 2], strides=[2, 2])
    w2 = weight("w2", (8, 1, 3, 3), -15, 15, np.float32(0.0371), odd=True)
    c2 = node("Conv", [a1, w2], "c2", pads=[1, 1, 1, 1], group=8)
    r2 = node("Clip", [bn(c2, "bn2", 8), const("r6lo", np.float32(0)),
                       const("r6hi", np.float32(6))], "r2")
    a2 = act_q(r2, "a2", 0.0513, 15)
    pb = node("MaxPool", [a2], "pb", kernel_shape=[2, 2], strides=[2, 2])
    cat = node("Concat", [pa, pb], "cat", axis=1)
    w3 = weight("w3", (16, 16, 1, 1), -8, 7, np.float32(0.0419))
    c3 = node("Conv", [cat, w3], "c3")
    c3 = node("Add", [c3, const("shift", np.float32(0.0531))], "c3s")
    a3 = act_q(node("Relu", [c3], "r3"), "a3", 0.0937, 255)
    ap = node("AveragePool", [a3], "ap", kernel_shape=[2, 2], strides=[2, 2])
    a4 = act_q(ap, "a4", 0.0811, 255)
    gp = node("GlobalAveragePool", [a4], "gp")
    fl = node("Flatten", [gp], "fl", axis=1)
    w5 = weight("w5", (10, 16), -127, 127, np.float32(0.0107))
    b5 = const("b5", rng.uniform(-0.1, 0.1, 10).astype(np.float32))
    g5 = node("Gemm", [fl, w5, b5], "logits", transB=1)
    node("Softmax", [g5], "output", axis=1)
    graph = helper.make_graph(
        nodes, "int_handmade",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def run(path, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, {"input": x})[0]


def compare(fake, integer):
    x = (rng.integers(0, 256, size=(512, 1, 28, 28)) / 255.0).astype(np.float32)
    a, b = run(fake, x), run(integer, x)
    agree = (a.argmax(1) == b.argmax(1)).mean()
    diff = np.abs(a - b).max()
    print("int_handmade: predictions %.2f%% equal, max |probability difference| %.2g"
          % (100 * agree, diff))
    return 0 if agree >= 0.995 and diff <= 1e-3 else 1


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
        sys.exit(0)
    sys.exit(compare(sys.argv[2], sys.argv[3]))
