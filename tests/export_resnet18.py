"""export_resnet18.py - test helper: torchvision's resnet18 (random weights,
seeded) exported to ONNX with PyTorch's exporter, for the seed's ResNet-18
recipe (tests/test_seed_resnet18.sh).

    export_resnet18.py OUT.onnx [CLASSES]

Input "input" N x 3 x 224 x 224 (N dynamic), output "output".  PyTorch's node
names (/conv1/Conv, /layer1/layer1.0/relu/Relu, /fc/Gemm, ...) are the ones
recipes/resnet18-sat-seed-*.ini use.  BatchNormalization is kept (an eval-mode
export with TrainingMode.PRESERVE): TrainingMode.EVAL would fold it into the
convolutions, and the seed's SAT clamp stage, whose conv weights are
tanh-normalized with ApplyScaling=0 because "each conv is followed by
batch-normalization", would then grow the activations layer after layer.  Needs torch and torchvision (run it with
/usr/bin/python3)."""
import sys

import torch
import torchvision

torch.manual_seed(0)
classes = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
model = torchvision.models.resnet18(num_classes=classes).eval()
x = torch.zeros(1, 3, 224, 224)
torch.onnx.export(model, x, sys.argv[1], input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, opset_version=13,
                  training=torch.onnx.TrainingMode.PRESERVE)
