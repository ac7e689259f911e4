#!/usr/bin/env python3
"""signed_model.py - a small float Fashion-MNIST model with a linear bottleneck and a
residual Add without an activation after it (MobileNet-v2's pattern in miniature), for
tests/test_signed.sh.

    signed_model.py [--linear-head] OUT.onnx

input [N, 1, 28, 28] -> Conv 3x3/2 -> BN -> Relu (r1) -> Conv 1x1 -> BN (b2, linear)
-> Conv 3x3 -> BN (b3, linear) -> Add (b3 + r1, no activation) -> Conv 3x3/2 -> BN -> Relu
-> MaxPool 2x2 -> Flatten -> Gemm -> output [N, 10].  Two layers read values that
can be negative: the 3x3 Conv reads b2 and the last Conv reads the Add.  Weights are
He-initialized from a fixed seed, BatchNorm statistics are the identity.  With
--linear-head the last BatchNorm has no Relu either, so the Gemm reads signed values too.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(23)
inits = []
nodes = []


def init(name, a):
    inits.append(numpy_helper.from_array(a.astype(np.float32), name))
    return name


def conv_bn(x, name, cin, cout, k, stride=1):
    w = rng.normal(0.0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k))
    p = k // 2
    nodes.append(helper.make_node("Conv", [x, init(name + "_w", w)], [name], name=name,
                                  kernel_shape=[k, k], strides=[stride, stride],
                                  pads=[p, p, p, p]))
    bn = name + "_bn"
    nodes.append(helper.make_node(
        "BatchNormalization",
        [name, init(bn + "_scale", np.ones(cout)), init(bn + "_bias", np.zeros(cout)),
         init(bn + "_mean", np.zeros(cout)), init(bn + "_var", np.ones(cout))], [bn], name=bn))
    return bn


def relu(x):
    nodes.append(helper.make_node("Relu", [x], [x + "_relu"], name=x + "_relu"))
    return x + "_relu"


def main():
    linear_head = sys.argv[1] == "--linear-head"
    r1 = relu(conv_bn("input", "stem", 1, 16, 3, 2))
    b2 = conv_bn(r1, "project", 16, 16, 1)
    b3 = conv_bn(b2, "linear", 16, 16, 3)
    nodes.append(helper.make_node("Add", [b3, r1], ["add"], name="add"))
    c = conv_bn("add", "head", 16, 32, 3, 2)
    if not linear_head:
        c = relu(c)
    nodes.append(helper.make_node("MaxPool", [c], ["pool"], name="pool", kernel_shape=[2, 2],
                                  strides=[2, 2]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"], name="flat", axis=1))
    w = rng.normal(0.0, np.sqrt(1.0 / 288), (288, 10))
    nodes.append(helper.make_node("Gemm", ["flat", init("fc_w", w),
                                           init("fc_b", np.zeros(10))], ["output"], name="fc"))
    g = helper.make_graph(
        nodes, "linear_bottleneck",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, sys.argv[-1])


if __name__ == "__main__":
    main()
