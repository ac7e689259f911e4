"""int_model_builder.py - the graph builder of the small float Fashion-MNIST models of the
int export tests (tests/int_zp_model.py, tests/int_concat_model.py).

A Builder collects the initializers and nodes of one model: Conv layers He-initialized
from its seeded generator (weights N(0, 2/fan_in), zero biases), identity BatchNorms
(scale 1, bias 0, mean 0, variance 1), ReLUs, any other node, and the Gemm head to the
10 classes (weights N(0, 1/C)).  save() writes it as an opset-13 model with input
[N, 1, 28, 28] and output [N, 10] after onnx.checker's full check.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.inits = []
        self.nodes = []

    def init(self, name, a, dt=np.float32):
        """Adds the initializer NAME = a (as dt); returns NAME."""
        self.inits.append(numpy_helper.from_array(np.asarray(a).astype(dt), name))
        return name

    def node(self, op, ins, name, **kw):
        """Adds node NAME (op, inputs ins, attributes kw) with one output named NAME."""
        self.nodes.append(helper.make_node(op, ins, [name], name=name, **kw))
        return name

    def conv(self, x, name, cin, cout, k, stride=1):
        """A k x k Conv (padding k // 2) from cin to cout channels; returns its output."""
        w = self.rng.normal(0.0, np.sqrt(2.0 / (cin * k * k)), (cout, cin, k, k))
        p = k // 2
        return self.node("Conv", [x, self.init(name + "_w", w),
                                  self.init(name + "_b", np.zeros(cout))],
                         name, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[p, p, p, p])

    def bn(self, x, c):
        """An identity BatchNormalization of c channels on x, named x + "_bn"."""
        name = x + "_bn"
        return self.node("BatchNormalization",
                         [x, self.init(name + "_scale", np.ones(c)),
                          self.init(name + "_bias", np.zeros(c)),
                          self.init(name + "_mean", np.zeros(c)),
                          self.init(name + "_var", np.ones(c))], name)

    def relu(self, x):
        """A Relu on x, named x + "_relu"."""
        return self.node("Relu", [x], x + "_relu")

    def gemm(self, x, c):
        """The head: Gemm fc from c features to the graph output "output" [N, 10]."""
        w = self.rng.normal(0.0, np.sqrt(1.0 / c), (c, 10))
        self.nodes.append(helper.make_node(
            "Gemm", [x, self.init("fc_w", w), self.init("fc_b", np.zeros(10))], ["output"],
            name="fc"))

    def save(self, graph_name, path):
        """Checks the model (onnx.checker, full check) and writes it to path."""
        g = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
            self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 7
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, path)
