#!/usr/bin/env python3
"""torch_equiv.py - checks qatconv's SGD fine-tuning step by step against PyTorch.

Two sub-commands, because the ONNX reader and PyTorch may live in different interpreters
(Debian's python3-torch in /usr/bin/python3, the `onnx` package in the `python3` on PATH):

    python3 tests/torch_equiv.py dump MODEL.onnx OUT.npz
        writes every initializer of MODEL (by name) and the BatchNormalization attributes
        (bn:<scale-name>:momentum / :epsilon) to OUT.npz.

    /usr/bin/python3 tests/torch_equiv.py torch --init INIT.npz --final FINAL.npz --log LOG.csv
            [--data DIR] [--batch B] [--steps N] [--lr LR] [--momentum M] [--decay D]
            [--loss-tol T] [--weight-tol T] [--threads T]
        loads INIT into scripts/train_fashion.py's LeNetBN (the initializer names are PyTorch
        parameter and buffer names), trains it N steps on the first N*B Fashion-MNIST training
        images in file order (pixels/255, no augmentation; mean softmax cross-entropy;
        torch.optim.SGD with momentum, weight_decay, dampening 0, constant lr), and compares:
          loss of step k  : |qatconv - torch| / |torch|          <= --loss-tol  (LOG.csv's loss)
          every tensor    : max|qatconv - torch| / max|torch|     <= --weight-tol (FINAL.npz)
        (weights, biases, BN scale/shift and the BN running mean/variance).  Prints one line per
        check ("ok ..." / "FAIL ..."), the worst errors, and exits 0 when all pass, 1 otherwise.
        The computation runs in float64 when --double is given (a reference for the float32
        rounding noise of either side), else in float32 as qatconv does.
"""
import argparse
import csv
import gzip
import os
import sys

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


def cmd_dump(args):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(args.model)
    out = {}
    for init in m.graph.initializer:
        out[init.name] = numpy_helper.to_array(init)
    for node in m.graph.node:
        if node.op_type == "BatchNormalization":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            out["bn:%s:momentum" % node.input[1]] = np.float64(attrs.get("momentum", 0.9))
            out["bn:%s:epsilon" % node.input[1]] = np.float64(attrs.get("epsilon", 1e-5))
    np.savez(args.out, **out)
    return 0


def read_log(path):
    """Per-step mean losses from qatconv's --log CSV (epoch,batch,samples,loss,accuracy,lr)."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [float(r["loss"]) for r in rows]


def rel_err(a, b):
    """max|a - b| / max|b| (absolute when b is all zeros)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = np.max(np.abs(b)) if b.size else 0.0
    err = np.max(np.abs(a - b)) if a.size else 0.0
    return err / scale if scale > 0 else err


def cmd_torch(args):
    import torch
    import torch.nn.functional as F
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "scripts"))
    from train_fashion import LeNetBN

    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.double else torch.float32
    init = np.load(args.init)
    final = np.load(args.final)
    q_losses = read_log(args.log)

    model = LeNetBN()
    sd = model.state_dict()
    for name in sd:
        if name.endswith("num_batches_tracked"):
            continue
        if name not in init:
            print("FAIL initializer %s missing from the model" % name)
            return 1
        sd[name] = torch.from_numpy(np.array(init[name]))
    model.load_state_dict(sd)
    for mod_name, mod in model.named_modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            key = "bn:%s.weight:" % mod_name
            mom = float(init[key + "momentum"]) if key + "momentum" in init else 0.9
            mod.momentum = 1.0 - mom     # ONNX: running = m*running + (1-m)*batch
            if key + "epsilon" in init:
                mod.eps = float(init[key + "epsilon"])
    model = model.to(dtype)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.decay, dampening=0)

    n = args.steps * args.batch
    x = read_idx(args.data, "train-images-idx3-ubyte")[:n]
    y = read_idx(args.data, "train-labels-idx1-ubyte")[:n]
    x = torch.from_numpy(x.astype(np.float32) / np.float32(255.0)).unsqueeze(1).to(dtype)
    y = torch.from_numpy(y.astype(np.int64))

    n_pass = n_fail = 0
    worst_loss = (0.0, 0)
    if len(q_losses) != args.steps:
        print("FAIL qatconv logged %d steps, expected %d" % (len(q_losses), args.steps))
        return 1
    for k in range(args.steps):
        xb, yb = x[k * args.batch:(k + 1) * args.batch], y[k * args.batch:(k + 1) * args.batch]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t_loss = float(loss)
        e = abs(q_losses[k] - t_loss) / abs(t_loss)
        worst_loss = max(worst_loss, (e, k + 1))
        line = "loss step %2d: qatconv %.9g torch %.9g rel %.2e" % (k + 1, q_losses[k], t_loss, e)
        if e <= args.loss_tol:
            n_pass += 1
            print("ok   " + line)
        else:
            n_fail += 1
            print("FAIL " + line)

    worst_w = (0.0, "")
    for name, val in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        if name not in final:
            n_fail += 1
            print("FAIL tensor %s missing from qatconv's output" % name)
            continue
        q = np.array(final[name])
        t = val.detach().cpu().numpy()
        if q.shape != t.shape:
            n_fail += 1
            print("FAIL tensor %s: shape %s, torch %s" % (name, q.shape, t.shape))
            continue
        e = rel_err(q, t)
        moved = rel_err(np.array(init[name]), t)
        worst_w = max(worst_w, (e, name))
        line = "tensor %-18s max|q-t|/max|t| %.2e (moved %.2e from the initial value)" % (
            name, e, moved)
        if e <= args.weight_tol:
            n_pass += 1
            print("ok   " + line)
        else:
            n_fail += 1
            print("FAIL " + line)
    print("worst loss error %.2e (step %d), worst weight error %.2e (%s)"
          % (worst_loss[0], worst_loss[1], worst_w[0], worst_w[1]))
    print("torch_equiv: %d passed, %d failed" % (n_pass, n_fail))
    return 0 if n_fail == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("model")
    d.add_argument("out")
    t = sub.add_parser("torch")
    t.add_argument("--init", required=True)
    t.add_argument("--final", required=True)
    t.add_argument("--log", required=True)
    t.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--lr", type=float, default=0.01)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--decay", type=float, default=5e-4)
    t.add_argument("--loss-tol", type=float, default=1e-4)
    t.add_argument("--weight-tol", type=float, default=1e-4)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--double", action="store_true")
    args = ap.parse_args()
    return cmd_dump(args) if args.cmd == "dump" else cmd_torch(args)


if __name__ == "__main__":
    sys.exit(main())
