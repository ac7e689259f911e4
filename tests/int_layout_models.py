#!/usr/bin/env python3
"""int_layout_models.py - small float models whose layout ops meet the int export,
for tests/test_int_layout.sh.

    int_layout_models.py OUTDIR

Writes into OUTDIR:
  fp16.onnx    a float16 model (input, weights and output in float16):
               x [N, 3, 8, 8] -> Conv 3x3 -> Relu -> GlobalAveragePool -> Flatten
               -> Gemm -> [N, 5]; qatconv writes its exports with a Cast of the
               input to float32 before the first Conv.
  conv1d.onnx  1-D convolutions written as 2-D ones (as tf2onnx writes Conv1D):
               x [N, 3, 16] -> Unsqueeze(2) -> Conv 1x3 -> Squeeze(2) -> Add bias
               [4, 1] -> Relu -> Unsqueeze(2) -> Conv 1x3 -> Reshape [0, 4, 4, 4]
               -> Relu -> Flatten -> Gemm -> [N, 5]: integer terms with per-channel
               scales through a Squeeze and a Reshape that keep the channel axis.
  mix.onnx     x [N, 3, 4, 4] -> Conv 3x3 -> Reshape [0, 8, 2, 4] -> Relu -> Flatten
               -> Gemm -> [N, 5]: a Reshape that mixes channels (refused).
Weights come from a fixed seed.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(5)


def weight(shape, fan_in, dtype=np.float32):
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(dtype)


def save(path, nodes, inits, x, y):
    graph = helper.make_graph(nodes, os.path.basename(path), [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def fp16_model(path):
    h = np.float16
    inits = [numpy_helper.from_array(weight((4, 3, 3, 3), 27, h), "c_w"),
             numpy_helper.from_array(np.full(4, 0.05, h), "c_b"),
             numpy_helper.from_array(weight((5, 4), 4, h), "fc_w"),
             numpy_helper.from_array(np.zeros(5, h), "fc_b")]
    nodes = [helper.make_node("Conv", ["x", "c_w", "c_b"], ["c"], name="conv",
                              kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1)]
    save(path, nodes, inits,
         helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["N", 3, 8, 8]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["N", 5]))


def conv1d_model(path):
    i64 = np.int64
    inits = [numpy_helper.from_array(weight((4, 3, 1, 3), 9), "c1_w"),
             numpy_helper.from_array(np.array([2], i64), "ax2"),
             numpy_helper.from_array(rng.normal(0, 0.1, (4, 1)).astype(np.float32), "c1_b"),
             numpy_helper.from_array(weight((4, 4, 1, 3), 12), "c2_w"),
             numpy_helper.from_array(np.full(4, 0.1, np.float32), "c2_b"),
             numpy_helper.from_array(np.array([0, 4, 4, 4], i64), "shape444"),
             numpy_helper.from_array(weight((5, 64), 64), "fc_w"),
             numpy_helper.from_array(np.zeros(5, np.float32), "fc_b")]
    nodes = [helper.make_node("Unsqueeze", ["x", "ax2"], ["x4"], name="expand1"),
             helper.make_node("Conv", ["x4", "c1_w"], ["c1"], name="conv1",
                              kernel_shape=[1, 3], pads=[0, 1, 0, 1]),
             helper.make_node("Squeeze", ["c1", "ax2"], ["s1"], name="squeeze1"),
             helper.make_node("Add", ["s1", "c1_b"], ["a1"], name="bias1"),
             helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
             helper.make_node("Unsqueeze", ["r1", "ax2"], ["e2"], name="expand2"),
             helper.make_node("Conv", ["e2", "c2_w", "c2_b"], ["c2"], name="conv2",
                              kernel_shape=[1, 3], pads=[0, 1, 0, 1]),
             helper.make_node("Reshape", ["c2", "shape444"], ["h2"], name="reshape2"),
             helper.make_node("Relu", ["h2"], ["r2"], name="relu2"),
             helper.make_node("Flatten", ["r2"], ["f"], name="flatten", axis=1),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1)]
    save(path, nodes, inits,
         helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5]))


def mix_model(path):
    inits = [numpy_helper.from_array(weight((4, 3, 3, 3), 27), "c_w"),
             numpy_helper.from_array(np.zeros(4, np.float32), "c_b"),
             numpy_helper.from_array(np.array([0, 8, 2, 4], np.int64), "shape824"),
             numpy_helper.from_array(weight((5, 64), 64), "fc_w"),
             numpy_helper.from_array(np.zeros(5, np.float32), "fc_b")]
    nodes = [helper.make_node("Conv", ["x", "c_w", "c_b"], ["c"], name="conv",
                              kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Reshape", ["c", "shape824"], ["h"], name="mixing_reshape"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten", axis=1),
             helper.make_node("Gemm", ["f", "fc_w", "fc_b"], ["y"], name="fc", transB=1)]
    save(path, nodes, inits,
         helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5]))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    fp16_model(os.path.join(out, "fp16.onnx"))
    conv1d_model(os.path.join(out, "conv1d.onnx"))
    mix_model(os.path.join(out, "mix.onnx"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
