#!/usr/bin/env python3
"""ort_run.py - runs a model in ONNX Runtime (one thread) on TensorProto inputs.

Usage:
    python3 tests/ort_run.py MODEL INPUT_0.pb [INPUT_1.pb ...] [--outdir DIR] [--threads T]

Inputs are matched to the graph inputs by their TensorProto name when it names a graph input,
otherwise by position (initializers that are also graph inputs, IR < 4, are skipped).  Writes
output_<K>.pb (TensorProto named after the graph output) for every graph output into --outdir,
by default the directory of the first input.  Prints one line per output: name, shape, dtype.
Exit status: 0 ok, 1 usage or ORT error.
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--outdir")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    except Exception as e:
        print("ort_run: %s: %s" % (args.model, e), file=sys.stderr)
        return 1
    inits = {t.name for t in onnx.load(args.model, load_external_data=False).graph.initializer}
    names = [i.name for i in sess.get_inputs() if i.name not in inits]
    if len(args.inputs) != len(names):
        print("ort_run: %s has %d inputs (%s), %d given" % (args.model, len(names),
                                                            ", ".join(names), len(args.inputs)),
              file=sys.stderr)
        return 1
    feeds = {}
    for pos, path in enumerate(args.inputs):
        t = onnx.TensorProto()
        with open(path, "rb") as f:
            t.ParseFromString(f.read())
        key = t.name if t.name in names and t.name not in feeds else names[pos]
        feeds[key] = numpy_helper.to_array(t)
    try:
        outs = sess.run(None, feeds)
    except Exception as e:
        print("ort_run: %s: %s" % (args.model, e), file=sys.stderr)
        return 1
    outdir = args.outdir or os.path.dirname(os.path.abspath(args.inputs[0]))
    os.makedirs(outdir, exist_ok=True)
    for k, (o, y) in enumerate(zip(sess.get_outputs(), outs)):
        with open(os.path.join(outdir, "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(y, o.name).SerializeToString())
        print("%s %s %s" % (o.name, "x".join(str(d) for d in y.shape), y.dtype))
    return 0


if __name__ == "__main__":
    sys.exit(main())
