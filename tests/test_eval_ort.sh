#!/bin/sh
# test_eval_ort.sh - `qatconv eval` gives exactly ONNX Runtime's top-1 on the
# 10,000 Fashion-MNIST test images, for every Fashion-MNIST fixture: LeNet-BN,
# the tiny ResNet, the MLP (Shape/Gather view chain) and the MobileNet-v2-like
# model (depthwise Conv, ReLU6 as Clip with min/max inputs, residual Adds).
. "${top_srcdir:-.}/tests/lib.sh"
R=$top_srcdir/recipes/fashion-mnist.ini
DATA=/usr/share/datasets/fashion-mnist

if [ ! -r "$DATA/t10k-images-idx3-ubyte.gz" ]; then
    bad "Fashion-MNIST not installed at $DATA (run scripts/install-deps)"
    finish; exit 1
fi
# the fixtures this test must cover (a missing one fails, rather than shrinking the loop)
for f in lenet_bn resnet_tiny mlp mbv2_tiny; do
    [ -r "$top_srcdir/testdata/fashion_$f.onnx" ] || bad "testdata/fashion_$f.onnx missing"
done
for m in "$top_srcdir"/testdata/fashion_*.onnx; do
    name=$(basename "$m")
    q=$("$QATCONV" eval "$m" -r "$R" --quiet 2>&1) || { bad "$name: $q"; continue; }
    o=$("$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$m" --data "$DATA" 2>&1) ||
        { bad "$name: ort_eval: $o"; continue; }
    qc=$(echo "$q" | sed -n 's/.*(\([0-9]*\)\/10000).*/\1/p')
    oc=$(echo "$o" | sed -n 's/.*correct=\([0-9]*\).*/\1/p')
    if [ -n "$qc" ] && [ "$qc" = "$oc" ]; then
        ok "$name: qatconv $qc/10000 = ONNX Runtime $oc/10000"
    else
        bad "$name: qatconv '$q' vs ONNX Runtime '$o'"
    fi
done
finish
