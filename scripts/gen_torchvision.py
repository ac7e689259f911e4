#!/usr/bin/python3
"""gen_torchvision.py - exports torchvision classifiers for the third-party corpus.

Usage:
    /usr/bin/python3 scripts/gen_torchvision.py --out DIR [--size N] [--only SUBSTR] [--force]

Writes DIR/tv_<model>_op<N>.onnx for torchvision's resnet18, mobilenet_v2,
mobilenet_v3_small, efficientnet_b0, squeezenet1_1, shufflenet_v2_x1_0 and googlenet,
each exported by torch.onnx.export (the exporter of the installed PyTorch: Debian's
python3-torch 1.13 with python3-torchvision 0.14) at opsets 11, 13 and 17: eval mode,
random weights from torchvision's own initialisation under a fixed seed (per model, so
one model's file does not depend on the others), 1000 classes, input [N, 3, SIZE, SIZE]
with a dynamic batch axis N and output [N, 1000], constant folding on (the exporter's
default).  SIZE is 64 by default: the test only needs the architecture's graph, and
64x64 keeps a forward pass of 64 images in a few hundred milliseconds (every model here
ends in a global average pool, so any size from 32 up gives the same graph).

Files already present are kept (the test calls this on every run; only missing files
are exported); --force rewrites them.  A file is written to a temporary name and renamed
into place, so an interrupted run leaves no partial model.  Prints one line per file
written; exit status 0 ok, 1 on an error (torch or torchvision missing: 77, so a test
can skip).
"""
import argparse
import os
import sys
import zlib

MODELS = ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
          "squeezenet1_1", "shufflenet_v2_x1_0", "googlenet")
OPSETS = (11, 13, 17)
SEED = 2024


def build(name):
    """The model in eval mode with seeded torchvision initialisation."""
    import torch
    import torchvision

    torch.manual_seed(SEED + zlib.crc32(name.encode()))
    kwargs = {"weights": None}
    if name == "googlenet":
        # no auxiliary classifiers (they only run in training mode) and no input
        # normalisation inside the graph, as the other models
        kwargs.update(aux_logits=False, transform_input=False, init_weights=True)
    model = getattr(torchvision.models, name)(**kwargs)
    return model.eval()


def export(model, path, opset, size):
    import torch

    x = torch.zeros(1, 3, size, size)
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model, x, tmp, opset_version=opset, input_names=["input"],
                          output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          do_constant_folding=True)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--size", type=int, default=64, help="input height and width [64]")
    ap.add_argument("--only", default="", help="only the models whose file name contains this")
    ap.add_argument("--force", action="store_true", help="rewrite files already present")
    args = ap.parse_args()
    if args.size < 32:
        ap.error("--size must be at least 32")
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as e:
        print("gen_torchvision: %s (install python3-torch and python3-torchvision)" % e,
              file=sys.stderr)
        return 77
    os.makedirs(args.out, exist_ok=True)
    for name in MODELS:
        model = None
        for opset in OPSETS:
            path = os.path.join(args.out, "tv_%s_op%d.onnx" % (name, opset))
            if args.only not in os.path.basename(path):
                continue
            if os.path.exists(path) and not args.force:
                continue
            if model is None:
                model = build(name)
            try:
                export(model, path, opset, args.size)
            except Exception as e:  # the exporter raises many types
                print("gen_torchvision: %s: %s" % (path, e), file=sys.stderr)
                return 1
            print("gen_torchvision: %s (torch %s, torchvision %s, opset %d, %dx%d)"
                  % (path, torch.__version__, torchvision.__version__, opset, args.size,
                     args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
