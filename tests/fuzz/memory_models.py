#!/usr/bin/env python3
"""memory_models.py - writes the memory-limit regression models (issue 12).

The fuzzer found small models that declare many large intermediates, each
under the planner's 4 GiB cap on one tensor, so that planning them at batch 1
allocated 6-14 GB.  These models rebuild that class; each file is a few KB.

  regress/memory-folded-1tib.onnx     ConstantOfShape/Add chain folded at plan
                                      time: 281 tensors of 3.75 GiB (1.0 TiB)
  regress/memory-runtime-1tib.onnx    Resize of a 32x32 input to 32000x32000,
                                      then a Relu chain: 281 x 3.8 GiB (1.0 TiB)
  regress/memory/memory-folded-13gib.onnx   the same folds, 4 x 3.3 GiB
  regress/memory/memory-resize-6gib.onnx    Resize, Relu, Add: 3 x 2.0 GiB
  regress/memory/memory-batch.onnx    [N,1,28,28] -> Resize x8 -> 350 Relus ->
                                      pool -> Gemm [N,10]: 68 MiB at batch 1,
                                      about 1 TiB at --batch 16384

The 1 TiB models sit in regress/ itself: no machine has that much, so
`qatconv info` fails on them everywhere (tests/test_failures.sh, and they seed
the fuzzer).  The others need an explicit --max-memory to fail and are run by
tests/test_memory.sh.  Usage: python3 tests/fuzz/memory_models.py [DIR]
(DIR defaults to tests/fuzz/regress next to this script).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


def save(model, path):
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def make_model(graph):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="qatconv-memory-regress")
    m.ir_version = 8
    return m


def folded_chain(n_const, elems, name):
    """c_i = ConstantOfShape([elems]); s_i = s_(i-1) + c_i (all folded);
    y = x + s (runtime).  2 * n_const tensors of elems floats."""
    shape = numpy_helper.from_array(np.array([elems], dtype=np.int64), "shape")
    zero = helper.make_tensor("value", TensorProto.FLOAT, [1], [0.5])
    nodes = []
    acc = None
    for i in range(n_const):
        c = f"c{i}"
        nodes.append(helper.make_node("ConstantOfShape", ["shape"], [c], name=f"cos{i}",
                                      value=zero))
        if acc is None:
            acc = c
        else:
            nodes.append(helper.make_node("Add", [acc, c], [f"s{i}"], name=f"add{i}"))
            acc = f"s{i}"
    nodes.append(helper.make_node("Add", ["x", acc], ["y"], name="out"))
    g = helper.make_graph(nodes, name,
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [elems])],
                          initializer=[shape])
    return make_model(g)


def resize_chain(side, scale, n_relu, add, name):
    """x [1,1,side,side] -> Resize x scale -> n_relu Relus (-> Add of the last
    two)."""
    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], dtype=np.float32),
                                     "scales")
    out = side * scale
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["r"], name="resize",
                              mode="nearest")]
    prev = "r"
    for i in range(n_relu):
        nodes.append(helper.make_node("Relu", [prev], [f"relu{i}"], name=f"relu{i}"))
        prev = f"relu{i}"
    if add:
        nodes.append(helper.make_node("Add", ["r", prev], ["y"], name="add"))
        prev = "y"
    g = helper.make_graph(nodes, name,
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                         [1, 1, side, side])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT,
                                                         [1, 1, out, out])],
                          initializer=[scales])
    return make_model(g)


def batch_model(n_relu):
    """A Fashion-MNIST classifier whose activations grow with the batch:
    [N,1,28,28] -> Resize x8 [N,1,224,224] -> n_relu Relus -> global average
    pool -> Flatten -> Gemm [N,10]."""
    scales = numpy_helper.from_array(np.array([1, 1, 8, 8], dtype=np.float32), "scales")
    w = numpy_helper.from_array(np.linspace(-1, 1, 10, dtype=np.float32).reshape(1, 10), "W")
    b = numpy_helper.from_array(np.zeros(10, dtype=np.float32), "B")
    nodes = [helper.make_node("Resize", ["input", "", "scales"], ["big"], name="resize",
                              mode="nearest")]
    prev = "big"
    for i in range(n_relu):
        nodes.append(helper.make_node("Relu", [prev], [f"relu{i}"], name=f"relu{i}"))
        prev = f"relu{i}"
    nodes += [helper.make_node("GlobalAveragePool", [prev], ["pool"], name="pool"),
              helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
              helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], name="fc")]
    g = helper.make_graph(nodes, "memory_batch",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                         ["N", 1, 28, 28])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                                         ["N", 10])],
                          initializer=[scales, w, b])
    return make_model(g)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "regress")
    gib = 1 << 30
    # 3.75 GiB of floats per tensor, 141 constants + 140 sums = 281 tensors
    save(folded_chain(141, (15 * gib // 4) // 4, "memory_folded_1tib"),
         os.path.join(out, "memory-folded-1tib.onnx"))
    # 32000^2 floats = 3.8 GiB: the Resize output and 280 Relus
    save(resize_chain(32, 1000, 280, False, "memory_runtime_1tib"),
         os.path.join(out, "memory-runtime-1tib.onnx"))
    # 3.3 GiB of floats: c0, c1, s1 = c0 + c1, y = x + s1
    save(folded_chain(2, 885_000_000, "memory_folded_13gib"),
         os.path.join(out, "memory", "memory-folded-13gib.onnx"))
    # 23168^2 floats = 2.0 GiB: Resize output, one Relu, the Add
    save(resize_chain(32, 724, 1, True, "memory_resize_6gib"),
         os.path.join(out, "memory", "memory-resize-6gib.onnx"))
    save(batch_model(350), os.path.join(out, "memory", "memory-batch.onnx"))


if __name__ == "__main__":
    main()
