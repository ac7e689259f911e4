#!/bin/sh
# test_torch_equiv.sh - qatconv's fine-tuning equals PyTorch's, step by step.
#
# testdata/fashion_lenet_bn.onnx is trained 20 SGD steps (batch 32, lr 0.01, momentum 0.9,
# weight decay 5e-4, no shuffling, no augmentation, BatchNorm in training mode) by qatconv and
# by the same torch.nn module (scripts/train_fashion.py's LeNetBN) from the same initial
# weights on the same batches (tests/torch_equiv.py).  Checks: each step's loss within 1e-4
# relative, every tensor of the result (weights, biases, BN scale/shift, BN running mean and
# variance) within max|qatconv - torch| / max|torch| <= 1e-4, for 1 and for 2 threads, and two
# runs with the same thread count give identical results.  PyTorch comes from $TORCH_PYTHON
# (default /usr/bin/python3, Debian's python3-torch); the ONNX files are read with $PYTHON3's
# `onnx` package.
. "${top_srcdir:-.}/tests/lib.sh"
: "${TORCH_PYTHON:=/usr/bin/python3}"
DATA=/usr/share/datasets/fashion-mnist
MODEL=$top_srcdir/testdata/fashion_lenet_bn.onnx
EQ=$top_srcdir/tests/torch_equiv.py
B=32
STEPS=20
LR=0.01
MOM=0.9
DECAY=0.0005

if [ ! -r "$DATA/train-images-idx3-ubyte.gz" ]; then
    bad "Fashion-MNIST not installed at $DATA (run scripts/install-deps)"
    finish; exit 1
fi
if ! "$TORCH_PYTHON" -c "import torch" >/dev/null 2>&1; then
    bad "$TORCH_PYTHON cannot import torch (run scripts/install-deps: python3-torch)"
    finish; exit 1
fi

cat >"$TMP/sgd.ini" <<EOF
; torch-equivalence recipe: plain SGD, no validation split, data as the model was trained
Solvers=SGD
Solvers.LearningRate=$LR
Solvers.Momentum=$MOM
Solvers.Decay=$DECAY

[database]
Type=MNIST_IDX_Database
DataPath=$DATA
Validation=0.0

[sp]
SizeX=28
SizeY=28
NbChannels=1
BatchSize=$B

[sp.Transformation-1]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
EOF

# run NAME THREADS: 20 steps into $TMP/NAME.onnx and $TMP/NAME.csv
run() {
    if "$QATCONV" "$MODEL" -r "$TMP/sgd.ini" -o "$TMP/$1.onnx" --epochs 1 --no-eval --no-shuffle \
        --limit $((STEPS * B)) --log "$TMP/$1.csv" --threads "$2" --quiet >"$TMP/$1.out" 2>&1; then
        ok "qatconv ($1): $STEPS steps of batch $B, $2 thread(s)"
    else
        bad "qatconv ($1), $2 thread(s): $(cat "$TMP/$1.out")"
        finish; exit 1
    fi
}
run t2 2
run t2again 2
run t1 1
if cmp -s "$TMP/t2.csv" "$TMP/t2again.csv" && cmp -s "$TMP/t2.onnx" "$TMP/t2again.onnx"; then
    ok "two runs with 2 threads give identical losses and weights"
else
    bad "two runs with 2 threads differ (log or output model)"
fi

if ! o=$("$PYTHON3" "$EQ" dump "$MODEL" "$TMP/init.npz" 2>&1); then
    bad "reading the ONNX initializers: $o"
    finish; exit 1
fi
# The thread count changes the order of some float sums, so both runs are compared with PyTorch.
for r in t2 t1; do
    if ! o=$("$PYTHON3" "$EQ" dump "$TMP/$r.onnx" "$TMP/$r.npz" 2>&1); then
        bad "$r: reading the ONNX initializers: $o"
        continue
    fi
    "$TORCH_PYTHON" "$EQ" torch --init "$TMP/init.npz" --final "$TMP/$r.npz" \
        --log "$TMP/$r.csv" --data "$DATA" --batch $B --steps $STEPS --lr $LR --momentum $MOM \
        --decay $DECAY --loss-tol 1e-4 --weight-tol 1e-4 >"$TMP/eq" 2>&1
    rc=$?
    while IFS= read -r line; do
        case $line in
            "ok   "*) ok "$r: ${line#ok   }" ;;
            "FAIL "*) bad "$r: ${line#FAIL }" ;;
            worst*) echo "$r: $line" ;;
        esac
    done <"$TMP/eq"
    if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$TMP/eq"; then
        bad "$r: torch_equiv.py failed: $(tail -n 5 "$TMP/eq")"
    fi
done
finish
