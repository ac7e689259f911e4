#!/usr/bin/env python3
"""int_zp_model.py - small float Fashion-MNIST models for tests/test_int_concat_zp.sh: pooling
and channel splits of signed (zero-point) levels in the int export.

    int_zp_model.py avgpool OUT.onnx
    int_zp_model.py split OUT.onnx
    int_zp_model.py pending OUT.onnx
    int_zp_model.py lrn OUT.onnx

avgpool: input [N, 1, 28, 28] -> Conv 3x3/2 -> BN (b1) -> AveragePool 3x3/1 pad 1
(count_include_pad=0: the border windows average fewer values) (p1) -> Conv 1x1 -> BN (b2)
-> AveragePool 3x3/2 pad 1 count_include_pad=1 (p2) -> Conv 3x3 -> Relu (r3) ->
AveragePool 2x2/2 ceil_mode=1 on 7x7 (p3: a last window of one column/row) -> Conv 1x1 ->
Relu -> ReduceMean over axes 2, 3 (torchvision's x.mean([2, 3]), with its own quantizer)
-> Gemm -> output [N, 10].  The BatchNorm outputs are linear (signed quantizers), each
pool's output gets its own quantizer.
split: input -> Conv 3x3/2 -> Relu (r1) -> two Slices along the channels (ShuffleNet's
channel split, as torch exports x.chunk(2, dim=1)): h0 = r1[:, 0:4], h1 = r1[:, 4:8]; h1
-> Conv 1x1 -> BN (signed quantizer); a third Slice r1[:, 1:8:2] -> Concat (h0, the BN,
the odd channels: unsigned and signed levels of different scales) -> Conv 3x3/2 -> Relu
-> Gather of channels [3, 0, 2, 7, 5, 1] -> Conv 1x1 -> Relu -> GlobalAveragePool ->
Flatten -> Gemm.
pending: input -> Conv 3x3/2 -> BN -> Slice of channels 1:8:2 -> Relu (sl_relu) -> Conv
3x3 -> BN -> Gather of channels [7, 0, 3, 5, 5] -> Relu (g_relu) -> Conv 3x3/2 -> Relu ->
GlobalAveragePool -> Flatten -> Gemm: the Slice and the Gather select channels of values
no quantizer has made levels yet (per-channel integer terms).
lrn: input -> Conv 3x3/2 -> Relu -> LRN -> MaxPool 2x2 -> Conv 3x3 -> Relu ->
GlobalAveragePool -> Flatten -> Gemm (AlexNet's LRN before a pooling layer).
Weights are He-initialized from a fixed seed, BatchNorm statistics are the identity
(tests/int_model_builder.py).
"""
import sys

sys.dont_write_bytecode = True  # no tests/__pycache__ in the source tree
import numpy as np

from int_model_builder import Builder

b = Builder(5)


def head(x, c, mean=False):
    if mean:
        x = b.node("ReduceMean", [x], "mean", axes=[2, 3], keepdims=0)
    else:
        x = b.node("GlobalAveragePool", [x], "gap")
        x = b.node("Flatten", [x], "flat", axis=1)
    b.gemm(x, c)


def avgpool():
    b1 = b.bn(b.conv("input", "c1", 1, 8, 3, 2), 8)
    p1 = b.node("AveragePool", [b1], "p1", kernel_shape=[3, 3], strides=[1, 1],
                pads=[1, 1, 1, 1], count_include_pad=0)
    b2 = b.bn(b.conv(p1, "c2", 8, 8, 1), 8)
    p2 = b.node("AveragePool", [b2], "p2", kernel_shape=[3, 3], strides=[2, 2],
                pads=[1, 1, 1, 1], count_include_pad=1)
    r3 = b.relu(b.conv(p2, "c3", 8, 16, 3))
    p3 = b.node("AveragePool", [r3], "p3", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    head(b.relu(b.conv(p3, "c4", 16, 16, 1)), 16, mean=True)


def channel_slice(x, name, lo, hi, step=1):
    return b.node("Slice", [x, b.init(name + "_lo", [lo], np.int64),
                            b.init(name + "_hi", [hi], np.int64),
                            b.init(name + "_ax", [1], np.int64),
                            b.init(name + "_st", [step], np.int64)], name)


def split():
    r1 = b.relu(b.conv("input", "c1", 1, 8, 3, 2))
    h0 = channel_slice(r1, "h0", 0, 4)
    h1 = channel_slice(r1, "h1", 4, 8)
    n = b.bn(b.conv(h1, "c2", 4, 4, 1), 4)
    odd = channel_slice(r1, "odd", 1, 8, 2)
    cat = b.node("Concat", [h0, n, odd], "concat", axis=1)
    r3 = b.relu(b.conv(cat, "c3", 12, 8, 3, 2))
    g = b.node("Gather", [r3, b.init("pick", [3, 0, 2, 7, 5, 1], np.int64)], "gather", axis=1)
    head(b.relu(b.conv(g, "c4", 6, 16, 1)), 16)


def pending():
    b1 = b.bn(b.conv("input", "c1", 1, 8, 3, 2), 8)
    r1 = b.relu(channel_slice(b1, "sl", 1, 8, 2))
    b2 = b.bn(b.conv(r1, "c2", 4, 8, 3), 8)
    r2 = b.relu(b.node("Gather", [b2, b.init("pick", [7, 0, 3, 5, 5], np.int64)], "g", axis=1))
    head(b.relu(b.conv(r2, "c3", 5, 16, 3, 2)), 16)


def lrn():
    r1 = b.relu(b.conv("input", "c1", 1, 8, 3, 2))
    n = b.node("LRN", [r1], "lrn", size=3)
    p = b.node("MaxPool", [n], "pool", kernel_shape=[2, 2], strides=[2, 2])
    head(b.relu(b.conv(p, "c2", 8, 16, 3)), 16)


def main():
    {"avgpool": avgpool, "split": split, "pending": pending, "lrn": lrn}[sys.argv[1]]()
    b.save("int_zp_" + sys.argv[1], sys.argv[2])


if __name__ == "__main__":
    main()
