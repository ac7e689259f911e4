#!/usr/bin/env python3
"""opset_upgrade.py - models and checks for tests/test_opset_upgrade.sh.

    opset_upgrade.py build DIR
        writes one small model per rewrite of src/export/opset.c, at the old
        opset (onnx.helper, weights from a fixed seed), as DIR/NAME.onnx, and
        prints one line per case:
            NAME TARGET...        qatconv NAME.onnx --opset TARGET must keep
                                  ONNX Runtime's outputs
            NAME TARGET error     qatconv must refuse with one error line
    opset_upgrade.py fixtures TESTDATA
        prints "PATH TARGET..." for every TESTDATA/*/model.onnx below opset 13
        (targets 10 when below it, 13 and 21)
    opset_upgrade.py convnet DIR
        writes DIR/convnet_op9.onnx and convnet_op11.onnx: a small Fashion-MNIST
        CNN in the old forms (Clip attributes, Upsample, Dropout ratio, Softmax)
    opset_upgrade.py checklist FILE
        runs check on every "LABEL OLD NEW TARGET" line of FILE in one process and
        prints "ok LABEL: <summary>" or "FAIL LABEL: <why>" per line
    opset_upgrade.py check OLD NEW TARGET
        NEW must pass onnx.checker (full_check), import opset TARGET with the
        IR version that opset needs, and give ONNX Runtime outputs equal to
        OLD's (max |difference| <= 1e-6 relative to max |output|) on the same
        inputs: OLD's test_data_set_0 inputs when it has them, else standard
        normal ones (seed 0, symbolic dims 2).  Prints one summary line.
"""
import glob
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(14)
X = [2, 3, 8, 8]


def vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def model(nodes, opset, inputs, outputs, inits=(), ir=None):
    """A checked model; below IR 4 (opsets 7, 8) initializers are graph inputs too."""
    ir = ir if ir else {7: 3, 8: 3, 9: 4, 10: 5, 11: 6, 12: 7}.get(opset, 7)
    listed = {i.name for i in inputs}
    if ir < 4:
        inputs = inputs + [helper.make_tensor_value_info(t.name, t.data_type, t.dims)
                           for t in inits if t.name not in listed]
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="opset_upgrade.py")
    m.ir_version = ir
    onnx.checker.check_model(m, full_check=True)
    return m


def conv_in(c_out=3):
    """X -> Conv (3x3, pad 1) -> 'c': a computed input for the op under test."""
    w = RNG.standard_normal((c_out, 3, 3, 3)).astype(np.float32) * 0.3
    return [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1])], \
        [init("w", w)]


def cases():
    """(name, model, targets, error) for every rewrite."""
    f32 = np.float32
    out = []
    # BatchNormalization: spatial / consumed outputs
    c, ci = conv_in()
    bn_p = [init("s", RNG.uniform(0.5, 1.5, 3).astype(f32)), init("b", RNG.standard_normal(3).astype(f32)),
            init("m", RNG.standard_normal(3).astype(f32)), init("v", RNG.uniform(0.5, 2, 3).astype(f32))]
    for sp, targets, err in ((1, [9, 10, 13, 14, 17, 21], False), (0, [9], True)):
        bn = helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], name="bn",
                              epsilon=1e-3, spatial=sp)
        m = model(c + [bn], 7, [vi("x", X)], [vi("y", X)], ci + bn_p)
        out.append(("bn_spatial%d_op7" % sp, m, targets, err))
    # Dropout: ratio attribute, mask output
    c, ci = conv_in()
    d = helper.make_node("Dropout", ["c"], ["d", "mask"], name="drop", ratio=0.3)
    r = helper.make_node("Relu", ["d"], ["y"], name="relu")
    out.append(("dropout_op7", model(c + [d, r], 7, [vi("x", X)], [vi("y", X)], ci),
                [10, 11, 12, 13, 17, 21], False))
    out.append(("dropout_mask_op7", model(c + [d, r], 7, [vi("x", X)], [vi("y", X), vi("mask", X)], ci),
                [13], True))
    # Clip: min/max attributes
    for name, kw in (("clip_op7", {"min": -0.5, "max": 0.7}), ("clip_max_op9", {"max": 0.2}),
                     ("clip_min_op7", {"min": -0.1})):
        op = int(name[-1])
        c, ci = conv_in()
        cl = helper.make_node("Clip", ["c"], ["y"], name="clip", **kw)
        out.append((name, model(c + [cl], op, [vi("x", X)], [vi("y", X)], ci), [10, 11, 12, 13, 17, 21],
                    False))
    # Pad: pads/value attributes
    c, ci = conv_in()
    p = helper.make_node("Pad", ["c"], ["y"], name="pad", mode="constant", pads=[0, 0, 1, 2, 0, 0, 2, 1],
                         value=1.5)
    out.append(("pad_op7", model(c + [p], 7, [vi("x", X)], [vi("y", [2, 3, 11, 11])], ci),
                [10, 11, 13, 18, 19, 21], False))
    # ReduceMean, ReduceSum, Squeeze, Unsqueeze: axes attributes
    for op in (7, 11):
        c, ci = conv_in()
        nodes = c + [
            helper.make_node("ReduceMean", ["c"], ["rm"], name="rmean", axes=[2, 3], keepdims=1),
            helper.make_node("Squeeze", ["rm"], ["sq"], name="squeeze", axes=[2, 3]),
            helper.make_node("Unsqueeze", ["sq"], ["y"], name="unsqueeze", axes=[1]),
            helper.make_node("ReduceSum", ["c"], ["rs"], name="rsum", axes=[1], keepdims=0),
            helper.make_node("ReduceSum", ["c"], ["rs2"], name="rsum_all_hw", axes=[2, 3], keepdims=1),
            helper.make_node("Squeeze", ["rs2"], ["y2"], name="squeeze_all"),
        ]
        out.append(("axes_op%d" % op, model(nodes, op, [vi("x", X)],
                                            [vi("y", [2, 1, 3]), vi("rs", [2, 8, 8]), vi("y2", [2, 3])], ci),
                    [t for t in (10, 11, 13, 17, 18, 21) if t > op], False))
    # Slice (and Gather/Unsqueeze) in a shape subgraph: attributes -> inputs
    c, ci = conv_in()
    nodes = c + [
        helper.make_node("Shape", ["c"], ["shp"], name="shape"),
        helper.make_node("Slice", ["shp"], ["n"], name="slice", starts=[0], ends=[1], axes=[0]),
        helper.make_node("Slice", ["shp"], ["hw"], name="slice_hw", starts=[2], ends=[1000]),
        helper.make_node("Gather", ["shp", "one"], ["ch"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["ch"], ["ch1"], name="unsq_c", axes=[0]),
        helper.make_node("Concat", ["n", "ch1", "minus1"], ["tgt"], name="concat", axis=0),
        helper.make_node("Reshape", ["c", "tgt"], ["y"], name="reshape"),
        helper.make_node("Concat", ["minus1", "hw"], ["tgt2"], name="concat_hw", axis=0),
        helper.make_node("Reshape", ["c", "tgt2"], ["y2"], name="reshape_hw"),
    ]
    ci = ci + [init("one", np.array(1, np.int64)), init("minus1", np.array([-1], np.int64))]
    out.append(("slice_op7", model(nodes, 7, [vi("x", X)], [vi("y", [2, 3, 64]), vi("y2", [6, 8, 8])], ci),
                [10, 11, 13, 17, 21], False))
    # Upsample (attribute scales at 7, input at 9) -> Resize
    for mode, sc in (("nearest", [1, 1, 2, 3]), ("linear", [1, 1, 2, 2]), ("nearest", [1, 1, 1.5, 2.5])):
        tag = "%s_%s" % (mode, "x".join("%g" % s for s in sc[2:]).replace(".", "p"))
        oshape = [2, 3] + [int(8 * s) for s in sc[2:]]
        c, ci = conv_in()
        u7 = helper.make_node("Upsample", ["c"], ["y"], name="up", mode=mode, scales=[float(s) for s in sc])
        out.append(("upsample_%s_op7" % tag, model(c + [u7], 7, [vi("x", X)], [vi("y", oshape)], ci),
                    [9, 10, 11, 13, 17, 21], False))
        u9 = helper.make_node("Upsample", ["c", "sc"], ["y"], name="up", mode=mode)
        out.append(("upsample_%s_op9" % tag,
                    model(c + [u9], 9, [vi("x", X)], [vi("y", oshape)], ci + [init("sc", np.array(sc, f32))]),
                    [10, 11, 13, 17, 21], False))
    # Resize-10 -> 11+: roi input, asymmetric coordinates, nearest rounding
    for mode, sc, err in (("nearest", [1, 1, 2, 2], False), ("nearest", [1, 1, 0.6, 0.5], False),
                          ("linear", [1, 1, 1.5, 0.75], False), ("nearest", [1, 1, 0.5, 3], False),
                          ("nearest", [1, 1, 0.6, 2], True)):
        tag = "%s_%s" % (mode, "x".join("%g" % s for s in sc[2:]).replace(".", "p"))
        oshape = [2, 3] + [int(8 * s) for s in sc[2:]]
        c, ci = conv_in()
        r = helper.make_node("Resize", ["c", "sc"], ["y"], name="resize", mode=mode)
        out.append(("resize_%s_op10" % tag,
                    model(c + [r], 10, [vi("x", X)], [vi("y", oshape)], ci + [init("sc", np.array(sc, f32))]),
                    [11] if err else [11, 13, 17, 19, 21], err))
    # Softmax / LogSoftmax: 2-D coercion before 13
    for name, op, opset, axis, declared in (
            ("softmax_axis1_op7", "Softmax", 7, 1, False),      # Flatten/Softmax/Reshape
            ("softmax_last_op7", "Softmax", 7, 3, True),        # already the last axis
            ("logsoftmax_axis2_op11", "LogSoftmax", 11, 2, True),
            ("logsoftmax_neg_op11", "LogSoftmax", 11, -2, False),
            ("softmax_default_op9", "Softmax", 9, None, True)):
        c, ci = conv_in()
        kw = {} if axis is None else {"axis": axis}
        sm = helper.make_node(op, ["c"], ["s"], name="sm", **kw)
        nodes = c + [sm]
        outs = [vi("s", X)]
        if not declared:
            nodes.append(helper.make_node("Relu", ["s"], ["y"], name="relu"))
            outs = [vi("y", X)]
        out.append((name, model(nodes, opset, [vi("x", X)], outs, ci),
                    [t for t in (11, 13, 17, 21) if t > opset], False))
    # Gemm -> Softmax (default axis) at opset 7
    w = RNG.standard_normal((5, 192)).astype(f32) * 0.1
    b = RNG.standard_normal(5).astype(f32)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "gw", "gb"], ["g"], name="fc", transB=1),
             helper.make_node("Softmax", ["g"], ["y"], name="prob")]
    m = model(nodes, 7, [vi("x", X)], [vi("y", [2, 5])], [init("gw", w), init("gb", b)])
    out.append(("gemm_softmax_ir3_op7", m, [9, 10, 13, 21], False))
    # a classifier's scores [N, K, 1, 1] (Caffe2 style): Softmax over axis 1 at opset 9,
    # the dims past it all 1, so the node stays as it is (test_opset_upgrade.sh checks
    # that no Flatten/Reshape pair is added)
    c, ci = conv_in()
    nodes = c + [helper.make_node("GlobalAveragePool", ["c"], ["p"], name="gap"),
                 helper.make_node("Softmax", ["p"], ["y"], name="prob", axis=1)]
    m = model(nodes, 9, [vi("x", X)], [vi("y", [2, 3, 1, 1])], ci)
    out.append(("softmax_scores_op9", m, [11, 13, 14, 21], False))
    return out


def convnet(opset):
    """A small Fashion-MNIST CNN in the old forms of `opset` (9 or 11): Conv,
    BatchNormalization, Relu, MaxPool, Conv, Clip(0, 6) (attributes at 9, inputs at
    11), Upsample 2x (9 only), GlobalAveragePool, Flatten, Dropout(ratio), Gemm,
    Softmax (2-D coercion); random weights (seed 14), batch axis N."""
    f32 = np.float32
    rng = np.random.default_rng(14)
    inits = [init("w1", rng.standard_normal((8, 1, 3, 3)).astype(f32) * 0.4),
             init("bn_s", rng.uniform(0.8, 1.2, 8).astype(f32)),
             init("bn_b", rng.standard_normal(8).astype(f32) * 0.1),
             init("bn_m", rng.standard_normal(8).astype(f32) * 0.1),
             init("bn_v", rng.uniform(0.5, 1.5, 8).astype(f32)),
             init("w2", rng.standard_normal((16, 8, 3, 3)).astype(f32) * 0.15),
             init("b2", np.zeros(16, f32)),
             init("wf", rng.standard_normal((10, 16)).astype(f32) * 0.3),
             init("bf", np.zeros(10, f32))]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"],
                              name="bn1"),
             helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1])]
    if opset < 11:
        nodes.append(helper.make_node("Clip", ["c2"], ["r2"], name="relu6", min=0.0, max=6.0))
    else:
        inits += [init("lo", np.array(0, f32)), init("hi", np.array(6, f32))]
        nodes.append(helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"], name="relu6"))
    last = "r2"
    if opset < 10:
        inits.append(init("up_scales", np.array([1, 1, 2, 2], f32)))
        nodes.append(helper.make_node("Upsample", ["r2", "up_scales"], ["u2"], name="up", mode="nearest"))
        last = "u2"
    nodes += [helper.make_node("GlobalAveragePool", [last], ["g"], name="gap"),
              helper.make_node("Flatten", ["g"], ["f"], name="flat"),
              helper.make_node("Dropout", ["f"], ["d"], name="drop", ratio=0.1),
              helper.make_node("Gemm", ["d", "wf", "bf"], ["logits"], name="fc", transB=1),
              helper.make_node("Softmax", ["logits"], ["prob"], name="prob")]
    return model(nodes, opset, [vi("x", ["N", 1, 28, 28])], [vi("prob", ["N", 10])], inits)


def build(d):
    os.makedirs(d, exist_ok=True)
    for name, m, targets, err in cases():
        onnx.save(m, os.path.join(d, name + ".onnx"))
        print(name, " ".join(str(t) for t in targets), "error" if err else "")


def feeds_of(path, m):
    init_names = {t.name for t in m.graph.initializer}
    ds = os.path.join(os.path.dirname(path), "test_data_set_0")
    feeds = {}
    if os.path.isdir(ds) and os.path.basename(path) == "model.onnx":
        k = 0
        while os.path.exists(os.path.join(ds, "input_%d.pb" % k)):
            t = onnx.TensorProto()
            with open(os.path.join(ds, "input_%d.pb" % k), "rb") as f:
                t.ParseFromString(f.read())
            feeds[t.name] = numpy_helper.to_array(t)
            k += 1
        if feeds:
            return feeds
    rng = np.random.default_rng(0)
    for i in m.graph.input:
        if i.name in init_names:
            continue
        dims = [d.dim_value if d.dim_value > 0 else 2 for d in i.type.tensor_type.shape.dim]
        elem = helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
        feeds[i.name] = rng.standard_normal(dims).astype(elem)
    return feeds


def run(path, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3   # no warnings about initializers listed as inputs (IR 3)
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"]).run(None, feeds)


def check(old_path, new_path, target):
    old, new = onnx.load(old_path), onnx.load(new_path)
    onnx.checker.check_model(new, full_check=True)
    ops = {o.domain: o.version for o in new.opset_import}
    got = ops.get("", ops.get("ai.onnx"))
    assert got == target, "opset %s, expected %d" % (got, target)
    need_ir = min(v[1] for v in helper.VERSION_TABLE if v[2] >= target)
    assert new.ir_version >= need_ir, "ir_version %d < %d" % (new.ir_version, need_ir)
    feeds = feeds_of(old_path, old)
    ra, rb = run(old_path, feeds), run(new_path, feeds)
    assert len(ra) == len(rb), "output count"
    worst = 0.0
    for k, (a, b) in enumerate(zip(ra, rb)):
        assert a.dtype == b.dtype and a.shape == b.shape, \
            "output %d: %s%s vs %s%s" % (k, a.dtype, a.shape, b.dtype, b.shape)
        if a.size == 0:
            continue
        if a.dtype.kind in "iub":
            assert np.array_equal(a, b), "output %d differs" % k
            continue
        err = float(np.max(np.abs(a.astype(np.float64) - b))) / max(1.0, float(np.max(np.abs(a))))
        assert err <= 1e-6, "output %d: relative error %.3g" % (k, err)
        worst = max(worst, err)
    before = sorted({n.op_type for n in old.graph.node})
    after = sorted({n.op_type for n in new.graph.node})
    return "opset %d, checker ok, %d outputs equal (max rel err %.2g), ops %s -> %s" % \
        (target, len(ra), worst, ",".join(before), ",".join(after))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "build":
        build(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "convnet":
        for op in (9, 11):
            onnx.save(convnet(op), os.path.join(sys.argv[2], "convnet_op%d.onnx" % op))
    elif len(sys.argv) == 3 and sys.argv[1] == "fixtures":
        for path in sorted(glob.glob(os.path.join(sys.argv[2], "*", "model.onnx"))):
            m = onnx.load(path, load_external_data=False)
            op = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0]
            if op < 13:
                print(path, " ".join(str(t) for t in (10, 13, 21) if t > op))
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        print(check(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif len(sys.argv) == 3 and sys.argv[1] == "checklist":
        with open(sys.argv[2]) as f:
            for line in f:
                label, old, new, target = line.split()
                try:
                    print("ok %s: %s" % (label, check(old, new, int(target))), flush=True)
                except Exception as e:  # one line per case, the caller counts them
                    why = ("%s: %s" % (type(e).__name__, e)).replace("\n", " ")[:400]
                    print("FAIL %s: %s" % (label, why), flush=True)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
