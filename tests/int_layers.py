#!/usr/bin/env python3
"""int_layers.py - ONNX Runtime reference for every integer tensor of a model.

    int_layers.py MODEL.onnx N OUTDIR

Writes OUTDIR/model.onnx: MODEL with every integer tensor computed inside the
graph added as a graph output (types from shape inference), OUTDIR/input_0.pb:
the first N Fashion-MNIST test images scaled to [0, 1], and OUTDIR/output_<i>.pb:
what ONNX Runtime (CPU) computes for each output.  tests/run_model then runs
the same model in qatconv and compares every output exactly.
"""
import gzip
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, numpy_helper, shape_inference

DATA = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
INTS = {TensorProto.UINT8, TensorProto.INT8, TensorProto.INT16, TensorProto.UINT16,
        TensorProto.INT32, TensorProto.INT64, TensorProto.UINT32, TensorProto.UINT64}


def main():
    path, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    model = onnx.load(path)
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    have = {o.name for o in model.graph.output}
    inits = {t.name for t in model.graph.initializer}
    added = 0
    for vi in inferred.graph.value_info:
        if vi.name in have or vi.name in inits or vi.type.tensor_type.elem_type not in INTS:
            continue
        model.graph.output.append(vi)
        added += 1
    os.makedirs(out, exist_ok=True)
    onnx.save(model, os.path.join(out, "model.onnx"))
    with gzip.open(os.environ.get("QC_TEST_IMAGES", DATA)) as f:
        raw = f.read()
    x = np.frombuffer(raw[16:], np.uint8).reshape(-1, 1, 28, 28)[:n].astype(np.float32) / 255.0
    sess = ort.InferenceSession(os.path.join(out, "model.onnx"),
                                providers=["CPUExecutionProvider"])
    res = sess.run(None, {sess.get_inputs()[0].name: x})
    with open(os.path.join(out, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x).SerializeToString())
    for i, r in enumerate(res):
        with open(os.path.join(out, "output_%d.pb" % i), "wb") as f:
            f.write(numpy_helper.from_array(np.asarray(r)).SerializeToString())
    print("int_layers: %s: %d integer tensors + %d outputs on %d images (onnxruntime %s)" %
          (path, added, len(have), n, ort.__version__))


if __name__ == "__main__":
    main()
