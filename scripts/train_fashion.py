#!/usr/bin/python3
"""train_fashion.py - trains the bundled Fashion-MNIST float models and exports them to ONNX.

Run with an interpreter that has PyTorch (Debian python3-torch: /usr/bin/python3):

    /usr/bin/python3 scripts/train_fashion.py [--data DIR] [--out testdata] [--threads 2]

Writes, under --out:
    fashion_lenet_bn.onnx      LeNet-like CNN with BatchNorm (the default model), opset 13
    fashion_resnet_tiny.onnx   tiny ResNet (stem + 2 residual blocks + GAP + fc), opset 13
    fashion_mlp.onnx           MLP using x.view(x.size(0), -1) (Shape/Gather/... chain), opset 13
    fashion_mbv2_tiny.onnx     MobileNet-v2-like CNN: depthwise convs, ReLU6 (Clip), residual Adds
    fashion_mbv2_linear.onnx   the same with true linear bottlenecks (torchvision's blocks:
                               no ReLU6 after the project BN / residual Add)
    fashion_models.txt         per model: name, epochs, float top-1 (PyTorch) on the test set

All models take input "input" [N,1,28,28] float in [0,1] (pixels / 255, no mean/std) and give
logits "output" [N,10]; the batch axis is dynamic.  Seeds are fixed, so a rerun on the same
PyTorch version and thread count reproduces the same weights (the bundled fashion_mbv2_tiny.onnx
was made with `--only mbv2_tiny --threads 1`: 8 epochs, about 10 minutes on a busy 2-core machine;
fashion_mbv2_linear.onnx with `--only mbv2_linear --threads 1`).
"""
import argparse
import gzip
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20240601


def read_idx(path):
    """Reads a (gzipped) IDX file into a numpy array (big-endian header, uint8 payload)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(os.path.join(data_dir, stem + "[.gz]"))


def load_split(data_dir, prefix):
    x = read_idx(find(data_dir, prefix + "-images-idx3-ubyte"))
    y = read_idx(find(data_dir, prefix + "-labels-idx1-ubyte"))
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(y.astype(np.int64))
    return x, y


class LeNetBN(nn.Module):
    """conv5x5(8)-bn-relu-maxpool2, conv5x5(16)-bn-relu-maxpool2, fc(128)-relu, fc(10)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 5, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(16 * 5 * 5, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)   # 8x14x14
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)   # 16x5x5
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(cout))
            # Only bn2.bias + down-BN bias matters; both get the same gradients, so they would
            # train to equal tensors, which the exporter dedupes into an Identity node.  Keep
            # the shortcut's bias at zero instead.
            self.down[1].bias.requires_grad_(False)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        sc = x if self.down is None else self.down(x)
        return F.relu(y + sc)


class ResNetTiny(nn.Module):
    """stem conv3x3/2(16)-bn-relu, block(16), block(32,/2), global avgpool, fc(10)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = BasicBlock(16, 16, 1)
        self.block2 = BasicBlock(16, 32, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        x = self.pool(x)
        return self.fc(torch.flatten(x, 1))


class InvertedResidual(nn.Module):
    """MobileNet-v2 block: 1x1 expand conv-bn-relu6, 3x3 depthwise conv-bn-relu6 (groups =
    channels, stride s), 1x1 project conv-bn, identity residual Add when the shapes match.

    By default (linear=False, fashion_mbv2_tiny) a deliberate deviation from MobileNet-v2's
    linear bottleneck: a ReLU6 follows the block's output (after the residual Add, or after the
    project BN when there is no Add), made when qatconv's activation quantizers were all
    unsigned, so every Conv/Gemm input was a non-negative activation.  ReLU6 exports as
    Clip(min 0, max 6) at opset 13.

    With linear=True the block is torchvision's InvertedResidual (MobileNet-v2's true linear
    bottleneck): no activation after the project BN / the residual Add, so the block output is
    signed and the next block's expand conv (or the head conv) reads a signed activation.
    """

    def __init__(self, cin, cout, expand, stride, linear=False):
        super().__init__()
        hidden = cin * expand
        self.expand = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False),
                                    nn.BatchNorm2d(hidden), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1,
                                          groups=hidden, bias=False),
                                nn.BatchNorm2d(hidden), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False),
                                     nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout
        self.out_act = nn.Identity() if linear else nn.ReLU6()

    def forward(self, x):
        y = self.project(self.dw(self.expand(x)))
        if self.residual:
            y = y + x
        return self.out_act(y)


class MobileNetV2Tiny(nn.Module):
    """stem conv3x3/2(16)-bn-relu6 (14x14), IR(16->16, t2), IR(16->24, t4, /2: 7x7),
    IR(24->24, t4), IR(24->32, t4), head conv1x1(128)-bn-relu6, global avgpool, fc(10).
    Residual Adds in the two blocks whose input and output shapes match; 23,322 parameters
    (BatchNorm included), about 1.4 M multiply-adds per image.  linear=True: the same blocks
    with true linear bottlenecks (see InvertedResidual)."""

    def __init__(self, linear=False):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(16), nn.ReLU6())
        self.block1 = InvertedResidual(16, 16, 2, 1, linear)
        self.block2 = InvertedResidual(16, 24, 4, 2, linear)
        self.block3 = InvertedResidual(24, 24, 4, 1, linear)
        self.block4 = InvertedResidual(24, 32, 4, 1, linear)
        self.head = nn.Sequential(nn.Conv2d(32, 128, 1, bias=False),
                                  nn.BatchNorm2d(128), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.block4(self.block3(self.block2(self.block1(x))))
        x = self.pool(self.head(x))
        return self.fc(torch.flatten(x, 1))


class MobileNetV2Linear(MobileNetV2Tiny):
    """MobileNetV2Tiny with torchvision's linear bottlenecks (no ReLU6 after the blocks)."""

    def __init__(self):
        super().__init__(linear=True)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        x = x.view(x.size(0), -1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            correct += int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return 100.0 * correct / x.shape[0]


def train(model, xtr, ytr, epochs, lr, batch=128):
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((xtr.shape[0] + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        t0 = time.time()
        total = 0.0
        for i in range(0, xtr.shape[0], batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * idx.shape[0]
        print("  epoch %d/%d loss %.4f (%.1f s)" % (ep + 1, epochs, total / xtr.shape[0],
                                                     time.time() - t0), flush=True)


def export(model, path):
    """Eval-mode export that keeps BatchNormalization nodes (TrainingMode.EVAL would fold them
    into the convolutions; PRESERVE on a model in eval mode keeps them with running stats)."""
    model.eval()
    dummy = torch.zeros(2, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, dummy, path, opset_version=13, input_names=["input"],
                          output_names=["output"], training=torch.onnx.TrainingMode.PRESERVE,
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "..", "testdata"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help="comma-separated subset: lenet_bn,resnet_tiny,mlp,mbv2_tiny,"
                    "mbv2_linear")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    xtr, ytr = load_split(args.data, "train")
    xte, yte = load_split(args.data, "t10k")
    os.makedirs(args.out, exist_ok=True)

    specs = [("fashion_lenet_bn", LeNetBN, 4, 3e-3),
             ("fashion_resnet_tiny", ResNetTiny, 2, 5e-3),
             ("fashion_mlp", MLP, 3, 2e-3),
             ("fashion_mbv2_tiny", MobileNetV2Tiny, 8, 5e-3),
             ("fashion_mbv2_linear", MobileNetV2Linear, 8, 5e-3)]
    only = set(args.only.split(",")) if args.only else None
    lines = []
    for name, cls, epochs, lr in specs:
        if only and name[len("fashion_"):] not in only:
            continue
        torch.manual_seed(SEED)
        model = cls()
        print("%s: training %d epochs" % (name, epochs), flush=True)
        train(model, xtr, ytr, epochs, lr)
        acc = evaluate(model, xte, yte)
        print("%s: float test top-1 %.2f%%" % (name, acc), flush=True)
        export(model, os.path.join(args.out, name + ".onnx"))
        lines.append("%s epochs=%d top1=%.2f" % (name, epochs, acc))

    txt = os.path.join(args.out, "fashion_models.txt")
    old = {}
    if only and os.path.exists(txt):
        with open(txt) as f:
            for ln in f:
                if ln.strip() and not ln.startswith("#"):
                    old[ln.split()[0]] = ln.rstrip("\n")
    for ln in lines:
        old[ln.split()[0]] = ln
    with open(txt, "w") as f:
        f.write("# model epochs float-top1-%% (PyTorch %s, Fashion-MNIST t10k, pixels/255)\n"
                % torch.__version__)
        for name, _, _, _ in specs:
            if name in old:
                f.write(old[name] + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
