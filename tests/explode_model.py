#!/usr/bin/env python3
"""explode_model.py OUT - writes a model whose gradients overflow float32 in the
first backward (tests/test_failures.sh, tests/test_cuda_emu.sh): a Conv with a
zero weight, so every one of the 20 BatchNormalization layers after it sees a
batch variance of 0 and multiplies the gradient by 1/sqrt(eps) = 316 in the
backward; 316^k > 3.4e38 after k = 16 from the output, so conv3's weight
gradient is the first NaN.  Input [N,1,28,28] (Fashion-MNIST), 10 classes."""
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper as h, numpy_helper as nh
nodes, inits = [], []
def init(name, a):
    inits.append(nh.from_array(np.asarray(a, np.float32), name))
init("w0", np.zeros((1, 1, 1, 1)))
nodes.append(h.make_node("Conv", ["x", "w0"], ["c0"], name="conv0"))
for i in range(1, 21):
    for p, v in (("g", 1.0), ("b", 0.0), ("m", 0.0), ("v", 1.0)):
        init("%s%d" % (p, i), [v])
    nodes.append(h.make_node("BatchNormalization", ["c%d" % (i - 1)] +
                             ["%s%d" % (p, i) for p in "gbmv"], ["n%d" % i], name="bn%d" % i))
    init("w%d" % i, np.ones((1, 1, 1, 1)))
    nodes.append(h.make_node("Conv", ["n%d" % i, "w%d" % i], ["c%d" % i], name="conv%d" % i))
nodes.append(h.make_node("Flatten", ["c20"], ["f"], name="flatten"))
init("wf", (np.arange(7840).reshape(784, 10) % 7 - 3) * 0.01)
init("bf", np.zeros(10))
nodes.append(h.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc"))
g = h.make_graph(nodes, "explode", [h.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             ["N", 1, 28, 28])],
                 [h.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)], ir_version=8), sys.argv[1])
