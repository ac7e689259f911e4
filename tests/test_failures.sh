#!/bin/sh
# test_failures.sh - failure paths beyond test_cli.sh and test_train.sh: a
# full filesystem (model, checkpoint and report), an output directory that
# cannot be written even by root, the output path equal to the input through
# another spelling, a diverging loss with --checkpoint naming the last good
# checkpoint, exploding gradients (a finite loss, a gradient that is not finite), SIGINT and SIGTERM mid-epoch followed by --resume reaching the
# uninterrupted run's weights bit for bit, a recipe that quantizes nothing,
# and the fuzzers' crash inputs (tests/fuzz/regress/*.onnx: one error line,
# exit 2, no crash).
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx

recipe() {   # recipe LR > file: plain fine-tuning, no quantizers
    printf 'Solvers.LearningRate=%s\nSolvers.Momentum=0.9\n' "$1"
    fashion_sections 64
}
recipe 0.001 > "$TMP/r.ini"

# ---- fuzz regressions: every input that once crashed the loader or planner
for f in "$top_srcdir"/tests/fuzz/regress/*.onnx; do
    [ -f "$f" ] || continue
    OUTFILE=
    expect_error 2 "fuzz regression $(basename "$f")" -- "$QATCONV" info "$f"
    if grep -q 'runtime error\|Sanitizer' "$TMP/err"; then bad "$(basename "$f"): sanitizer report"; fi
done

# ---- a full filesystem: a 64 KiB tmpfs (root only)
FULL=$TMP/full
mkdir -p "$FULL"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=64k tmpfs "$FULL" 2>/dev/null; then
    OUTFILE=$FULL/out.onnx
    expect_error 3 "model on a full filesystem" -- "$QATCONV" "$M" -o "$OUTFILE"
    if [ -z "$(ls -A "$FULL")" ]; then ok "full filesystem: nothing left behind"
    else bad "full filesystem: left $(ls -A "$FULL")"; fi
    OUTFILE=$TMP/ck.onnx
    expect_error 3 "checkpoint on a full filesystem" -- "$QATCONV" "$M" -r "$TMP/r.ini" \
        -o "$OUTFILE" --epochs 1 --limit 256 --quiet --no-eval --checkpoint "$FULL/c.ckpt"
    if [ -z "$(ls -A "$FULL")" ]; then ok "full filesystem: no partial checkpoint"
    else bad "full filesystem: left $(ls -A "$FULL")"; fi
    dd if=/dev/zero of="$FULL/fill" bs=1k count=128 2>/dev/null
    OUTFILE=$TMP/rep.onnx
    expect_error 3 "report on a full filesystem" -- "$QATCONV" "$M" -r "$TMP/r.ini" \
        -o "$OUTFILE" --epochs 1 --limit 256 --quiet --no-eval --report "$FULL/rep.json"
    if [ "$(ls -A "$FULL")" = fill ]; then ok "full filesystem: no partial report"
    else bad "full filesystem: left $(ls -A "$FULL")"; fi
    umount "$FULL"
else
    echo "skip full filesystem: needs root and tmpfs"
fi

# ---- an unwritable output directory: a read-only tmpfs stops root too
RO=$TMP/ro
mkdir -p "$RO"
if [ "$(id -u)" -eq 0 ]; then
    if mount -t tmpfs -o size=1m tmpfs "$RO" 2>/dev/null; then
        if mount -o remount,ro "$RO" 2>/dev/null; then
            OUTFILE=$RO/out.onnx
            expect_error 3 "read-only output directory" -- "$QATCONV" "$M" -o "$OUTFILE"
        else
            echo "skip read-only directory: remount failed"
        fi
        umount "$RO"
    else
        echo "skip read-only directory: cannot mount tmpfs"
    fi
    OUTFILE=/proc/qatconv-test.onnx
    expect_error 3 "output directory /proc" -- "$QATCONV" "$M" -o "$OUTFILE"
else
    chmod 555 "$RO"
    OUTFILE=$RO/out.onnx
    expect_error 3 "unwritable output directory (chmod 555)" -- "$QATCONV" "$M" -o "$OUTFILE"
    chmod 755 "$RO"
fi

# ---- the output path equal to the input through another spelling
mkdir -p "$TMP/d"
cp "$M" "$TMP/d/in.onnx"
ln -s in.onnx "$TMP/d/link.onnx"
ln "$TMP/d/in.onnx" "$TMP/d/hard.onnx"
OUTFILE=
D=$TMP/d
expect_error 1 "output = input (./ spelling)" -- "$QATCONV" "$D/in.onnx" -o "$D/./in.onnx"
expect_error 1 "output = input (../ spelling)" -- "$QATCONV" "$D/in.onnx" -o "$D/../d/in.onnx"
expect_error 1 "output = input (through a symlink)" -- "$QATCONV" "$D/link.onnx" -o "$D/in.onnx"
expect_error 1 "output = input (a hard link)" -- "$QATCONV" "$D/hard.onnx" -o "$D/in.onnx"
if cmp -s "$M" "$TMP/d/in.onnx"; then ok "input untouched"; else bad "input modified"; fi

# ---- a diverging loss with --checkpoint: names epoch, batch and the last good checkpoint.
# With one batch per epoch the first epoch's loss is still finite (it is
# computed before the first update); a later epoch diverges.  The rate is large enough
# for the loss itself to overflow (at 1e12 the weights stay finite, the loss too, and
# the backward overflows first: the exploding-gradients message below).
recipe 1e20 > "$TMP/nan.ini"
OUTFILE=$TMP/nan.onnx
expect_error 3 "diverging loss after a checkpoint" -- "$QATCONV" "$M" -r "$TMP/nan.ini" \
    -o "$OUTFILE" --epochs 5 --limit 64 --quiet --no-eval --checkpoint "$TMP/nan.ckpt"
if grep -q "epoch [2-5], batch 1: the loss is \(NaN\|infinite\).*checkpoint: $TMP/nan.ckpt" \
        "$TMP/err"; then ok "NaN names epoch, batch and the last good checkpoint"
else bad "NaN message: $(cat "$TMP/err")"; fi
OUTFILE=$TMP/nan1.onnx
expect_error 3 "diverging loss before any checkpoint" -- "$QATCONV" "$M" -r "$TMP/nan.ini" \
    -o "$OUTFILE" --epochs 5 --limit 2048 --quiet --no-eval --checkpoint "$TMP/nan1.ckpt"
if grep -q "epoch 1, batch [0-9]*: .*checkpoint: none" "$TMP/err"; then
    ok "NaN in epoch 1 says there is no checkpoint"
else bad "NaN in epoch 1: $(cat "$TMP/err")"; fi

# ---- exploding gradients: a finite loss whose backward overflows float32 stops after
# that batch's backward, naming the parameter nearest the output whose gradient is not
# finite (without the check the solver wrote NaN into the weights and batch 2 reported
# a NaN loss).  The model: Conv with a zero weight, so every BatchNormalization after
# it sees a batch variance of 0 and multiplies the gradient by 1/sqrt(eps) = 316 in
# the backward; 20 of them overflow 316^k > 3.4e38 after k = 16 from the output:
# conv3's weight gradient (its input 0 times an infinite gradient) is the first NaN.
if "$PYTHON3" "$top_srcdir/tests/explode_model.py" "$TMP/explode.onnx" 2>"$TMP/explode.py"; then
    { printf 'Solvers.LearningRate=0.001\n'; fashion_sections 32; } > "$TMP/explode.ini"
    OUTFILE=$TMP/explode_out.onnx
    expect_error 3 "exploding gradients" -- "$QATCONV" "$TMP/explode.onnx" \
        -r "$TMP/explode.ini" -o "$OUTFILE" --epochs 1 --limit 64 --quiet --no-eval
    if grep -q "epoch 1, batch 1: the gradient of 'w3' (node 'conv3', Conv) is NaN.*overflow.*exploding gradients.*checkpoint: none" \
            "$TMP/err"; then ok "exploding gradients: names batch 1 and conv3's weight"
    else bad "exploding gradients message: $(cat "$TMP/err")"; fi
else
    echo "skip exploding gradients: no onnx/numpy in $PYTHON3 ($(tail -n 1 "$TMP/explode.py"))"
fi

# ---- SIGINT / SIGTERM mid-epoch 2: exit 3, nothing written, --resume gives the same weights
COMMON="--limit 12800 --quiet --no-eval --seed 3 --threads 2 --keep last"
"$QATCONV" "$M" -r "$TMP/r.ini" -o "$TMP/full2.onnx" --epochs 2 $COMMON > "$TMP/full2.out" 2>&1 ||
    bad "uninterrupted run: $(cat "$TMP/full2.out")"
for sig in INT TERM; do
    rm -f "$TMP/s.csv"
    "$QATCONV" "$M" -r "$TMP/r.ini" -o "$TMP/s$sig.onnx" --epochs 2 $COMMON \
        --checkpoint "$TMP/s$sig.ckpt" --log "$TMP/s.csv" > "$TMP/s.out" 2>&1 &
    pid=$!
    # wait for the third batch of epoch 2 (at most 120 s)
    i=0
    while [ $i -lt 2400 ] && ! grep -q '^2,3,' "$TMP/s.csv" 2>/dev/null; do
        sleep 0.05; i=$((i + 1))
    done
    kill -$sig $pid
    i=0
    while kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    kill -0 $pid 2>/dev/null && { kill -KILL $pid; bad "SIG$sig ignored: killed"; }
    wait $pid
    rc=$?
    if [ $rc -eq 3 ] && [ ! -e "$TMP/s$sig.onnx" ] &&
       grep -q "interrupted by signal [0-9]* in epoch 2 .*resume from $TMP/s$sig.ckpt" "$TMP/s.out"; then
        ok "SIG$sig mid-epoch: clean stop ($(grep -o 'interrupted.*' "$TMP/s.out"))"
    else
        bad "SIG$sig mid-epoch: exit $rc, output: $(cat "$TMP/s.out")"; continue
    fi
    if "$QATCONV" "$M" -r "$TMP/r.ini" -o "$TMP/s$sig.onnx" --epochs 2 $COMMON \
            --resume "$TMP/s$sig.ckpt" > "$TMP/s.out" 2>&1 &&
       "$PYTHON3" - "$TMP/full2.onnx" "$TMP/s$sig.onnx" "$M" > "$TMP/s.py" 2>&1 <<'PY'
import sys, onnx, numpy as np
from onnx import numpy_helper as nh
a, b, m = (onnx.load(p) for p in sys.argv[1:4])
ia = {t.name: nh.to_array(t) for t in a.graph.initializer}
ib = {t.name: nh.to_array(t) for t in b.graph.initializer}
im = {t.name: nh.to_array(t) for t in m.graph.initializer}
assert ia.keys() == ib.keys()
bad = [k for k in ia if not np.array_equal(ia[k], ib[k])]
assert not bad, "resumed weights differ: %s" % bad
assert any(not np.array_equal(ia[k], im[k]) for k in ia), "training changed nothing"
PY
    then ok "SIG$sig then --resume: bit-identical to the uninterrupted run"
    else bad "SIG$sig then --resume: $(cat "$TMP/s.out" "$TMP/s.py" 2>/dev/null)"; fi
done

# ---- a dataset smaller than one batch, through --batch (test_train.sh covers --limit)
OUTFILE=$TMP/small.onnx
expect_error 2 "dataset smaller than --batch" -- "$QATCONV" "$M" -r "$TMP/r.ini" -o "$OUTFILE" \
    --epochs 1 --limit 100 --batch 128 --quiet
if grep -q '100' "$TMP/err" && grep -q '128' "$TMP/err"; then ok "small dataset: names both sizes"
else bad "small dataset message: $(cat "$TMP/err")"; fi

# ---- the same with quantizers: the LSQ calibration batch was filled before the
# size check and overran the learn set's index buffer (heap corruption, SIGABRT)
OUTFILE=$TMP/small_lsq.onnx
expect_error 2 "LSQ recipe, dataset smaller than --batch" -- "$QATCONV" "$M" \
    -r "$top_srcdir/recipes/lenet-lsq-w8a8.ini" -o "$OUTFILE" --epochs 1 --limit 256 \
    --batch 512 --quiet

# ---- a recipe that quantizes nothing must say so
"$QATCONV" "$M" -r "$TMP/r.ini" -o "$TMP/noq.onnx" --epochs 1 --limit 256 --no-eval \
    > "$TMP/noq.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -qi 'quantizes no\|no quantiz\|nothing to quantize\|quantizes nothing' \
        "$TMP/noq.out"; then
    ok "recipe without quantizers: $(grep -i 'quantiz' "$TMP/noq.out" | head -n 1)"
else
    bad "recipe without quantizers: exit $rc, no message saying nothing is quantized: $(cat "$TMP/noq.out")"
fi
finish
