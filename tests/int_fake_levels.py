#!/usr/bin/env python3
"""int_fake_levels.py - one step of the int export against the fake export's float ops.

    int_fake_levels.py FAKE.onnx INT.onnx N OUT=IN[,IN...]... [concat@NODE=IN[,IN...]]...

For each OUT=IN,... (activation quantizers of the fake-quant export, named by the value
they quantize): runs the int export in ONNX Runtime on the first N Fashion-MNIST test
images scaled to [0, 1] and reads its stored levels at each quantizer (the uint8 Cast
that ends a requantization, NAME_quantized_Cast_2).  Then it runs the part of the fake
export between the DequantizeLinear of each IN and OUT's levels (its QuantizeLinear
output NAME_quantized, or the Clip on the levels after it, NAME_clipped) on exactly
those levels, dequantized as the fake export does (stored − zp, zp = 128 for int8
levels, 0 for uint8), and compares what it gives with the int export's levels of OUT
(stored − zp).  So every step the int export takes between the quantizers (window sums
and counts, zero points, a Concat's requantization to one grid) is checked against ONNX
Runtime's float ops on the same inputs.  The int export rounds half up in integers where
the float graph rounds half to even in float: at most 0.1 % of the levels may differ, by
one level at most.

concat@NODE=IN,...: the int export's Concat NODE (its output NODE_Concat) holds levels
stored = rne(real / s) + zp of the real values r the fake export concatenates (computed
as above from the int export's levels at each IN), s the largest scale of the INs (the
rule of src/export/int_ops.c when the union of their ranges fits 256 levels of s) and zp
the x_zero_point of the ConvInteger that reads it: |stored − zp − r/s| <= 1/2 everywhere
(half up at ties, to a fixed-point error).  Prints one line per step; exit 1 on a
violation.
"""
import gzip
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper, utils

DATA = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte"


def images(n):
    for path in (DATA, DATA + ".gz"):
        if os.path.exists(path):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read()
            return (np.frombuffer(raw, np.uint8, offset=16)[:n * 784]
                    .reshape(n, 1, 28, 28).astype(np.float32) / 255.0)
    raise SystemExit("int_fake_levels: no %s" % DATA)


def session(m):
    """ONNX Runtime as written (no QDQ fusion into its integer kernels)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def feeds_of(dq, inits, levels, got, ins, fake_input=None, n_images=0):
    """The fake export's DequantizeLinear outputs of quantizers `ins`, from the int
    export's levels: (feeds, the scales)."""
    feeds, scales = {}, []
    for nm in ins:
        if nm == "-":
            feeds[fake_input] = images(n_images)
            continue
        d = dq[levels(nm)]
        zp = 128 if inits[d.input[2]].dtype == np.int8 else 0
        scales.append(float(inits[d.input[1]]))
        feeds[d.output[0]] = (inits[d.input[1]].astype(np.float32) *
                              (got[nm].astype(np.float32) - zp))
    return feeds, scales


def check_concat(fake_path, m, sess, dq, inits, levels, got, node, ins, n):
    fake = onnx.load(fake_path)
    cat = next(nd for nd in fake.graph.node if nd.name == node)
    feeds, scales = feeds_of(dq, inits, levels, got, ins)
    sub = "%s.sub.onnx" % node
    utils.extract_model(fake_path, sub, list(feeds), [cat.output[0]])
    real = session(onnx.load(sub)).run(None, feeds)[0].astype(np.float64)
    os.remove(sub)
    ints = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    val = node + "_Concat"
    zp = 0
    for nd in m.graph.node:
        if nd.op_type == "ConvInteger" and nd.input[0] == val and len(nd.input) > 2:
            zp = int(ints[nd.input[2]])
    m2 = onnx.load_from_string(m.SerializeToString())
    m2.graph.output.append(helper.make_empty_tensor_value_info(val))
    st = session(m2).run([val], {sess.get_inputs()[0].name: images(n)})[0].astype(np.float64)
    s = max(scales)
    err = np.abs(st - zp - real / s)
    ok = err.max() <= 0.5 + 1e-3
    print("concat %s of %s: %d levels on scale %.6g (the largest), zero point %d, max |error| "
          "%.4f level%s" % (node, "+".join(ins), err.size, s, zp, err.max(),
                            "" if ok else " -- FAIL"))
    return not ok


def main():
    fake_path, int_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    steps = [(a.split("=")[0], a.split("=")[1].split(",")) for a in sys.argv[4:]]
    fake = onnx.load(fake_path)
    inits = {t.name: numpy_helper.to_array(t) for t in fake.graph.initializer}
    outs = {o for nd in fake.graph.node for o in nd.output}

    def levels(nm):
        return nm + "_clipped" if nm + "_clipped" in outs else nm + "_quantized"

    dq = {nd.input[0]: nd for nd in fake.graph.node if nd.op_type == "DequantizeLinear"}
    # the int export's levels at every quantizer named
    names = sorted({nm for o, ins in steps for nm in [o] + ins if "@" not in nm and nm != "-"})
    m = onnx.load(int_path)
    have = {o.name for o in m.graph.output}
    for nm in names:
        if nm + "_quantized_Cast_2" not in have:
            m.graph.output.append(helper.make_empty_tensor_value_info(nm + "_quantized_Cast_2"))
    s = session(m)
    got = dict(zip(names, s.run([nm + "_quantized_Cast_2" for nm in names],
                                {s.get_inputs()[0].name: images(n)})))
    bad = False
    for out, ins in steps:
        if out.startswith("concat@"):
            bad = check_concat(fake_path, m, s, dq, inits, levels, got, out[7:], ins, n) or bad
            continue
        feeds, zps = {}, {}
        d = dq[levels(out)]
        zps[out] = 128 if inits[d.input[2]].dtype == np.int8 else 0
        feeds, _ = feeds_of(dq, inits, levels, got, ins, fake.graph.input[0].name, n)
        sub = "%s.%s.sub.onnx" % (int_path, out)
        utils.extract_model(fake_path, sub, list(feeds), [levels(out)])
        want = session(onnx.load(sub)).run(None, feeds)[0].astype(np.int64)
        os.remove(sub)
        d = got[out].astype(np.int64) - zps[out] - want
        nd = int(np.count_nonzero(d))
        ok = d.size > 0 and np.abs(d).max() <= 1 and nd <= 0.001 * d.size
        print("%s from %s: %d levels, %d differ by one level%s"
              % (out, "+".join(ins), d.size, nd,
                 "" if ok else " -- FAIL (max |diff| %d)" % np.abs(d).max()))
        bad = bad or not ok
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
