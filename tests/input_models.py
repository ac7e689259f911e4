#!/usr/bin/env python3
"""input_models.py - models whose data input is declared as third-party
exporters declare it, and their ONNX Runtime references (tests/test_inputs.sh).

    input_models.py build DIR        the models below, opset 13, seeded weights
    input_models.py ref MODEL DIR N  DIR/input_0.pb: N random inputs of MODEL's
                                     input shape (batch N; symbolic sizes as in
                                     SIZES), DIR/output_0.pb: ONNX Runtime's
                                     outputs, one input at a time when the batch
                                     is a fixed 1
    input_models.py io MODEL         prints "IN_DTYPE [dims] OUT_DTYPE [dims]"
    input_models.py shape MODEL NAME prints the values of initializer NAME
    input_models.py agree A B DIR    ONNX Runtime's arg-max of A and of B agree on
                                     DIR/input_0.pb (inputs cast to each model's type)

Models:
  fixed1   [1,3,8,8] Conv Relu Reshape(shape initializer [1,128]) Gemm -> [1,10]
           (CNTK / Caffe2 style: the batch of 1 baked into the Reshape)
  flat0    [1,3,8,8] Conv Relu Flatten(axis=0) Reshape Gemm: cannot be rebatched
  symhw    [N,3,H,W] Conv Relu GlobalAveragePool Flatten Gemm (paddle2onnx style)
  nhwc     [N,8,8,3] Transpose(0,3,1,2) Conv Relu Flatten Gemm (tf2onnx style)
  fp16     [N,3,8,8] float16 everywhere: Conv Relu GlobalAveragePool Flatten Gemm
  fp16_f32 fp16 with the same (float16-exact) values in float32
  cast16   [N,3,8,8] float32 with the Conv's output rounded through float16
           (Cast to FLOAT16, Cast back to FLOAT: mixed-precision exports)
  castbf16 the same through bfloat16 (8 significant bits: the rounding is
           far above the forward check's 1e-4 tolerance)
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SIZES = {"H": 12, "W": 10, "N": 1}
ort.set_default_logger_severity(3)


def save(model, path):
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)


def weights(rng, cout, cin, k=3):
    return (rng.standard_normal((cout, cin, k, k)) * 0.3).astype(np.float32)


def model(name, nodes, inputs, outputs, inits, opset=13):
    g = helper.make_graph(nodes, name, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="input_models.py")
    m.ir_version = 8
    return m


def conv_head(rng, x, t=np.float32):
    """Conv 3->8 (pad 1) and Relu reading x: nodes and initializers."""
    w = numpy_helper.from_array(weights(rng, 8, 3).astype(t), "conv_w")
    b = numpy_helper.from_array((rng.standard_normal(8) * 0.1).astype(t), "conv_b")
    nodes = [helper.make_node("Conv", [x, "conv_w", "conv_b"], ["c"], name="conv",
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu")]
    return nodes, [w, b]


def fc(rng, k, x, t=np.float32):
    w = numpy_helper.from_array((rng.standard_normal((10, k)) * 0.1).astype(t), "fc_w")
    b = numpy_helper.from_array((rng.standard_normal(10) * 0.1).astype(t), "fc_b")
    return helper.make_node("Gemm", [x, "fc_w", "fc_b"], ["y"], name="fc", transB=1), [w, b]


def vi(name, t, dims):
    return helper.make_tensor_value_info(name, t, dims)


def build(d):
    rng = np.random.default_rng(14)
    f = TensorProto.FLOAT

    nodes, inits = conv_head(rng, "x")
    shp = numpy_helper.from_array(np.array([1, 8 * 8 * 8], np.int64), "flat_shape")
    nodes.append(helper.make_node("Reshape", ["r", "flat_shape"], ["flat"], name="flatten"))
    g, gi = fc(rng, 512, "flat")
    save(model("fixed1", nodes + [g], [vi("x", f, [1, 3, 8, 8])], [vi("y", f, [1, 10])],
               inits + [shp] + gi), f"{d}/fixed1.onnx")

    nodes, inits = conv_head(rng, "x")
    shp = numpy_helper.from_array(np.array([1, -1], np.int64), "row_shape")
    nodes += [helper.make_node("Flatten", ["r"], ["f0"], name="flatten0", axis=0),
              helper.make_node("Reshape", ["f0", "row_shape"], ["flat"], name="row")]
    g, gi = fc(rng, 512, "flat")
    save(model("flat0", nodes + [g], [vi("x", f, [1, 3, 8, 8])], [vi("y", f, [1, 10])],
               inits + [shp] + gi), f"{d}/flat0.onnx")

    nodes, inits = conv_head(rng, "x")
    nodes += [helper.make_node("GlobalAveragePool", ["r"], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flatten")]
    g, gi = fc(rng, 8, "flat")
    save(model("symhw", nodes + [g], [vi("x", f, ["N", 3, "H", "W"])], [vi("y", f, ["N", 10])],
               inits + gi), f"{d}/symhw.onnx")

    nodes, inits = conv_head(rng, "xt")
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="to_nchw", perm=[0, 3, 1, 2])] \
        + nodes + [helper.make_node("Flatten", ["r"], ["flat"], name="flatten")]
    g, gi = fc(rng, 512, "flat")
    save(model("nhwc", nodes + [g], [vi("x", f, ["N", 8, 8, 3])], [vi("y", f, ["N", 10])],
               inits + gi), f"{d}/nhwc.onnx")

    for t, name, et in ((np.float16, "fp16", TensorProto.FLOAT16),
                        (np.float32, "fp16_f32", TensorProto.FLOAT)):
        r16 = np.random.default_rng(16)
        nodes, inits = conv_head(r16, "x", np.float16)
        nodes += [helper.make_node("GlobalAveragePool", ["r"], ["gap"], name="gap"),
                  helper.make_node("Flatten", ["gap"], ["flat"], name="flatten")]
        g, gi = fc(r16, 8, "flat", np.float16)
        inits = [numpy_helper.from_array(numpy_helper.to_array(i).astype(t), i.name)
                 for i in inits + gi]
        save(model(name, nodes + [g], [vi("x", et, ["N", 3, 8, 8])], [vi("y", et, ["N", 10])],
                   inits), f"{d}/{name}.onnx")


    for name, et in (("cast16", TensorProto.FLOAT16), ("castbf16", TensorProto.BFLOAT16)):
        nodes, inits = conv_head(np.random.default_rng(17), "x")
        nodes += [helper.make_node("Cast", ["r"], ["r_half"], name="to_half", to=et),
                  helper.make_node("Cast", ["r_half"], ["r32"], name="to_float", to=f),
                  helper.make_node("GlobalAveragePool", ["r32"], ["gap"], name="gap"),
                  helper.make_node("Flatten", ["gap"], ["flat"], name="flatten")]
        g, gi = fc(np.random.default_rng(18), 8, "flat")
        save(model(name, nodes + [g], [vi("x", f, ["N", 3, 8, 8])], [vi("y", f, ["N", 10])],
                   inits + gi), f"{d}/{name}.onnx")


def dims_of(value):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in value.type.tensor_type.shape.dim]


def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ref(path, d, n):
    m = onnx.load(path)
    x = m.graph.input[0]
    dims = dims_of(x)
    fixed1 = dims[0] == 1
    shape = [n] + [SIZES.get(v, v) if isinstance(v, str) else v for v in dims[1:]]
    et = helper.tensor_dtype_to_np_dtype(x.type.tensor_type.elem_type)
    xs = np.random.default_rng(7).random(shape).astype(et)
    s = session(path)
    if fixed1:
        ys = np.concatenate([s.run(None, {x.name: xs[i:i + 1]})[0] for i in range(n)])
    else:
        ys = s.run(None, {x.name: xs})[0]
    onnx.save_tensor(numpy_helper.from_array(xs), f"{d}/input_0.pb")
    onnx.save_tensor(numpy_helper.from_array(ys), f"{d}/output_0.pb")


def io(path):
    m = onnx.load(path)
    x, y = m.graph.input[0], m.graph.output[0]
    name = lambda v: helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
    dims = lambda v: "[" + ",".join(str(d) for d in dims_of(v)) + "]"
    print(name(x), dims(x), name(y), dims(y))


def shape(path, init):
    m = onnx.load(path)
    for i in m.graph.initializer:
        if i.name == init:
            print(numpy_helper.to_array(i).tolist())
            return
    print("absent")


def predict(path, xs):
    s = session(path)
    x = s.get_inputs()[0]
    t = np.float16 if x.type == "tensor(float16)" else np.float32
    return np.argmax(s.run(None, {x.name: xs.astype(t)})[0].astype(np.float32), axis=1)


def agree(a, b, d):
    xs = numpy_helper.to_array(onnx.load_tensor(f"{d}/input_0.pb"))
    pa, pb = predict(a, xs), predict(b, xs)
    same = int((pa == pb).sum())
    print(f"{same} of {len(pa)} predictions agree")
    return same == len(pa)


def main():
    cmd = sys.argv[1]
    if cmd == "build":
        build(sys.argv[2])
    elif cmd == "ref":
        ref(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "io":
        io(sys.argv[2])
    elif cmd == "shape":
        shape(sys.argv[2], sys.argv[3])
    elif cmd == "agree":
        return 0 if agree(sys.argv[2], sys.argv[3], sys.argv[4]) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
