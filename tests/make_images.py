#!/usr/bin/env python3
"""make_images.py - builds the image folders of tests/test_images.sh.

    make_images.py fashion FASHION_DIR OUT   Fashion-MNIST subset as IDX and PNG folders
    make_images.py variety OUT               PNG (gray, RGB, RGBA, 16-bit) and JPEG folders
                                             with their expected network inputs (.npy)

fashion: the first 200 training and 50 test images of each class, in the
original order within a class.  OUT/idx holds them as IDX files (plain,
train-* and t10k-*) sorted by class (stable); OUT/dir/<class>/ as 8-bit gray
PNG files, a%05d.png for the training images and b%05d.png for the test ones.
Listed as N2D2's DIR_Database lists a folder (classes in sorted folder order,
files sorted by name) and split per class with Learn=0.8 Test=0.2 (200 + 50
of each class), the learn split is the IDX training file in its order and the
test split the IDX test file: training must be bit-identical.

PNG files are written here (zlib, filter 0), independently of libpng; JPEG
files with PIL, whose decoder (libjpeg, accurate IDCT, fancy upsampling) is
the oracle of their pixels; without PIL no JPEG folder is made (JPEG: skip).
"""
import gzip
import os
import struct
import sys
import zlib

import numpy as np


def write_png(path, a):
    """a: HxW or HxWxC (C 1..4) uint8 or uint16 -> PNG (gray, GA, RGB, RGBA)."""
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, c = a.shape
    depth = 16 if a.dtype == np.uint16 else 8
    ctype = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = a.astype(">u2").tobytes() if depth == 16 else a.astype(np.uint8).tobytes()
    row = w * c * depth // 8
    data = b"".join(b"\0" + raw[y * row:(y + 1) * row] for y in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(data, 6)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


def read_idx(path):
    with gzip.open(path, "rb") as f:
        d = f.read()
    ndim = d[3]
    dims = struct.unpack(">" + "I" * ndim, d[4:4 + 4 * ndim])
    return np.frombuffer(d, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, a):
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 8, a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape))
        f.write(a.astype(np.uint8).tobytes())


def fashion(src, out):
    sets = {}
    for name, per in (("train", 200), ("t10k", 50)):
        x = read_idx(f"{src}/{name}-images-idx3-ubyte.gz")
        y = read_idx(f"{src}/{name}-labels-idx1-ubyte.gz")
        pick = np.concatenate([np.flatnonzero(y == k)[:per] for k in range(10)])  # by class
        sets[name] = (x[pick], y[pick])
    os.makedirs(f"{out}/idx", exist_ok=True)
    for name, (x, y) in sets.items():
        write_idx(f"{out}/idx/{name}-images-idx3-ubyte", x)
        write_idx(f"{out}/idx/{name}-labels-idx1-ubyte", y)
    for name, prefix in (("train", "a"), ("t10k", "b")):
        x, y = sets[name]
        for k in range(10):
            os.makedirs(f"{out}/dir/{k}", exist_ok=True)
            for i, img in enumerate(x[y == k]):
                write_png(f"{out}/dir/{k}/{prefix}{i:05d}.png", img)


def expect_chw(a, c):
    """The network input qatconv must give for decoded samples a (HxWxC0)."""
    a = a if a.ndim == 3 else a[:, :, None]
    if a.shape[2] in (2, 4):
        a = a[:, :, :-1]                                    # alpha dropped
    ai = a.astype(np.int64)
    if c == 1 and a.shape[2] == 3:                          # OpenCV's fixed-point luma
        ai = ((ai[:, :, 0] * 4899 + ai[:, :, 1] * 9617 + ai[:, :, 2] * 1868 + 8192) >> 14)[:, :, None]
    if c == 3 and ai.shape[2] == 1:
        ai = np.repeat(ai, 3, axis=2)
    v = ai.astype(np.float32)
    if a.dtype == np.uint16:
        v = v * np.float32(255.0 / 65535.0)
    return v.transpose(2, 0, 1)


def variety(out):
    rng = np.random.default_rng(5)
    # PNG folder: per class 8-bit RGB, RGBA, gray, gray+alpha, 16-bit RGB and gray, 32x32
    kinds = [("rgb8", (32, 32, 3), np.uint8), ("rgba8", (32, 32, 4), np.uint8),
             ("gray8", (32, 32), np.uint8), ("ga8", (32, 32, 2), np.uint8),
             ("rgb16", (32, 32, 3), np.uint16), ("gray16", (32, 32), np.uint16)]
    samples = []
    for cls in ("cat", "dog"):
        os.makedirs(f"{out}/png/{cls}", exist_ok=True)
        for name, shape, dt in kinds:
            a = rng.integers(0, np.iinfo(dt).max + 1, size=shape, dtype=np.int64).astype(dt)
            write_png(f"{out}/png/{cls}/{name}.png", a)
            samples.append(a)
    # listed order: classes sorted, files sorted by name
    names = sorted(k[0] for k in kinds)
    order = [samples[c * len(kinds) + [k[0] for k in kinds].index(n)]
             for c in range(2) for n in names]
    for c in (1, 3):
        np.save(f"{out}/png_c{c}.npy", np.stack([expect_chw(a, c) for a in order]))
    try:
        from PIL import Image
    except ImportError:
        return
    # JPEG folder: CIFAR-like 32x32 RGB (4:2:0 and 4:4:4) and one grayscale JPEG
    jpg = []
    for cls in ("airplane", "bird", "ship"):
        os.makedirs(f"{out}/jpg/{cls}", exist_ok=True)
        for i in range(4):
            base = rng.integers(0, 256, size=(4, 4, 3)).astype(np.uint8)
            a = np.kron(base, np.ones((8, 8, 1), np.uint8)) + rng.integers(0, 24, size=(32, 32, 3)).astype(np.uint8)
            if i == 3:
                Image.fromarray(a[:, :, 0]).save(f"{out}/jpg/{cls}/{i}.jpg", quality=90)
            else:
                Image.fromarray(a).save(f"{out}/jpg/{cls}/{i}.jpg", quality=90,
                                        subsampling=0 if i == 1 else 2)
            jpg.append(np.asarray(Image.open(f"{out}/jpg/{cls}/{i}.jpg")))
    for c in (1, 3):
        np.save(f"{out}/jpg_c{c}.npy", np.stack([expect_chw(a, c) for a in jpg]))


def tveq(out, n):
    """n JPEGs of varied sizes (shorter side 60..700, aspect ratio 0.33..3,
    a few exactly 256 or 224 wide), smooth shapes plus noise, every 10th
    grayscale, in one class folder out/c0 (names sort in making order)."""
    from PIL import Image
    rng = np.random.default_rng(7)
    os.makedirs(f"{out}/c0", exist_ok=True)
    for i in range(n):
        short = int(rng.integers(60, 700))
        aspect = float(np.exp(rng.uniform(np.log(1 / 3), np.log(3))))
        w, h = (int(short * aspect), short) if aspect > 1 else (short, int(short / aspect))
        if i % 17 == 3:
            w = 256
        if i % 19 == 5:
            h = 224
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = np.empty((h, w, 3), np.float32)
        for ch in range(3):
            fx, fy, ph = rng.uniform(0.002, 0.08, 2).tolist() + [rng.uniform(0, 6.3)]
            a[:, :, ch] = 128 + 90 * np.sin(fx * xx + ph) * np.cos(fy * yy)
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, short / 2)
        a[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
        a += rng.normal(0, 12, a.shape)
        img = np.clip(a, 0, 255).astype(np.uint8)
        im = Image.fromarray(img[:, :, 0] if i % 10 == 9 else img)
        im.save(f"{out}/c0/{i:04d}.jpg", quality=int(rng.integers(60, 96)))


def ilsvrc(out, n_classes, n_train, n_val):
    """An ILSVRC2012 devkit layout of 224x224-ish RGB JPEGs: out/train/<synset>/,
    out/val/ with out/val.txt ("<file> <class id>") and out/synsets.txt."""
    from PIL import Image
    rng = np.random.default_rng(11)
    synsets = [f"n{1440764 + 17 * k:08d}" for k in range(n_classes)]

    def jpeg(path, k):
        w, h = (int(v) for v in rng.integers(200, 300, 2))
        a = rng.normal(40 + 170 * k / max(n_classes - 1, 1), 30, (h, w, 3))
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, quality=85)
    os.makedirs(f"{out}/val", exist_ok=True)
    with open(f"{out}/synsets.txt", "w") as f:
        f.write("".join(s + "\n" for s in synsets))
    for k, s in enumerate(synsets):
        os.makedirs(f"{out}/train/{s}", exist_ok=True)
        for i in range(n_train):
            jpeg(f"{out}/train/{s}/{s}_{i}.JPEG", k)
    with open(f"{out}/val.txt", "w") as f:
        for i in range(n_val):
            k = i % n_classes
            jpeg(f"{out}/val/ILSVRC2012_val_{i + 1:08d}.JPEG", k)
            f.write(f"ILSVRC2012_val_{i + 1:08d}.JPEG {k}\n")


if __name__ == "__main__":
    if sys.argv[1] == "fashion":
        fashion(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "ilsvrc":
        ilsvrc(sys.argv[2], *(int(v) for v in sys.argv[3:6]))
    elif sys.argv[1] == "tveq":
        tveq(sys.argv[2], int(sys.argv[3]))
    else:
        variety(sys.argv[2])
