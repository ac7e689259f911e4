#!/usr/bin/python3
"""gen_fixtures.py - regenerates the per-op ONNX fixtures under testdata/<name>_op<N>/.

Usage:
    /usr/bin/python3 scripts/gen_fixtures.py [--out testdata] [--python python3] [--only SUBSTR]

Two phases, because PyTorch and ONNX Runtime usually live in different interpreters here:
  1. export (needs torch; Debian python3-torch): every small PyTorch model below is exported with
     torch.onnx.export at opsets 11, 13 and 17 (eval mode, dynamic batch axis) to
     <out>/<name>_op<N>/model.onnx; random batch-2 inputs (fixed seed) and PyTorch's outputs are
     staged as .npy files.
  2. oracle (needs onnx + onnxruntime; run in-process if importable, else re-run under --python
     with --phase oracle): builds the hand-made onnx.helper models (ops and opsets torch 1.13 does
     not emit), checks every model with onnx.checker (full_check), runs ONNX Runtime (one thread)
     and writes test_data_set_0/input_K.pb and output_K.pb (TensorProto, backend-test layout).
     The outputs are ORT's; for exported models they are also compared against PyTorch's.
The oracle phase finally checks and runs testdata/*.onnx (the Fashion-MNIST models) as well.
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np

OPSETS = (11, 13, 17)
BATCH = 2
SEED = 1234


def case_rng(name):
    return np.random.default_rng(SEED + zlib.crc32(name.encode()))


# ---------------------------------------------------------------------------------------------
# Phase 1: PyTorch models and export
# ---------------------------------------------------------------------------------------------

def torch_models():
    """Returns [(name, module, [input shapes without batch])]; every op of src/ops/ops.def
    that torch 1.13 emits at opsets 11..17 appears in at least one model."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Lambda(nn.Module):
        def __init__(self, fn, *mods):
            super().__init__()
            self.fn = fn
            self.mods = nn.ModuleList(mods)

        def forward(self, *xs):
            return self.fn(self.mods, *xs)

    def seq(*mods):
        return nn.Sequential(*mods)

    class TinyMBV2(nn.Module):
        """stem conv-bn-relu6, inverted residual (expand, depthwise, project, add), gap, fc."""

        def __init__(self):
            super().__init__()
            self.stem = seq(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
            self.expand = seq(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
            self.dw = seq(nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False), nn.BatchNorm2d(16),
                          nn.ReLU6())
            self.project = seq(nn.Conv2d(16, 8, 1, bias=False), nn.BatchNorm2d(8))
            self.head = seq(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                            nn.Linear(8, 5))

        def forward(self, x):
            x = self.stem(x)
            x = x + self.project(self.dw(self.expand(x)))
            return self.head(x)

    class TinySE(nn.Module):
        """squeeze-excitation: mean over H,W (keepdim), 1x1 convs, hardsigmoid gate, hardswish."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 8, 3, padding=1)
            self.fc1 = nn.Conv2d(8, 4, 1)
            self.fc2 = nn.Conv2d(4, 8, 1)

        def forward(self, x):
            x = F.hardswish(self.conv(x))
            s = x.mean((2, 3), keepdim=True)
            s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
            return x * s

    m = []
    m.append(("conv_basic", seq(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()), [(3, 8, 8)]))
    m.append(("conv_groups", seq(
        nn.Conv2d(4, 8, 3, stride=2, padding=(1, 2), groups=2),
        nn.Conv2d(8, 4, (3, 2), stride=(1, 2), padding=2, dilation=2, bias=False)),
        [(4, 9, 9)]))
    m.append(("conv_depthwise", seq(nn.Conv2d(4, 4, 3, padding=1, groups=4),
                                    nn.Conv2d(4, 6, 1)), [(4, 8, 8)]))
    m.append(("conv_transpose", seq(
        nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(3, 2, 2, stride=2, bias=False)), [(4, 5, 5)]))
    m.append(("conv_transpose_groups", seq(
        nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2, dilation=2)), [(4, 5, 5)]))
    m.append(("gemm", seq(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)), [(16,)]))
    m.append(("matmul_weight", seq(nn.Linear(6, 4)), [(5, 6)]))
    m.append(("matmul_2in", Lambda(lambda _, a, b: (torch.matmul(a, b),
                                                     torch.tanh(torch.matmul(a, b)))),
              [(3, 4), (4, 5)]))
    m.append(("batchnorm", seq(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3, bias=False),
                               nn.BatchNorm2d(4), nn.ReLU()), [(3, 8, 8)]))
    m.append(("act_relu", seq(nn.ReLU()), [(3, 4, 4)]))
    m.append(("act_relu6", seq(nn.ReLU6()), [(3, 4, 4)]))
    m.append(("act_clamp", Lambda(lambda _, x: torch.clamp(x, -0.5, 0.7)), [(3, 4, 4)]))
    m.append(("act_leaky_relu", seq(nn.LeakyReLU(0.1)), [(3, 4, 4)]))
    m.append(("act_sigmoid", seq(nn.Sigmoid()), [(3, 4, 4)]))
    m.append(("act_tanh", seq(nn.Tanh()), [(3, 4, 4)]))
    m.append(("act_hardsigmoid", seq(nn.Hardsigmoid()), [(3, 4, 4)]))
    m.append(("act_hardswish", seq(nn.Hardswish()), [(3, 4, 4)]))
    scale = torch.tensor([0.5, -1.5, 2.0]).reshape(1, 3, 1, 1)
    m.append(("eltwise_const", Lambda(
        lambda _, x: ((x * 2.5 + 1.0) - 0.5) / 4.0 * scale - scale / 3.0), [(3, 4, 4)]))
    m.append(("eltwise_2in", Lambda(lambda _, a, b: (a + b, a * b - a)),
              [(3, 4, 4), (3, 4, 4)]))
    m.append(("eltwise_broadcast", Lambda(lambda _, a, b: a + b), [(3, 4, 4), (3, 1, 1)]))
    m.append(("residual", Lambda(
        lambda ms, x: F.relu(ms[1](F.relu(ms[0](x))) + x),
        nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)), [(4, 6, 6)]))
    m.append(("pool_max", seq(nn.MaxPool2d(3, stride=2, padding=1)), [(3, 7, 7)]))
    m.append(("pool_max_ceil", seq(nn.MaxPool2d(2, stride=2, ceil_mode=True)), [(3, 7, 7)]))
    m.append(("pool_avg_incl", seq(nn.AvgPool2d(3, stride=2, padding=1,
                                                count_include_pad=True)), [(3, 7, 7)]))
    m.append(("pool_avg_excl", seq(nn.AvgPool2d(3, stride=2, padding=1,
                                                count_include_pad=False)), [(3, 7, 7)]))
    m.append(("pool_avg_plain", seq(nn.AvgPool2d(2)), [(3, 6, 6)]))
    m.append(("global_avgpool", seq(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1),
                                    nn.Flatten()), [(3, 6, 6)]))
    m.append(("global_maxpool", seq(nn.AdaptiveMaxPool2d(1)), [(3, 5, 5)]))
    m.append(("reduce_mean", Lambda(lambda _, x: x.mean((2, 3))), [(3, 5, 4)]))
    m.append(("reduce_mean_keepdim", Lambda(lambda _, x: x.mean((2, 3), keepdim=True)),
              [(3, 5, 4)]))
    m.append(("flatten", seq(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 5)),
              [(3, 6, 6)]))
    m.append(("view_dynamic", Lambda(lambda ms, x: ms[1](ms[0](x).view(x.size(0), -1)),
                                     nn.Conv2d(3, 4, 3), nn.Linear(4 * 4 * 4, 5)), [(3, 6, 6)]))
    m.append(("reshape_dynamic", Lambda(lambda _, x: x.reshape(x.shape[0], 4, -1)),
              [(2, 4, 6)]))
    m.append(("squeeze_unsqueeze", Lambda(lambda _, x: x.squeeze(2).unsqueeze(1)),
              [(3, 1, 4)]))
    m.append(("transpose", Lambda(lambda _, x: x.permute(0, 2, 3, 1)), [(3, 4, 5)]))
    m.append(("concat", Lambda(lambda ms, x: torch.cat([ms[0](x), F.relu(ms[1](x)), x], 1),
                               nn.Conv2d(3, 2, 3, padding=1), nn.Conv2d(3, 4, 1)), [(3, 5, 5)]))
    m.append(("concat_axis2", Lambda(lambda _, a, b: torch.cat([a, b], 2)),
              [(3, 2, 4), (3, 3, 4)]))
    m.append(("pad_const", Lambda(lambda _, x: F.pad(x, (1, 2, 0, 1), value=0.5)),
              [(3, 4, 4)]))
    m.append(("pad_zero_conv", Lambda(lambda ms, x: ms[0](F.pad(x, (1, 1, 1, 1))),
                                      nn.Conv2d(3, 2, 3)), [(3, 4, 4)]))
    m.append(("softmax", seq(nn.Linear(8, 6), nn.Softmax(dim=1)), [(8,)]))
    m.append(("log_softmax", seq(nn.Linear(8, 6), nn.LogSoftmax(dim=1)), [(8,)]))
    m.append(("resize_nearest", Lambda(lambda _, x: F.interpolate(x, scale_factor=2,
                                                                  mode="nearest")), [(2, 3, 4)]))
    m.append(("resize_bilinear", Lambda(lambda _, x: F.interpolate(
        x, scale_factor=2, mode="bilinear", align_corners=False)), [(2, 3, 4)]))
    m.append(("resize_bilinear_ac", Lambda(lambda _, x: F.interpolate(
        x, scale_factor=2, mode="bilinear", align_corners=True)), [(2, 3, 4)]))
    m.append(("resize_size", Lambda(lambda _, x: F.interpolate(x, size=(6, 9),
                                                               mode="nearest")), [(2, 3, 3)]))
    m.append(("upsample_module", seq(nn.Conv2d(2, 2, 1), nn.Upsample(scale_factor=2)),
              [(2, 3, 3)]))
    m.append(("tiny_mbv2", TinyMBV2(), [(3, 8, 8)]))
    m.append(("tiny_se", TinySE(), [(4, 5, 5)]))
    return m


def randomize_bn(module, rng):
    """Non-trivial BN parameters/statistics (fresh ones are 1/0 and torch would dedupe them)."""
    import torch
    for mod in module.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            c = mod.num_features
            with torch.no_grad():
                mod.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, c).astype(np.float32)))
                mod.bias.copy_(torch.from_numpy(rng.normal(0, 0.2, c).astype(np.float32)))
                mod.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.2, c).astype(np.float32)))
                mod.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, c).astype(np.float32)))


def phase_export(out, stage, only):
    import warnings
    import torch
    torch.manual_seed(SEED)
    n = 0
    for name, module, shapes in torch_models():
        if only and only not in name:
            continue
        rng = case_rng(name)
        randomize_bn(module, rng)
        module.eval()
        ins = [rng.standard_normal((BATCH,) + s).astype(np.float32) for s in shapes]
        dummies = tuple(torch.from_numpy(rng.standard_normal((3,) + s).astype(np.float32))
                        for s in shapes)
        with torch.no_grad():
            outs = module(*[torch.from_numpy(x) for x in ins])
        if not isinstance(outs, tuple):
            outs = (outs,)
        in_names = ["input"] if len(shapes) == 1 else ["input_%d" % i for i in range(len(shapes))]
        out_names = (["output"] if len(outs) == 1 else
                     ["output_%d" % i for i in range(len(outs))])
        dyn = {k: {0: "N"} for k in in_names + out_names}
        # EVAL mode would fold BatchNormalization into Conv: keep it with PRESERVE (on a module
        # in eval mode, so BN uses running statistics).
        has_bn = any(isinstance(x, torch.nn.BatchNorm2d) for x in module.modules())
        mode = torch.onnx.TrainingMode.PRESERVE if has_bn else torch.onnx.TrainingMode.EVAL
        for opset in OPSETS:
            case = "%s_op%d" % (name, opset)
            d = os.path.join(out, case)
            sd = os.path.join(stage, case)
            os.makedirs(d, exist_ok=True)
            os.makedirs(sd, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, dummies, os.path.join(d, "model.onnx"),
                                  opset_version=opset, input_names=in_names,
                                  output_names=out_names, dynamic_axes=dyn,
                                  training=mode)
            for i, x in enumerate(ins):
                np.save(os.path.join(sd, "input_%d.npy" % i), x)
            for i, y in enumerate(outs):
                np.save(os.path.join(sd, "torch_%d.npy" % i), y.numpy())
            n += 1
    print("export: %d models" % n, flush=True)


# ---------------------------------------------------------------------------------------------
# Phase 2: hand-built models, checker, ONNX Runtime oracle
# ---------------------------------------------------------------------------------------------

def helper_models():
    """Returns [(case, ModelProto, [input arrays])] for ops/forms torch 1.13 does not emit."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    F32 = TensorProto.FLOAT

    def vi(name, shape):
        return helper.make_tensor_value_info(name, F32, shape)

    def init(name, arr):
        return numpy_helper.from_array(np.asarray(arr), name)

    def model(case, opset, nodes, inputs, outputs, inits=(), ir=None):
        g = helper.make_graph(nodes, case, inputs, outputs, initializer=list(inits))
        kw = {"opset_imports": [helper.make_opsetid("", opset)], "producer_name": "gen_fixtures"}
        m = helper.make_model(g, **kw)
        if any(not o.type.tensor_type.HasField("shape") for o in m.graph.output):
            # outputs declared without a shape: take the shapes from ONNX shape inference
            inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
            del m.graph.output[:]
            m.graph.output.extend(inferred.graph.output)
        # IR version matching the opset's release (ORT rejects IR newer than it knows, and
        # old opsets are normally paired with old IR versions).
        m.ir_version = ir if ir is not None else (3 if opset <= 8 else 4 if opset <= 10 else
                                                  7 if opset <= 13 else 8)
        if m.ir_version < 4:
            # IR 3: every initializer must also be declared as a graph input
            for t in inits:
                m.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type,
                                                                   list(t.dims)))
        return m

    res = []

    def add(case, m, shapes):
        rng = case_rng(case)
        res.append((case, m, [rng.standard_normal(s).astype(np.float32) for s in shapes]))

    N = BATCH
    for opset in (8, 13):
        case = "h_sum_op%d" % opset
        add(case, model(case, opset, [helper.make_node("Sum", ["a", "b", "c"], ["output"])],
                        [vi("a", ["N", 3, 4, 4]), vi("b", ["N", 3, 4, 4]), vi("c", [1, 3, 1, 1])],
                        [vi("output", ["N", 3, 4, 4])]),
            [(N, 3, 4, 4), (N, 3, 4, 4), (1, 3, 1, 1)])
    for mode in ("nearest", "linear"):
        case = "h_upsample_%s_op7" % mode
        add(case, model(case, 7, [helper.make_node("Upsample", ["input"], ["output"], mode=mode,
                                                   scales=[1.0, 1.0, 2.0, 3.0])],
                        [vi("input", ["N", 2, 3, 3])], [vi("output", ["N", 2, 6, 9])]),
            [(N, 2, 3, 3)])
        case = "h_upsample_%s_op9" % mode
        add(case, model(case, 9, [helper.make_node("Upsample", ["input", "scales"], ["output"],
                                                   mode=mode)],
                        [vi("input", ["N", 2, 3, 3])], [vi("output", ["N", 2, 6, 6])],
                        [init("scales", np.array([1, 1, 2, 2], np.float32))]),
            [(N, 2, 3, 3)])
    case = "h_clip_op7"
    add(case, model(case, 7, [helper.make_node("Clip", ["input"], ["output"], min=-0.3,
                                               max=0.6)],
                    [vi("input", ["N", 3, 4])], [vi("output", ["N", 3, 4])]), [(N, 3, 4)])
    case = "h_clip_min_only_op13"
    add(case, model(case, 13, [helper.make_node("Clip", ["input", "lo"], ["output"])],
                    [vi("input", ["N", 3, 4])], [vi("output", ["N", 3, 4])],
                    [init("lo", np.array(-0.2, np.float32))]), [(N, 3, 4)])
    case = "h_pad_op7"
    add(case, model(case, 7, [helper.make_node("Pad", ["input"], ["output"], mode="constant",
                                               pads=[0, 0, 1, 2, 0, 0, 2, 1], value=0.25)],
                    [vi("input", ["N", 2, 3, 3])], [vi("output", ["N", 2, 6, 6])]),
        [(N, 2, 3, 3)])
    case = "h_pad_op13"
    add(case, model(case, 13, [helper.make_node("Pad", ["input", "pads", "value"], ["output"],
                                                mode="constant")],
                    [vi("input", ["N", 2, 3, 3])], [vi("output", ["N", 2, 4, 6])],
                    [init("pads", np.array([0, 0, 0, 1, 0, 0, 1, 2], np.int64)),
                     init("value", np.array(-1.0, np.float32))]), [(N, 2, 3, 3)])
    case = "h_dropout_op7"
    add(case, model(case, 7, [helper.make_node("Dropout", ["input"], ["output"], ratio=0.3)],
                    [vi("input", ["N", 3, 4])], [vi("output", ["N", 3, 4])]), [(N, 3, 4)])
    case = "h_dropout_op13"
    add(case, model(case, 13, [helper.make_node("Dropout", ["input", "ratio"], ["output"]),
                               helper.make_node("Relu", ["output"], ["output_1"])],
                    [vi("input", ["N", 3, 4])], [vi("output_1", ["N", 3, 4])],
                    [init("ratio", np.array(0.4, np.float32))]), [(N, 3, 4)])
    case = "h_identity_op13"
    add(case, model(case, 13, [helper.make_node("Identity", ["input"], ["mid"]),
                               helper.make_node("Tanh", ["mid"], ["output"])],
                    [vi("input", ["N", 3, 4])], [vi("output", ["N", 3, 4])]), [(N, 3, 4)])
    for opset in (7, 13):
        case = "h_lrn_op%d" % opset
        add(case, model(case, opset, [helper.make_node("LRN", ["input"], ["output"], size=3,
                                                       alpha=2e-3, beta=0.75, bias=1.5)],
                        [vi("input", ["N", 5, 3, 3])], [vi("output", ["N", 5, 3, 3])]),
            [(N, 5, 3, 3)])
    rng = case_rng("h_gemm")
    case = "h_gemm_trans_op13"
    add(case, model(case, 13, [helper.make_node("Gemm", ["input", "W", "C"], ["output"],
                                                alpha=0.5, beta=2.0, transA=0, transB=1)],
                    [vi("input", ["N", 6])], [vi("output", ["N", 4])],
                    [init("W", rng.standard_normal((4, 6)).astype(np.float32)),
                     init("C", rng.standard_normal((4,)).astype(np.float32))]), [(N, 6)])
    case = "h_gemm_transA_op9"
    add(case, model(case, 9, [helper.make_node("Gemm", ["input", "W", "C"], ["output"],
                                               transA=1, transB=0)],
                    [vi("input", [6, 3])], [vi("output", [3, 4])],
                    [init("W", rng.standard_normal((6, 4)).astype(np.float32)),
                     init("C", rng.standard_normal((3, 4)).astype(np.float32))]), [(6, 3)])
    for ap in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        case = "h_conv_autopad_%s_op11" % ap.lower()
        W = case_rng(case + "W").standard_normal((3, 2, 3, 3)).astype(np.float32)
        add(case, model(case, 11, [helper.make_node("Conv", ["input", "W"], ["output"],
                                                    auto_pad=ap, strides=[2, 2])],
                        [vi("input", ["N", 2, 6, 7])], [vi("output", None)],
                        [init("W", W)]), [(N, 2, 6, 7)])
    case = "h_batchnorm_op9"
    rng = case_rng(case)
    add(case, model(case, 9, [helper.make_node("BatchNormalization",
                                               ["input", "g", "b", "m", "v"], ["output"],
                                               epsilon=1e-3)],
                    [vi("input", ["N", 3, 4, 4])], [vi("output", ["N", 3, 4, 4])],
                    [init("g", rng.uniform(0.5, 1.5, 3).astype(np.float32)),
                     init("b", rng.normal(0, 0.2, 3).astype(np.float32)),
                     init("m", rng.normal(0, 0.2, 3).astype(np.float32)),
                     init("v", rng.uniform(0.5, 2, 3).astype(np.float32))]), [(N, 3, 4, 4)])
    case = "h_resize_sizes_linear_op13"
    add(case, model(case, 13, [helper.make_node("Resize", ["input", "", "", "sizes"], ["output"],
                                                mode="linear")],
                    [vi("input", [N, 2, 3, 4])], [vi("output", [N, 2, 5, 7])],
                    [init("sizes", np.array([N, 2, 5, 7], np.int64))]), [(N, 2, 3, 4)])
    case = "h_resize_nearest_floor_op11"
    add(case, model(case, 11, [helper.make_node("Resize", ["input", "roi", "scales"], ["output"],
                                                mode="nearest", nearest_mode="floor",
                                                coordinate_transformation_mode="asymmetric")],
                    [vi("input", ["N", 2, 3, 3])], [vi("output", ["N", 2, 6, 6])],
                    [init("roi", np.zeros(0, np.float32)),
                     init("scales", np.array([1, 1, 2, 2], np.float32))]), [(N, 2, 3, 3)])
    case = "h_avgpool_op7"
    add(case, model(case, 7, [helper.make_node("AveragePool", ["input"], ["output"],
                                               kernel_shape=[3, 3], pads=[1, 0, 1, 2],
                                               count_include_pad=1)],
                    [vi("input", ["N", 2, 5, 5])], [vi("output", None)]), [(N, 2, 5, 5)])
    case = "h_maxpool_dilated_op12"
    add(case, model(case, 12, [helper.make_node("MaxPool", ["input"], ["output"],
                                                kernel_shape=[2, 2], dilations=[2, 2],
                                                strides=[1, 1])],
                    [vi("input", ["N", 2, 6, 6])], [vi("output", None)]), [(N, 2, 6, 6)])
    case = "h_flatten_axis2_op13"
    add(case, model(case, 13, [helper.make_node("Flatten", ["input"], ["output"], axis=2)],
                    [vi("input", ["N", 2, 3, 4])], [vi("output", None)]), [(N, 2, 3, 4)])
    case = "h_squeeze_attr_op7"
    add(case, model(case, 7, [helper.make_node("Squeeze", ["input"], ["mid"], axes=[1]),
                              helper.make_node("Unsqueeze", ["mid"], ["output"], axes=[3])],
                    [vi("input", ["N", 1, 3, 4])], [vi("output", None)]), [(N, 1, 3, 4)])
    case = "h_softmax_axis_op13"
    add(case, model(case, 13, [helper.make_node("Softmax", ["input"], ["output"], axis=1)],
                    [vi("input", ["N", 4, 3])], [vi("output", None)]), [(N, 4, 3)])
    case = "h_global_maxpool_op13"
    add(case, model(case, 13, [helper.make_node("GlobalMaxPool", ["input"], ["output"])],
                    [vi("input", ["N", 3, 4, 5])], [vi("output", None)]), [(N, 3, 4, 5)])
    case = "h_hardswish_op14"
    add(case, model(case, 14, [helper.make_node("HardSwish", ["input"], ["output"])],
                    [vi("input", ["N", 3, 4])], [vi("output", None)]), [(N, 3, 4)])
    case = "h_hardsigmoid_op7"
    add(case, model(case, 7, [helper.make_node("HardSigmoid", ["input"], ["output"], alpha=0.3,
                                               beta=0.4)],
                    [vi("input", ["N", 3, 4])], [vi("output", None)]), [(N, 3, 4)])
    case = "h_div_sub_init_op7"
    add(case, model(case, 7, [helper.make_node("Sub", ["input", "k"], ["mid"]),
                              helper.make_node("Div", ["mid", "k"], ["output"])],
                    [vi("input", ["N", 3, 2, 2])], [vi("output", None)],
                    [init("k", np.array([[[2.0]], [[-4.0]], [[0.5]]], np.float32))]),
        [(N, 3, 2, 2)])
    # Shape subgraph with Constant, Cast, Slice, ConstantOfShape: y = Reshape(x, [N, -1]) + 0-pad.
    case = "h_shape_chain_op13"
    nodes = [
        helper.make_node("Shape", ["input"], ["shp"]),
        helper.make_node("Constant", [], ["s0"], value=init("s0v", np.array([0], np.int64))),
        helper.make_node("Constant", [], ["s1"], value=init("s1v", np.array([1], np.int64))),
        helper.make_node("Slice", ["shp", "s0", "s1"], ["nb"]),
        helper.make_node("Cast", ["nb"], ["nbf"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["nbf"], ["nb2"], to=TensorProto.INT64),
        helper.make_node("Constant", [], ["m1"], value=init("m1v", np.array([-1], np.int64))),
        helper.make_node("Concat", ["nb2", "m1"], ["tgt"], axis=0),
        helper.make_node("Reshape", ["input", "tgt"], ["flat"]),
        helper.make_node("Constant", [], ["two"], value=init("twov", np.array([2], np.int64))),
        helper.make_node("Concat", ["nb2", "two"], ["zshape"], axis=0),
        helper.make_node("ConstantOfShape", ["zshape"], ["zeros"],
                         value=init("zv", np.array([0.5], np.float32))),
        helper.make_node("Concat", ["flat", "zeros"], ["output"], axis=1),
    ]
    add(case, model(case, 13, nodes, [vi("input", ["N", 2, 3])], [vi("output", ["N", 8])]),
        [(N, 2, 3)])
    case = "h_gather_shape_op11"
    nodes = [
        helper.make_node("Shape", ["input"], ["shp"]),
        helper.make_node("Gather", ["shp", "i0"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]),
        helper.make_node("Concat", ["n1", "c12"], ["tgt"], axis=0),
        helper.make_node("Reshape", ["input", "tgt"], ["output"]),
    ]
    add(case, model(case, 11, nodes, [vi("input", ["N", 3, 4])], [vi("output", ["N", 12])],
                    [init("i0", np.array(0, np.int64)), init("c12", np.array([12], np.int64))]),
        [(N, 3, 4)])
    res.extend(int_models(model, init))
    return res


def int_models(model, init):
    """Integer-only graphs as qatconv's integer exporter writes them (h_int_*): every
    intermediate is also a graph output, so each op is checked bit for bit against ORT."""
    from onnx import TensorProto as T, helper

    res = []
    N = BATCH

    def tvi(name, elem, shape):
        return helper.make_tensor_value_info(name, elem, shape)

    # (a) the requantization chain: float -> u8 -> ConvInteger -> int64 requant -> 4-bit u8 ->
    # MaxPool -> depthwise ConvInteger -> ReduceSum -> MatMul int32 -> float
    for opset in (14, 21):
        case = "h_int_requant_chain_op%d" % opset
        rng = np.random.default_rng(SEED + opset)
        C, C2, K = 3, 8, 5
        w1 = rng.integers(-127, 128, (C2, C, 3, 3)).astype(np.int8)
        bias = rng.integers(-2000, 2000, (1, C2, 1, 1)).astype(np.int32)
        m0 = rng.integers(1 << 14, 1 << 15, (1, C2, 1, 1)).astype(np.int64)
        shift = rng.integers(26, 29, (1, C2, 1, 1)).astype(np.int64)
        dw = rng.integers(-8, 8, (C2, 1, 3, 3)).astype(np.int8)
        fc = rng.integers(-8, 8, (C2, K)).astype(np.int8)
        inits = [
            init("qscale", np.array(1.0 / 255.0, np.float32)),
            init("qzp", np.array(5, np.uint8)),
            init("w1", w1),
            init("bias", bias),
            init("m0", m0),
            init("half", (np.int64(1) << (shift - 1)).astype(np.int64)),
            init("div", (np.int64(1) << shift).astype(np.int64)),
            init("lo", np.array(0, np.int64)),
            init("hi", np.array(15, np.int64)),
            init("zero_u8", np.array(0, np.uint8)),
            init("axes", np.array([2, 3], np.int64)),
            init("oscale", rng.uniform(0.01, 0.1, (K,)).astype(np.float32)),
            init("obias", rng.standard_normal((K,)).astype(np.float32)),
        ]
        if opset >= 21:
            # 4-bit weights: INT4 initializers widened with Cast(int8)
            inits.append(helper.make_tensor("dw4", T.INT4, dw.shape, dw.flatten().tolist()))
            inits.append(helper.make_tensor("fc4", T.INT4, fc.shape, fc.flatten().tolist()))
            pre = [helper.make_node("Cast", ["dw4"], ["dw"], to=T.INT8),
                   helper.make_node("Cast", ["fc4"], ["fc8"], to=T.INT8)]
        else:
            inits.extend([init("dw", dw), init("fc8", fc)])
            pre = []
        nodes = pre + [
            helper.make_node("QuantizeLinear", ["input", "qscale", "qzp"], ["q"]),
            helper.make_node("ConvInteger", ["q", "w1", "qzp"], ["acc"], pads=[1, 1, 1, 1]),
            helper.make_node("Add", ["acc", "bias"], ["accb"]),
            helper.make_node("Cast", ["accb"], ["acc64"], to=T.INT64),
            helper.make_node("Mul", ["acc64", "m0"], ["scaled"]),
            helper.make_node("Add", ["scaled", "half"], ["rounded"]),
            helper.make_node("Div", ["rounded", "div"], ["shifted"]),
            helper.make_node("Clip", ["shifted", "lo", "hi"], ["clipped"]),
            helper.make_node("Cast", ["clipped"], ["act"], to=T.UINT8),
            helper.make_node("MaxPool", ["act"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("ConvInteger", ["pooled", "dw", "zero_u8"], ["dwacc"],
                             pads=[1, 1, 1, 1], group=C2),
            helper.make_node("Cast", ["dwacc"], ["dw32"], to=T.INT32),
            helper.make_node("ReduceSum", ["dw32", "axes"], ["gsum"], keepdims=1),
            helper.make_node("Flatten", ["gsum"], ["flat"]),
            helper.make_node("Cast", ["fc8"], ["fc32"], to=T.INT32),
            helper.make_node("MatMul", ["flat", "fc32"], ["logits32"]),
            helper.make_node("Cast", ["logits32"], ["logitsf"], to=T.FLOAT),
            helper.make_node("Mul", ["logitsf", "oscale"], ["logits_s"]),
            helper.make_node("Add", ["logits_s", "obias"], ["output"]),
        ]
        outs = ["output", "q", "acc", "accb", "acc64", "scaled", "rounded", "shifted", "clipped",
                "act", "pooled", "dwacc", "dw32", "gsum", "flat", "logits32", "logitsf"]
        m = model(case, opset, nodes, [tvi("input", T.FLOAT, ["N", C, 8, 8])],
                  [helper.make_tensor_value_info(o, 0, None) for o in outs], inits,
                  ir=10 if opset >= 21 else None)
        res.append((case, m, [rng.uniform(0, 1, (N, C, 8, 8)).astype(np.float32)]))

    # (b) MatMulInteger u8 x int8 with a scalar a_zp and a per-column b_zp
    case = "h_int_matmulinteger_op14"
    rng = np.random.default_rng(SEED + 100)
    nodes = [helper.make_node("MatMulInteger", ["a", "b", "azp", "bzp"], ["output"])]
    inits = [init("b", rng.integers(-128, 128, (6, 4)).astype(np.int8)),
             init("azp", np.array(7, np.uint8)),
             init("bzp", np.array([0, -3, 5, 127], np.int8))]
    m = model(case, 14, nodes, [tvi("a", T.UINT8, ["N", 3, 6])],
              [helper.make_tensor_value_info("output", 0, None)], inits)
    res.append((case, m, [rng.integers(0, 256, (N, 3, 6)).astype(np.uint8)]))

    # (c) integer Div toward zero with negative operands, wrapping and saturating Casts
    case = "h_int_div_cast_op14"
    rng = np.random.default_rng(SEED + 200)
    a = rng.integers(-1000, 1000, (N, 8)).astype(np.int32)
    a[0, :4] = [300, -1, -129, 2**31 - 1]
    f = rng.uniform(-400, 400, (N, 8)).astype(np.float32)
    f[0, :8] = [np.nan, np.inf, -np.inf, 300.7, -1.5, -129.9, 3e9, 65536.5]
    nodes = [
        helper.make_node("Div", ["a", "d32"], ["div32"]),
        helper.make_node("Cast", ["a"], ["a64"], to=T.INT64),
        helper.make_node("Div", ["a64", "d64"], ["div64"]),
        helper.make_node("Sub", ["a", "d32"], ["sub32"]),
        helper.make_node("Mul", ["a64", "a64"], ["mul64"]),
        helper.make_node("Cast", ["a"], ["a_u8"], to=T.UINT8),
        helper.make_node("Cast", ["a"], ["a_i8"], to=T.INT8),
        helper.make_node("Cast", ["a"], ["a_u16"], to=T.UINT16),
        helper.make_node("Cast", ["a"], ["a_f"], to=T.FLOAT),
        helper.make_node("Cast", ["f"], ["f_u8"], to=T.UINT8),
        helper.make_node("Cast", ["f"], ["f_i8"], to=T.INT8),
        helper.make_node("Cast", ["f"], ["f_i32"], to=T.INT32),
        helper.make_node("Cast", ["f"], ["f_u32"], to=T.UINT32),
        helper.make_node("Cast", ["f"], ["f_i64"], to=T.INT64),
        helper.make_node("Cast", ["f"], ["f_u64"], to=T.UINT64),
        helper.make_node("Relu", ["a"], ["relu32"]),
        helper.make_node("Clip", ["a_i8", "lo8", "hi8"], ["clip8"]),
        helper.make_node("MaxPool", ["a_i8_4d"], ["pool_i8"], kernel_shape=[1, 2], strides=[1, 2]),
        helper.make_node("Unsqueeze", ["a_i8", "ax01"], ["a_i8_4d"]),
        helper.make_node("ReduceSum", ["a64"], ["sum_all"], keepdims=0),
    ]
    # topological order: the Unsqueeze before the MaxPool
    nodes = nodes[:-3] + [nodes[-2], nodes[-3], nodes[-1]]
    inits = [init("d32", np.array([3, -3, 7, -7, 1, -1, 1000, -2], np.int32)),
             init("d64", np.array([3, -3, 7, -7, 1, -1, 1000, -2], np.int64)),
             init("lo8", np.array(-5, np.int8)), init("hi8", np.array(9, np.int8)),
             init("ax01", np.array([0, 1], np.int64))]
    outs = ["div32", "div64", "sub32", "mul64", "a_u8", "a_i8", "a_u16", "a_f", "f_u8", "f_i8",
            "f_i32", "f_u32", "f_i64", "f_u64", "relu32", "clip8", "pool_i8", "sum_all"]
    m = model(case, 14, nodes, [tvi("a", T.INT32, ["N", 8]), tvi("f", T.FLOAT, ["N", 8])],
              [helper.make_tensor_value_info(o, 0, None) for o in outs], inits)
    res.append((case, m, [a, f]))
    return res


def write_pb(path, arr, name):
    from onnx import numpy_helper
    t = numpy_helper.from_array(arr, name)
    with open(path, "wb") as f:
        f.write(t.SerializeToString())


def run_ort(model_path, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    return sess, sess.run(None, feeds)


def oracle_case(d, ins, ref=None):
    """Checks d/model.onnx, runs ORT on ins, writes the test_data_set_0 files."""
    import onnx
    mpath = os.path.join(d, "model.onnx")
    onnx.checker.check_model(onnx.load(mpath), full_check=True)
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(mpath, so, providers=["CPUExecutionProvider"])
    inits = {t.name for t in onnx.load(mpath).graph.initializer}
    in_names = [i.name for i in sess.get_inputs() if i.name not in inits]
    out_names = [o.name for o in sess.get_outputs()]
    if len(in_names) != len(ins):
        raise RuntimeError("%s: %d inputs, %d arrays" % (mpath, len(in_names), len(ins)))
    outs = sess.run(None, dict(zip(in_names, ins)))
    td = os.path.join(d, "test_data_set_0")
    shutil.rmtree(td, ignore_errors=True)
    os.makedirs(td)
    for i, (n, x) in enumerate(zip(in_names, ins)):
        write_pb(os.path.join(td, "input_%d.pb" % i), x, n)
    worst = 0.0
    for i, (n, y) in enumerate(zip(out_names, outs)):
        if not np.all(np.isfinite(y)):
            raise RuntimeError("%s: non-finite ORT output %s" % (mpath, n))
        write_pb(os.path.join(td, "output_%d.pb" % i), y, n)
        if ref is not None:
            r = ref[i]
            if r.shape != y.shape:
                raise RuntimeError("%s: output %s shape %s, torch %s" % (mpath, n, y.shape,
                                                                           r.shape))
            err = float(np.max(np.abs(r - y))) / max(float(np.max(np.abs(r))), 1.0)
            worst = max(worst, err)
    if worst > 1e-4:
        raise RuntimeError("%s: ORT and torch differ (rel %.3g)" % (mpath, worst))
    return worst


def phase_oracle(out, stage, only):
    import onnx
    n = 0
    failures = []
    # exported models (staged by phase 1)
    if stage and os.path.isdir(stage):
        for case in sorted(os.listdir(stage)):
            sd = os.path.join(stage, case)
            ins = [np.load(p) for p in sorted(glob.glob(os.path.join(sd, "input_*.npy")))]
            ref = [np.load(p) for p in sorted(glob.glob(os.path.join(sd, "torch_*.npy")))]
            try:
                oracle_case(os.path.join(out, case), ins, ref)
                n += 1
            except Exception as e:  # report all, fail at the end
                failures.append("%s: %s" % (case, e))
    # hand-built models
    for case, m, ins in helper_models():
        if only and only not in case:
            continue
        d = os.path.join(out, case)
        os.makedirs(d, exist_ok=True)
        onnx.save(m, os.path.join(d, "model.onnx"))
        try:
            oracle_case(d, ins)
            n += 1
        except Exception as e:
            failures.append("%s: %s" % (case, e))
    # bundled whole models: checker + one ORT run
    for p in sorted(glob.glob(os.path.join(out, "*.onnx"))):
        try:
            onnx.checker.check_model(onnx.load(p), full_check=True)
            x = case_rng(p).uniform(0, 1, (BATCH, 1, 28, 28)).astype(np.float32)
            sess, ys = run_ort(p, {"input": x})
            if ys[0].shape != (BATCH, 10):
                raise RuntimeError("output shape %s" % (ys[0].shape,))
            n += 1
        except Exception as e:
            failures.append("%s: %s" % (p, e))
    for f in failures:
        print("FAIL " + f, file=sys.stderr)
    print("oracle: %d models checked and run, %d failures" % (n, len(failures)), flush=True)
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "testdata"))
    ap.add_argument("--python", default="python3",
                    help="interpreter with onnx + onnxruntime for phase 2 (default python3)")
    ap.add_argument("--phase", choices=("all", "export", "oracle"), default="all")
    ap.add_argument("--stage", help="staging directory (internal)")
    ap.add_argument("--only", help="only cases whose name contains this string")
    args = ap.parse_args()
    out = os.path.abspath(args.out)

    if args.phase == "oracle":
        return phase_oracle(out, args.stage, args.only)

    stage = args.stage or tempfile.mkdtemp(prefix="qc_fixtures_")
    try:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("gen_fixtures: PyTorch is needed for the export phase (run with "
                  "/usr/bin/python3, Debian python3-torch)", file=sys.stderr)
            return 1
        if not args.only:
            for d in glob.glob(os.path.join(out, "*", "model.onnx")):
                shutil.rmtree(os.path.dirname(d))
        phase_export(out, stage, args.only)
        if args.phase == "export":
            print("staged in %s; run: %s %s --phase oracle --stage %s" %
                  (stage, args.python, sys.argv[0], stage))
            return 0
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
            return phase_oracle(out, stage, args.only)
        except ImportError:
            py = shutil.which(args.python) or args.python
            print("oracle phase under %s" % py, flush=True)
            cmd = [py, os.path.abspath(__file__), "--phase", "oracle", "--out", out,
                   "--stage", stage]
            if args.only:
                cmd += ["--only", args.only]
            return subprocess.call(cmd)
    finally:
        if not args.stage:
            shutil.rmtree(stage, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
