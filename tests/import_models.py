#!/usr/bin/env python3
"""import_models.py - the models of tests/test_import.sh, built with onnx.helper in the forms
third-party exporters write, and the checks that need ONNX Runtime.

    import_models.py build DIR      one CASE.onnx per case, CASE.expect (what qatconv must make
                                    of it) and CASE.ref/ (64 random inputs and ONNX Runtime's
                                    outputs, as tests/run_model reads them); DIR/LIST
    import_models.py compare A B    ONNX Runtime on A and on B (B: A written back by qatconv)
                                    on the same 64 inputs: max relative error <= 1e-4, the same
                                    argmax; onnx.checker (full_check) accepts B
    import_models.py ops B OPS...   none of the op types OPS is left in B
    import_models.py kept B OPS...  each op type of OPS is still in B

CASE.expect holds "key value" lines:
    params N        `qatconv info` counts N parameters
    layers L        `--recipe-template` names L quantizable weights; the QAT report L layers
    e2e 1|old       QAT + fake and int exports succeed (1); old: the opset is below 13, the
                    exports may refuse it for its opset only
    gone OPS        op types the normalization removes
    kept OPS        op types it must leave (each still in the written model)
    error TEXT      loading fails with one error line containing TEXT
    train_error T   training with a recipe fails with one error line containing T
    ort FILE        the model ONNX Runtime runs for the reference (when CASE.onnx itself
                    holds something ORT reads differently, e.g. old BatchNorm attributes)
    compare 0       the written model is not compared in ONNX Runtime
    foldbn 1        --fold-bn (a float recipe, no training) folds every BatchNormalization
Expected counts are worked out by hand for each case below.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

F32 = np.float32
RNG = np.random.default_rng(14)


def arr(shape, scale=0.3):
    return (RNG.standard_normal(shape) * scale).astype(F32)


def init(name, a):
    return nh.from_array(np.asarray(a), name)


def i64(name, vals):
    return nh.from_array(np.asarray(vals, dtype=np.int64), name)


def model(nodes, inits, opset=13, ir=None, in_shape=("N", 1, 8, 8), weights_as_inputs=False,
          outputs=("y",)):
    inputs = [h.make_tensor_value_info("x", T.FLOAT, list(in_shape))]
    if weights_as_inputs:
        inputs += [h.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    outs = [h.make_tensor_value_info(o, T.FLOAT, ["N", 10]) for o in outputs]
    g = h.make_graph(nodes, "g", inputs, outs, inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], producer_name="import_models")
    m.ir_version = ir if ir else {7: 3, 8: 3, 9: 4, 13: 7}[opset]
    return m


# The skeleton most cases vary: Conv(1->4, 3x3, pad 1) -> Relu -> MaxPool 2 -> Flatten [N,64]
# -> a 64x10 fully connected layer: 36 + 4 + 640 + 10 = 690 parameters, 2 layers.
def head_nodes(w1="W1", b1="B1", conv_out="c1"):
    ins = ["x", w1] + ([b1] if b1 else [])
    return [h.make_node("Conv", ins, [conv_out], name="conv1", pads=[1, 1, 1, 1]),
            h.make_node("Relu", [conv_out], ["r1"], name="relu1"),
            h.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                        strides=[2, 2]),
            h.make_node("Flatten", ["p1"], ["f1"], name="flat")]


def case_reshape_weight():
    """CNTK: the MatMul weight is Reshape(initializer); its bias a separate Add."""
    nodes = head_nodes() + [
        h.make_node("Reshape", ["W2raw", "W2shape"], ["W2"], name="fc_reshape"),
        h.make_node("MatMul", ["f1", "W2"], ["m2"], name="fc"),
        h.make_node("Add", ["m2", "B2"], ["y"], name="fc_bias")]
    inits = [init("W1", arr((4, 1, 3, 3))), init("B1", arr(4)), init("W2raw", arr((4, 16, 10))),
             i64("W2shape", [64, 10]), init("B2", arr(10))]
    return model(nodes, inits), dict(params=690, layers=2, e2e=1,
                                     gone="Reshape MatMul Add")


def case_identity_bn():
    """PyTorch 1.13: a BatchNorm bias equal to another's is Identity(the other's)."""
    nodes = [h.make_node("Conv", ["x", "W1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             h.make_node("BatchNormalization", ["c1", "s1", "b1", "m1", "v1"], ["n1"], name="bn1"),
             h.make_node("Relu", ["n1"], ["r1"], name="relu1"),
             h.make_node("Conv", ["r1", "W2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             h.make_node("Identity", ["b1"], ["b2"], name="bn2_bias"),
             h.make_node("BatchNormalization", ["c2", "s2", "b2", "m2", "v2"], ["n2"], name="bn2"),
             h.make_node("Relu", ["n2"], ["r2"], name="relu2"),
             h.make_node("GlobalAveragePool", ["r2"], ["p2"], name="gap"),
             h.make_node("Flatten", ["p2"], ["f2"], name="flat"),
             h.make_node("Gemm", ["f2", "W3", "B3"], ["y"], name="fc", transB=1)]
    inits = [init("W1", arr((4, 1, 3, 3))), init("W2", arr((4, 4, 3, 3))),
             init("W3", arr((10, 4))), init("B3", arr(10))]
    for k in (1, 2):
        inits += [init("s%d" % k, 1 + arr(4, 0.1)), init("m%d" % k, arr(4, 0.1)),
                  init("v%d" % k, 1 + np.abs(arr(4, 0.1)))]
    inits.append(init("b1", arr(4)))
    # 36 + 144 + 50 (layers) + 2 BatchNorms x 4 x 4
    return model(nodes, inits), dict(params=262, layers=3, e2e=1, gone="Identity",
                                     foldbn=1)


def const_node(name, a):
    return h.make_node("Constant", [], [name], value=nh.from_array(np.asarray(a), name))


def case_constant_weights():
    """paddle2onnx: every weight is a Constant node."""
    nodes = [const_node("W1", arr((4, 1, 3, 3))), const_node("B1", arr(4)),
             const_node("W2", arr((64, 10))), const_node("B2", arr(10))]
    nodes += head_nodes() + [h.make_node("Gemm", ["f1", "W2", "B2"], ["y"], name="fc")]
    return model(nodes, []), dict(params=690, layers=2, e2e=1, gone="Constant")


def case_constantofshape_weights():
    """The onnx package's light zoo models: weights made by ConstantOfShape."""
    def cos(out, shape_name, value):
        return h.make_node("ConstantOfShape", [shape_name], [out],
                           value=nh.from_array(np.asarray([value], dtype=F32)))
    nodes = [cos("W1", "W1shape", 0.1), cos("B1", "B1shape", 0.01), cos("W2", "W2shape", 0.02)]
    nodes += head_nodes() + [h.make_node("Gemm", ["f1", "W2", "B2"], ["y"], name="fc")]
    inits = [i64("W1shape", [4, 1, 3, 3]), i64("B1shape", [4]), i64("W2shape", [64, 10]),
             init("B2", arr(10))]
    return model(nodes, inits), dict(params=690, layers=2, e2e=1, gone="ConstantOfShape")


def case_dequantize_weights():
    """Weight-only quantization: int8 initializers behind DequantizeLinear (activations
    stay float, so the model is not an already-quantized one)."""
    def dq(out, shape, axis=None):
        q = RNG.integers(-100, 100, size=shape).astype(np.int8)
        n = out + "_q"
        attrs = {} if axis is None else {"axis": axis}
        scale = (np.full(shape[axis], 0.004, F32) if axis is not None else np.asarray(0.004, F32))
        return (h.make_node("DequantizeLinear", [n, out + "_s"], [out], name=out + "_dq", **attrs),
                [init(n, q), init(out + "_s", scale)])
    n1, i1 = dq("W1", (4, 1, 3, 3), axis=0)
    n2, i2 = dq("W2", (10, 64))
    nodes = [n1, n2] + head_nodes() + [
        h.make_node("Gemm", ["f1", "W2", "B2"], ["y"], name="fc", transB=1)]
    return model(nodes, i1 + i2 + [init("B1", arr(4)), init("B2", arr(10))]), dict(
        params=690, layers=2, e2e=1, gone="DequantizeLinear")


def case_ir3_inputs():
    """CNTK at opset 8, IR 3: weights listed as graph inputs, Conv + Add bias, the MatMul
    weight reshaped, MatMul + Add."""
    nodes = [h.make_node("Conv", ["x", "W1"], ["c0"], name="conv1", pads=[1, 1, 1, 1]),
             h.make_node("Add", ["c0", "B1"], ["c1"], name="conv1_bias")]
    nodes += head_nodes()[1:] + [
        h.make_node("Reshape", ["W2raw", "W2shape"], ["W2"], name="fc_reshape"),
        h.make_node("MatMul", ["f1", "W2"], ["m2"], name="fc"),
        h.make_node("Add", ["m2", "B2"], ["y"], name="fc_bias")]
    inits = [init("W1", arr((4, 1, 3, 3))), init("B1", arr((4, 1, 1))),
             init("W2raw", arr((16, 4, 10))), i64("W2shape", [64, 10]), init("B2", arr((1, 10)))]
    return model(nodes, inits, opset=8, weights_as_inputs=True), dict(
        params=690, layers=2, e2e="old", gone="Reshape MatMul Add")


def case_conv_add_bias():
    """keras2onnx/tf2onnx: Conv then Add(B [1,C,1,1]); a Conv with a bias then Add(B [C,1,1])
    (the biases add up)."""
    nodes = [h.make_node("Conv", ["x", "W1"], ["c0"], name="conv1", pads=[1, 1, 1, 1]),
             h.make_node("Add", ["c0", "B1"], ["c1"], name="conv1_bias"),
             h.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             h.make_node("Conv", ["r1", "W2", "B2"], ["c2a"], name="conv2", pads=[1, 1, 1, 1]),
             h.make_node("Add", ["B2x", "c2a"], ["c2"], name="conv2_bias"),
             h.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             h.make_node("MaxPool", ["r2"], ["p2"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
             h.make_node("Flatten", ["p2"], ["f2"], name="flat"),
             h.make_node("Gemm", ["f2", "W3", "B3"], ["y"], name="fc", transB=1)]
    inits = [init("W1", arr((4, 1, 3, 3))), init("B1", arr((1, 4, 1, 1))),
             init("W2", arr((4, 4, 3, 3))), init("B2", arr(4)), init("B2x", arr((4, 1, 1))),
             init("W3", arr((10, 64))), init("B3", arr(10))]
    # 36 + 4 + 144 + 4 + 650
    return model(nodes, inits), dict(params=838, layers=3, e2e=1, gone="Add")


def case_matmul_gemm():
    """tf2onnx/keras2onnx dense layers: MatMul then Add(B [N]) or Add(B [1,N]) on 2-D inputs
    become Gemm."""
    nodes = [h.make_node("Flatten", ["x"], ["f0"], name="flat"),
             h.make_node("MatMul", ["f0", "W1"], ["m1"], name="dense1"),
             h.make_node("Add", ["m1", "B1"], ["a1"], name="dense1_bias"),
             h.make_node("Relu", ["a1"], ["r1"], name="relu1"),
             h.make_node("MatMul", ["r1", "W2"], ["m2"], name="dense2"),
             h.make_node("Add", ["B2", "m2"], ["y"], name="dense2_bias")]
    inits = [init("W1", arr((64, 16))), init("B1", arr(16)), init("W2", arr((16, 10))),
             init("B2", arr((1, 10)))]
    return model(nodes, inits), dict(params=1210, layers=2, e2e=1, gone="MatMul Add")


def case_mul_add_scale():
    """Caffe2/Keras scale layers: a per-channel Mul + Add after a Conv, a lone Mul after a
    Gemm."""
    nodes = [h.make_node("Conv", ["x", "W1", "B1"], ["c0"], name="conv1", pads=[1, 1, 1, 1]),
             h.make_node("Mul", ["c0", "S1"], ["c1"], name="conv1_scale"),
             h.make_node("Add", ["c1", "T1"], ["c2"], name="conv1_shift")]
    nodes += [n for n in head_nodes(conv_out="c2")[1:]]
    nodes += [h.make_node("Gemm", ["f1", "W2", "B2"], ["g2"], name="fc", transB=1),
              h.make_node("Mul", ["S2", "g2"], ["y"], name="fc_scale")]
    inits = [init("W1", arr((4, 1, 3, 3))), init("B1", arr(4)), init("S1", 1 + arr((4, 1, 1))),
             init("T1", arr((1, 4, 1, 1))), init("W2", arr((10, 64))), init("B2", arr(10)),
             init("S2", 1 + arr(10))]
    return model(nodes, inits), dict(params=690, layers=2, e2e=1, gone="Mul Add")


def bn_nodes(n_out=1, **attrs):
    outs = ["n1", "bn_mean", "bn_var", "bn_smean", "bn_svar"][:n_out]
    return [h.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
            h.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], outs, name="bn1",
                        **attrs),
            h.make_node("Relu", ["n1"], ["r1"], name="relu1"),
            h.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                        strides=[2, 2]),
            h.make_node("Flatten", ["p1"], ["f1"], name="flat"),
            h.make_node("Gemm", ["f1", "W2", "B2"], ["y"], name="fc", transB=1)]


def bn_inits():
    return [init("W1", arr((4, 1, 3, 3))), init("B1", arr(4)), init("s", 1 + arr(4, 0.1)),
            init("b", arr(4)), init("m", arr(4, 0.1)), init("v", 1 + np.abs(arr(4, 0.1))),
            init("W2", arr((10, 64))), init("B2", arr(10))]


def case_old_bn7():
    """BatchNormalization of opset 7 (spatial=1), IR 3."""
    return model(bn_nodes(spatial=1), bn_inits(), opset=7, weights_as_inputs=True), dict(
        params=706, layers=2, e2e="old", foldbn=1)


def case_old_bn9_outputs(d):
    """Opset 9 BatchNormalization with its optional outputs (running and saved mean/var) that
    nothing reads: ONNX Runtime computes such a node with batch statistics, qatconv reads it
    as inference and drops the unused outputs, so the reference is the one-output node."""
    inits = bn_inits()
    ref = model(bn_nodes(1), inits, opset=9)
    onnx.save(ref, os.path.join(d, "old_bn9_outputs.ort.onnx"))
    return model(bn_nodes(5), inits, opset=9), dict(params=706, layers=2, e2e="old",
                                                    ort="old_bn9_outputs.ort.onnx", foldbn=1)


def case_old_bn_attrs(d):
    """Opset 6 attributes exporters still write at opset 7 (is_test, consumed_inputs): read
    and ignored (ONNX Runtime refuses them, so the reference drops them)."""
    inits = bn_inits()
    onnx.save(model(bn_nodes(1, spatial=1), inits, opset=7, weights_as_inputs=True),
              os.path.join(d, "old_bn_attrs.ort.onnx"))
    m = model(bn_nodes(1, spatial=1, is_test=1, consumed_inputs=[0, 0, 0, 1, 1]), inits, opset=7,
              weights_as_inputs=True)
    # written back with its attributes, which ONNX Runtime still refuses: no compare
    return m, dict(params=706, layers=2, ort="old_bn_attrs.ort.onnx", compare=0,
                   foldbn=1)


def case_bn_spatial0():
    """spatial=0 (per-activation statistics) is not supported: one clear line."""
    return model(bn_nodes(1, spatial=0), bn_inits(), opset=7), dict(error="spatial=0")


def case_qlinear():
    """A QOperator model (ONNX Runtime's quantize_static default before QDQ)."""
    nodes = [h.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="quant"),
             h.make_node("QLinearConv", ["xq", "xs", "xz", "Wq", "ws", "wz", "ys", "yz"], ["yq"],
                         name="qconv", pads=[1, 1, 1, 1]),
             h.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], name="dequant")]
    inits = [init("xs", np.asarray(0.01, F32)), init("xz", np.asarray(0, np.uint8)),
             init("Wq", RNG.integers(-50, 50, size=(4, 1, 3, 3)).astype(np.int8)),
             init("ws", np.asarray(0.02, F32)), init("wz", np.asarray(0, np.int8)),
             init("ys", np.asarray(0.05, F32)), init("yz", np.asarray(128, np.uint8))]
    return model(nodes, inits), dict(error="is already quantized (QLinearConv 'qconv'")


def case_qdq():
    """A QDQ model (QuantizeLinear -> DequantizeLinear on the activation): it loads and runs,
    but a recipe cannot train it."""
    nodes = [h.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="quant"),
             h.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="dequant"),
             h.make_node("DequantizeLinear", ["W1q", "ws"], ["W1"], name="w_dequant"),
             h.make_node("Conv", ["xd", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1])]
    nodes += head_nodes(conv_out="c1")[1:] + [
        h.make_node("Gemm", ["f1", "W2", "B2"], ["y"], name="fc", transB=1)]
    inits = [init("xs", np.asarray(1 / 255, F32)), init("xz", np.asarray(0, np.uint8)),
             init("W1q", RNG.integers(-50, 50, size=(4, 1, 3, 3)).astype(np.int8)),
             init("ws", np.asarray(0.02, F32)), init("B1", arr(4)), init("W2", arr((10, 64))),
             init("B2", arr(10))]
    # its DequantizeLinear stay, so conv1 reads no float weight: 4 + 650, and the float
    # scales count as initializers (xs read twice, ws once)
    return model(nodes, inits), dict(params=657,
                                     train_error="is already quantized (QuantizeLinear 'quant'")


def case_not_folded():
    """What the normalization must leave alone: a Mul whose constant is not per channel (a
    full [1,4,8,8] map), a layer output read twice, a weight shared by two Convs (a Mul after
    one of them would scale both), an Add after a Conv whose output is also a graph output,
    and Reshape/Constant shape subgraphs of activations."""
    nodes = [h.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             h.make_node("Mul", ["c1", "M1"], ["c1m"], name="map_mul"),
             h.make_node("Conv", ["c1m", "W2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             h.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             h.make_node("Add", ["c2", "r2"], ["s2"], name="twice"),
             h.make_node("Conv", ["s2", "W2"], ["c3"], name="conv3_shared", pads=[1, 1, 1, 1]),
             h.make_node("Mul", ["c3", "S3"], ["c3m"], name="shared_scale"),
             h.make_node("Conv", ["c3m", "W4"], ["c4"], name="conv4"),
             h.make_node("Add", ["c4", "B4"], ["c4b"], name="conv4_bias"),
             h.make_node("Constant", [], ["shp"], name="shape",
                         value=nh.from_array(np.asarray([-1, 256], np.int64))),
             h.make_node("Reshape", ["c4b", "shp"], ["f"], name="flatten"),
             h.make_node("Gemm", ["f", "W5", "B5"], ["y"], name="fc", transB=1)]
    inits = [init("W1", arr((4, 1, 3, 3))), init("B1", arr(4)), init("M1", arr((1, 4, 8, 8))),
             init("W2", arr((4, 4, 3, 3))), init("S3", 1 + arr((4, 1, 1))),
             init("W4", arr((4, 4, 1, 1))), init("B4", arr((4, 1, 1))),
             init("W5", arr((10, 256))), init("B5", arr(10))]
    m = model(nodes, inits, outputs=("y", "c4"))
    m.graph.output[1].type.tensor_type.shape.Clear()
    for d in ("N", 4, 8, 8):
        dim = m.graph.output[1].type.tensor_type.shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d
    # every initializer stays: 36+4 + 256 (Mul) + 144 x 2 (shared W2) + 4 (Mul) + 16+4 + 2570
    # no QAT here: the fake export of a weight two layers share is another matter
    return m, dict(params=3178, layers=5, kept="Mul Add Constant Reshape")


CASES = [
    ("reshape_weight", case_reshape_weight), ("identity_bn", case_identity_bn),
    ("constant_weights", case_constant_weights),
    ("constantofshape_weights", case_constantofshape_weights),
    ("dequantize_weights", case_dequantize_weights), ("ir3_inputs", case_ir3_inputs),
    ("conv_add_bias", case_conv_add_bias), ("matmul_gemm", case_matmul_gemm),
    ("mul_add_scale", case_mul_add_scale), ("old_bn7", case_old_bn7),
    ("old_bn9_outputs", case_old_bn9_outputs), ("old_bn_attrs", case_old_bn_attrs),
    ("not_folded", case_not_folded), ("bn_spatial0", case_bn_spatial0), ("qlinear", case_qlinear), ("qdq", case_qdq),
]


def session(path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def inputs_for(path, batch=64):
    rng = np.random.default_rng(64)
    return rng.random((batch, 1, 8, 8), dtype=F32)


def build(d):
    os.makedirs(d, exist_ok=True)
    names = []
    for name, fn in CASES:
        m, exp = fn(d) if fn.__code__.co_argcount else fn()
        path = os.path.join(d, name + ".onnx")
        onnx.save(m, path)
        with open(os.path.join(d, name + ".expect"), "w") as f:
            for k, v in exp.items():
                f.write("%s %s\n" % (k, v))
        names.append(name)
        if "error" in exp:
            continue
        ref = os.path.join(d, exp.get("ort", name + ".onnx"))
        x = inputs_for(ref)
        sess = session(ref)
        out = sess.run(None, {sess.get_inputs()[0].name: x})
        rd = os.path.join(d, name + ".ref")
        os.makedirs(rd, exist_ok=True)
        with open(os.path.join(rd, "input_0.pb"), "wb") as f:
            f.write(nh.from_array(x, "x").SerializeToString())
        for i, o in enumerate(out):
            with open(os.path.join(rd, "output_%d.pb" % i), "wb") as f:
                f.write(nh.from_array(o, "out%d" % i).SerializeToString())
    with open(os.path.join(d, "LIST"), "w") as f:
        f.write("\n".join(names) + "\n")


def compare(a, b):
    onnx.checker.check_model(onnx.load(b), full_check=True)
    x = inputs_for(a)
    sa, sb = session(a), session(b)
    ra = sa.run(None, {sa.get_inputs()[0].name: x})
    rb = sb.run(None, {sb.get_inputs()[0].name: x})
    worst = 0.0
    for u, v in zip(ra, rb):
        err = float(np.max(np.abs(u - v)) / max(float(np.max(np.abs(u))), 1e-30))
        worst = max(worst, err)
        if err > 1e-4:
            sys.exit("max relative error %.3g > 1e-4" % err)
        if not np.array_equal(u.reshape(len(u), -1).argmax(1), v.reshape(len(v), -1).argmax(1)):
            sys.exit("argmax differs")
    print("ORT outputs agree on 64 inputs (max relative error %.3g, same argmax)" % worst)


def ops_gone(b, ops):
    left = sorted({n.op_type for n in onnx.load(b).graph.node} & set(ops))
    if left:
        sys.exit("still in the model: " + " ".join(left))
    print("none of %s left" % " ".join(ops))


def ops_kept(b, ops):
    missing = sorted(set(ops) - {n.op_type for n in onnx.load(b).graph.node})
    if missing:
        sys.exit("no longer in the model: " + " ".join(missing))
    print("%s kept" % " ".join(ops))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "build":
        build(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "ops":
        ops_gone(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) >= 3 and sys.argv[1] == "kept":
        ops_kept(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
