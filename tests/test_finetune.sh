#!/bin/sh
# test_finetune.sh - fine-tuning the bundled LeNet-BN model 2 epochs on Fashion-MNIST with
# recipes/lenet-finetune.ini raises its test top-1 (qatconv's "summary: test top-1 float
# before X%, after Y%" line), and ONNX Runtime gives the written model exactly the "after"
# figure on the 10,000 test images.
# Under QC_TEST_SCALE=small (tests/lib.sh) the same run learns from the first 12,000
# images and is tested on the first 2,000: the same code paths and the same ONNX Runtime
# equality, but a 90 % model fine-tuned on a fifth of the data does not reliably gain on
# 2,000 images (it moved by -0.20 to +0.05 points), so the gain is only asserted at
# full size and reported at small.
. "${top_srcdir:-.}/tests/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
MODEL=$top_srcdir/testdata/fashion_lenet_bn.onnx
R=$(small_srcdir 0.2)/recipes/lenet-finetune.ini
LIMIT=$(scaled "" "--limit 12000")

if [ ! -r "$DATA/train-images-idx3-ubyte.gz" ]; then
    bad "Fashion-MNIST not installed at $DATA (run scripts/install-deps)"
    finish; exit 1
fi

# shellcheck disable=SC2086  # LIMIT: no option or one with its value
if "$QATCONV" "$MODEL" -r "$R" -o "$TMP/ft.onnx" --epochs 2 --threads 2 $LIMIT >"$TMP/out" 2>&1; then
    ok "qatconv: 2 epochs with $(basename "$R")"
else
    bad "qatconv: $(cat "$TMP/out")"
    finish; exit 1
fi
sed -n 's/^/    /p' "$TMP/out"
line=$(grep '^summary: test top-1 float before' "$TMP/out")
before=$(echo "$line" | sed -n 's/.*before \([0-9.]*\)%.*/\1/p')
after=$(echo "$line" | sed -n 's/.*after \([0-9.]*\)%.*/\1/p')
if [ -z "$before" ] || [ -z "$after" ]; then
    bad "no 'summary: test top-1 float before X%, after Y%' line"
    finish; exit 1
fi
if awk -v a="$after" -v b="$before" 'BEGIN { exit !(a > b) }'; then
    ok "test top-1 raised: before $before%, after $after%"
elif [ "$QC_TEST_SCALE" = small ]; then
    echo "info: test top-1 before $before%, after $after% (the gain is checked at full size)"
else
    bad "test top-1 not raised: before $before%, after $after%"
fi

if o=$("$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$TMP/ft.onnx" --data "$DATA" \
    --limit "$QC_N_TEST" 2>&1); then
    ort=$(echo "$o" | sed -n 's/^accuracy=\([0-9.]*\) .*/\1/p')
    if [ -n "$ort" ] && [ "$ort" = "$after" ]; then
        ok "ONNX Runtime top-1 of the written model $ort% = qatconv's after $after%"
    else
        bad "ONNX Runtime '$o' vs qatconv's after $after%"
    fi
else
    bad "ort_eval: $o"
fi
finish
