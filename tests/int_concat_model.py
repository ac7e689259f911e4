#!/usr/bin/env python3
"""int_concat_model.py - a small float Fashion-MNIST model whose Concat joins two ReLU
branches (a SqueezeNet fire module in miniature), for the int export test.

    int_concat_model.py OUT.onnx

input [N, 1, 28, 28] -> Conv 3x3/2 -> Relu -> { Conv 1x1 -> Relu, Conv 3x3 -> Relu }
-> Concat (axis 1) -> Conv 3x3/2 -> Relu -> GlobalAveragePool -> Flatten -> Gemm -> output
[N, 10].  Weights are He-initialized from a fixed seed (tests/int_model_builder.py); a recipe that quantizes every
Relu gives the two concatenated branches their own activation quantizers, and so
(after training) two different scales.
"""
import sys

sys.dont_write_bytecode = True  # no tests/__pycache__ in the source tree
from int_model_builder import Builder


def main():
    b = Builder(11)
    stem = b.relu(b.conv("input", "stem", 1, 8, 3, 2))
    e1 = b.relu(b.conv(stem, "expand1x1", 8, 8, 1))
    e3 = b.relu(b.conv(stem, "expand3x3", 8, 8, 3))
    b.node("Concat", [e1, e3], "concat", axis=1)
    c = b.relu(b.conv("concat", "head", 16, 16, 3, 2))
    b.node("GlobalAveragePool", [c], "gap")
    b.node("Flatten", ["gap"], "flat", axis=1)
    b.gemm("flat", 16)
    b.save("concat_branches", sys.argv[1])


if __name__ == "__main__":
    main()
