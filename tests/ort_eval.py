#!/usr/bin/env python3
"""ort_eval.py - ONNX Runtime top-1 accuracy of a model on the Fashion-MNIST (or MNIST) test set.

Usage:
    python3 tests/ort_eval.py MODEL [--data DIR] [--batch B] [--threads T] [--limit N]
                              [--predictions FILE]

Reads DIR/t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] (default
/usr/share/datasets/fashion-mnist), feeds pixels/255 as float NCHW [B,1,28,28] (or [B,784] when
the graph input has rank 2; raw uint8 pixels when the graph input is uint8, as an integer-only
export with --int-input has), takes argmax over the first output and prints one line:
    accuracy=<percent, 2 decimals> correct=<count> images_per_s=<float>
images_per_s counts session run time only (no data loading).  --predictions FILE writes the
predicted class of each image, one per line.
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
    args = ap.parse_args()
    if args.batch < 1 or args.threads < 1:
        ap.error("--batch and --threads must be positive")

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
    elapsed = 0.0
    for i in range(0, n, args.batch):
        x = np.ascontiguousarray(x_all[i:i + args.batch])
        t0 = time.perf_counter()
        y = sess.run([out_name], {inp.name: x})[0]
        elapsed += time.perf_counter() - t0
        preds[i:i + x.shape[0]] = np.asarray(y).reshape(x.shape[0], -1).argmax(1)
    correct = int((preds == labels).sum())
    print("accuracy=%.2f correct=%d images_per_s=%.1f" %
          (100.0 * correct / n, correct, n / elapsed if elapsed > 0 else 0.0))
    if args.predictions:
        with open(args.predictions, "w") as f:
            f.write("".join("%d\n" % p for p in preds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
