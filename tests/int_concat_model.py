#!/usr/bin/env python3
"""int_concat_model.py - a small float Fashion-MNIST model whose Concat joins two ReLU
branches (a SqueezeNet fire module in miniature), for the int export test.

    int_concat_model.py OUT.onnx

input [N, 1, 28, 28] -> Conv 3x3/2 -> Relu -> { Conv 1x1 -> Relu, Conv 3x3 -> Relu }
-> Concat (axis 1) -> Conv 3x3/2 -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> output
[N, 10].  Weights are He-initialized from a fixed seed; a recipe that quantizes every
Relu gives the two concatenated branches their own activation quantizers, and so
(after training) two different scales.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(11)
inits = []
nodes = []


def conv(x, name, cin, cout, k, stride=1):
    w = rng.normal(0.0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k)).astype(np.float32)
    inits.append(numpy_helper.from_array(w, name + "_w"))
    inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), name + "_b"))
    p = k // 2
    nodes.append(helper.make_node("Conv", [x, name + "_w", name + "_b"], [name], name=name,
                                  kernel_shape=[k, k], strides=[stride, stride],
                                  pads=[p, p, p, p]))
    return relu(name)


def relu(x):
    nodes.append(helper.make_node("Relu", [x], [x + "_relu"], name=x + "_relu"))
    return x + "_relu"


def main():
    stem = conv("input", "stem", 1, 8, 3, 2)
    a = conv(stem, "expand1x1", 8, 8, 1)
    b = conv(stem, "expand3x3", 8, 8, 3)
    nodes.append(helper.make_node("Concat", [a, b], ["concat"], name="concat", axis=1))
    c = conv("concat", "head", 16, 16, 3, 2)
    nodes.append(helper.make_node("GlobalAveragePool", [c], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flat", axis=1))
    w = rng.normal(0.0, np.sqrt(1.0 / 16), (16, 10)).astype(np.float32)
    inits.append(numpy_helper.from_array(w, "fc_w"))
    inits.append(numpy_helper.from_array(np.zeros(10, np.float32), "fc_b"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["output"], name="fc"))
    g = helper.make_graph(
        nodes, "concat_branches",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, sys.argv[1])


if __name__ == "__main__":
    main()
