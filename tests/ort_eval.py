#!/usr/bin/env python3
"""ort_eval.py - ONNX Runtime top-1 accuracy of a model on the Fashion-MNIST (or MNIST) test set.

Usage:
    python3 tests/ort_eval.py MODEL [--data DIR] [--batch B] [--threads T] [--limit N]
                              [--predictions FILE]
                              [--compare QC_PRED --max-differ N [--max-margin REL]
                               [--run-model PROG]]

Reads DIR/t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (default
/usr/share/datasets/fashion-mnist), feeds pixels/255 as float NCHW [B,1,28,28] (or [B,784] when
the graph input has rank 2; raw uint8 pixels when the graph input is uint8, as an integer-only
export with --int-input has), takes argmax over the first output and prints one line:
    accuracy=<percent, 2 decimals> correct=<count> images_per_s=<float>
images_per_s counts session run time only (no data loading).  --predictions FILE writes the
predicted class of each image, one per line.

--compare QC_PRED compares ONNX Runtime's prediction of every image with qatconv's (the file
`qatconv eval --predictions` writes), image by image, and prints
    agree=<count>/<images> differ=<count> (at most <N>)
and one line per differing image: its index, both classes, and the top-2 margin of ONNX
Runtime's logits (top-1 minus top-2, absolute and relative to the image's largest |logit|);
with --run-model PROG (tests/run_model) also how far qatconv's logits of that image are from
ONNX Runtime's (max |difference|; qatconv's own top-2 margin is then within twice that of ONNX
Runtime's).  The comparison fails (exit 1) when more than N images differ, or, with
--max-margin REL, when a differing image's relative margin in ONNX Runtime exceeds REL: two
float implementations sum in different orders, so they may disagree on an image only where
its two best classes are that close (see the callers for the thresholds they use).
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np


def read_idx(data_dir, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                data = f.read()
            if data[:3] != b"\0\0\x08":
                raise ValueError("%s: not an unsigned-byte IDX file" % path)
            ndim = data[3]
            dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
            return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise FileNotFoundError(os.path.join(data_dir, stem + "[.gz]"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N images")
    ap.add_argument("--predictions", help="write the predicted class per image to FILE")
    ap.add_argument("--no-optimize", action="store_true",
                    help="run the graph as written (ORT's QDQ fusion computes in integers)")
    ap.add_argument("--compare", metavar="QC_PRED",
                    help="compare with qatconv's per-image predictions (one class per line)")
    ap.add_argument("--max-differ", type=int, default=0,
                    help="--compare: at most N images may differ [0]")
    ap.add_argument("--max-margin", type=float,
                    help="--compare: a differing image's relative top-2 margin in ONNX "
                         "Runtime must not exceed REL")
    ap.add_argument("--run-model", metavar="PROG",
                    help="--compare: tests/run_model, to measure qatconv's logits of each "
                         "differing image against ONNX Runtime's")
    args = ap.parse_args()
    if args.batch < 1 or args.threads < 1:
        ap.error("--batch and --threads must be positive")
    if args.max_differ < 0:
        ap.error("--max-differ must not be negative")

    import onnxruntime as ort

    try:
        images = read_idx(args.data, "t10k-images-idx3-ubyte")
        labels = read_idx(args.data, "t10k-labels-idx1-ubyte").astype(np.int64)
    except (OSError, ValueError) as e:
        print("ort_eval: %s" % e, file=sys.stderr)
        return 1
    if args.limit > 0:
        images, labels = images[:args.limit], labels[:args.limit]
    n = images.shape[0]

    so = ort.SessionOptions()
    if args.no_optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    except Exception as e:
        print("ort_eval: %s: %s" % (args.model, e), file=sys.stderr)
        return 1
    inp = sess.get_inputs()[0]
    rank = len(inp.shape) if inp.shape is not None else 4
    if inp.type == "tensor(uint8)":
        x_all = images
    else:
        x_all = images.astype(np.float32) / np.float32(255.0)
    x_all = x_all.reshape((n, -1) if rank == 2 else (n, 1, 28, 28))
    out_name = sess.get_outputs()[0].name

    preds = np.empty(n, np.int64)
    logits = None
    elapsed = 0.0
    for i in range(0, n, args.batch):
        x = np.ascontiguousarray(x_all[i:i + args.batch])
        t0 = time.perf_counter()
        y = sess.run([out_name], {inp.name: x})[0]
        elapsed += time.perf_counter() - t0
        y = np.asarray(y).reshape(x.shape[0], -1)
        if logits is None:
            logits = np.empty((n, y.shape[1]), np.float64)
        logits[i:i + x.shape[0]] = y
        preds[i:i + x.shape[0]] = y.argmax(1)
    correct = int((preds == labels).sum())
    print("accuracy=%.2f correct=%d images_per_s=%.1f" %
          (100.0 * correct / n, correct, n / elapsed if elapsed > 0 else 0.0))
    if args.predictions:
        with open(args.predictions, "w") as f:
            f.write("".join("%d\n" % p for p in preds))
    if args.compare:
        return compare(args, preds, logits, x_all, inp.name)
    return 0


def compare(args, preds, logits, x_all, input_name):
    """Per-image comparison with qatconv's predictions; 0 when within the thresholds."""
    try:
        with open(args.compare) as f:
            qc = np.array([int(v) for v in f.read().split()], np.int64)
    except (OSError, ValueError) as e:
        print("ort_eval: %s: %s" % (args.compare, e), file=sys.stderr)
        return 1
    n = preds.shape[0]
    if qc.shape[0] != n:
        print("ort_eval: %s has %d predictions, ONNX Runtime made %d" %
              (args.compare, qc.shape[0], n), file=sys.stderr)
        return 1
    differ = np.nonzero(qc != preds)[0]
    print("agree=%d/%d differ=%d (at most %d)" % (n - differ.size, n, differ.size,
                                                  args.max_differ))
    ok = differ.size <= args.max_differ
    for i in differ:
        z = logits[i]
        top = np.sort(z)[::-1]
        margin = float(top[0] - top[1]) if z.size > 1 else 0.0
        rel = margin / max(float(np.abs(z).max()), 1e-30)
        line = ("differ image %d: qatconv class %d, ONNX Runtime class %d; ONNX Runtime top-2 "
                "margin %.3g (%.3g relative), logit gap between the two classes %.3g" %
                (i, qc[i], preds[i], margin, rel, float(z[preds[i]] - z[qc[i]])))
        if args.run_model:
            line += "; " + qc_logit_diff(args.run_model, args.model, x_all[i:i + 1],
                                         z.astype(np.float32), input_name)
        if args.max_margin is not None and rel > args.max_margin:
            line += "; FAIL: margin above %.0e relative" % args.max_margin
            ok = False
        print(line)
    return 0 if ok else 1


def qc_logit_diff(prog, model, x, z, input_name):
    """qatconv's logits of one image against ONNX Runtime's z: tests/run_model's max |diff|."""
    import subprocess
    import tempfile
    from onnx import numpy_helper
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.ascontiguousarray(x), input_name)
                    .SerializeToString())
        with open(os.path.join(d, "output_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(z.reshape(1, -1), "logits").SerializeToString())
        r = subprocess.run([prog, model, d, "1"], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip().splitlines()
    tail = out[-1] if out else "no output"
    m = tail.rsplit("max |diff| ", 1)
    if r.returncode in (0, 1) and len(m) == 2:
        return "qatconv's logits of it within %s of ONNX Runtime's (run alone)" % m[1]
    return "run_model: %s" % tail


if __name__ == "__main__":
    sys.exit(main())
