"""torchvision_eq.py - the oracle of tests/test_torchvision_eq.sh: torchvision's
ImageNet evaluation tensor of every JPEG of a folder (names sorted), compared
with the float32 CHW tensors qatconv's tests/dump_data wrote.

    torchvision_eq.py FOLDER PIXELS.raw NORMALIZED.raw

PIXELS.raw: the recipe without its Normalize step ([0,1] pixels, compared
with Resize(256), CenterCrop(224), ToTensor()); NORMALIZED.raw: with it
(compared with the same + Normalize(ImageNet mean, std)).  Prints the max abs
differences and the image count; exit 1 when the [0,1] one is above 1/255.
Needs torch, torchvision and PIL (run it with /usr/bin/python3)."""
import os
import sys

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

folder, pix_raw, norm_raw = sys.argv[1:4]
files = sorted(os.listdir(folder))
to_pix = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor()])
norm = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
pix = np.fromfile(pix_raw, np.float32).reshape(-1, 3, 224, 224)
nrm = np.fromfile(norm_raw, np.float32).reshape(-1, 3, 224, 224)
assert pix.shape[0] == len(files) == nrm.shape[0], (pix.shape, nrm.shape, len(files))
worst_pix = worst_nrm = 0.0
worst_file = ""
for i, f in enumerate(files):
    with Image.open(os.path.join(folder, f)) as im:
        p = to_pix(im.convert("RGB"))
    d = float(np.abs(p.numpy() - pix[i]).max())
    if d > worst_pix:
        worst_pix, worst_file = d, f
    worst_nrm = max(worst_nrm, float(np.abs(norm(p).numpy() - nrm[i]).max()))
print(f"images {len(files)} max_abs_pixel {worst_pix:.6f} ({worst_pix * 255:.3f}/255, {worst_file}) "
      f"max_abs_normalized {worst_nrm:.6f}")
sys.exit(0 if worst_pix <= 1 / 255 else 1)
