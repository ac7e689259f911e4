#!/bin/sh
# test_distill.sh - --distill T[,W] (knowledge distillation from the float
# model, src/train/loss.h) end to end: bad values are usage errors; with a
# learning rate of 0 on a model without BatchNorm or Dropout the student is
# the teacher, so every logged batch loss at W = 1 is 0 (the teacher ran on
# the same batch) and at W = 0 equals the plain cross-entropy run's; a
# quantized run with distillation trains and exports; the CUDA backend refuses it.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_mlp.onnx
DATA=/usr/share/datasets/fashion-mnist
[ -f "$DATA/train-images-idx3-ubyte" ] || [ -f "$DATA/train-images-idx3-ubyte.gz" ] || {
    echo "no Fashion-MNIST in $DATA: skipped"; exit 77; }

for v in abc 0 -1 2,1.5 '2,' 2,x 1,-0.1; do
    "$QATCONV" "$M" -o "$TMP/x.onnx" --distill "$v" > "$TMP/e.out" 2>&1
    rc=$?
    if [ $rc -eq 1 ] && grep -q -- "--distill $v: expected T\[,W\]" "$TMP/e.out"; then
        ok "--distill $v: usage error"
    else bad "--distill $v: status $rc, $(cat "$TMP/e.out")"; fi
done

recipe() {   # recipe LR [quantized] > file
    cat <<EOF2
Solvers.LearningRate=$1
Solvers.Momentum=0.9
[database]
Type=MNIST_IDX_Database
DataPath=$DATA
Validation=0.5
Test=0.05
[sp]
SizeX=28
SizeY=28
NbChannels=1
BatchSize=32
[sp.Transformation-1]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
EOF2
    [ $# -lt 2 ] || printf '[onnx:Fc_def]\nQWeight=LSQ\nQWeight.Range=15\n[onnx:Relu_def]\nQAct=LSQ\nQAct.Range=15\n'
}
COMMON="--limit 256 --epochs 1 --quiet --no-eval --seed 3 --threads 1"

# learning rate 0: the student is the float teacher on every batch
recipe 0 > "$TMP/lr0.ini"
for run in ce:"" w1:"--distill 3,1" w0:"--distill 3,0"; do
    name=${run%%:*}
    # shellcheck disable=SC2086
    "$QATCONV" "$M" -r "$TMP/lr0.ini" -o "$TMP/$name.onnx" $COMMON ${run#*:} \
        --log "$TMP/$name.csv" > "$TMP/$name.out" 2>&1 || bad "$name run: $(cat "$TMP/$name.out")"
done
if [ -s "$TMP/w1.csv" ] && awk -F, 'NR > 1 { n++; if ($4 > 1e-6 || $4 < -1e-6) bad++ }
        END { exit !(n == 8 && bad == 0) }' "$TMP/w1.csv"; then
    ok "W = 1, learning rate 0: the loss of all 8 batches is 0 (teacher on the same batch)"
else bad "W = 1, learning rate 0: batch losses $(cut -d, -f4 "$TMP/w1.csv" | tr '\n' ' ')"; fi
if [ -s "$TMP/w0.csv" ] && paste -d, "$TMP/ce.csv" "$TMP/w0.csv" |
        awk -F, 'NR > 1 { n++; d = $4 - $10; if (d > 1e-5 || d < -1e-5) bad++ }
                 END { exit !(n == 8 && bad == 0) }'; then
    ok "W = 0: the batch losses are the cross-entropy run's"
else bad "W = 0: $(paste -d' ' "$TMP/ce.csv" "$TMP/w0.csv" | head -4)"; fi

# a quantized run with distillation trains and writes its model
recipe 0.01 q > "$TMP/q.ini"
# shellcheck disable=SC2086
if "$QATCONV" "$M" -r "$TMP/q.ini" -o "$TMP/q.onnx" $COMMON --distill 4,0.7 > "$TMP/q.out" 2>&1 &&
        [ -s "$TMP/q.onnx" ]; then
    ok "LSQ W4A4 with --distill 4,0.7 trains and exports"
else bad "quantized --distill run: $(cat "$TMP/q.out")"; fi

# CUDA has no distillation kernel: a clear refusal before the first batch (on the
# emulated CUDA backend of tests/qatconv_emu, where it is built)
EMU=${QATCONV_EMU:-${top_builddir:-.}/tests/qatconv_emu}
if [ -x "$EMU" ]; then
    # shellcheck disable=SC2086
    "$EMU" "$M" -r "$TMP/lr0.ini" -o "$TMP/cuda.onnx" $COMMON --device cuda --distill 2 \
        > "$TMP/cuda.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && [ ! -e "$TMP/cuda.onnx" ] &&
            grep -q -- "--distill: distillation runs on the CPU backend only, not on cuda" \
                "$TMP/cuda.out"; then
        ok "--device cuda --distill: refused in one line"
    else bad "--device cuda --distill: status $rc, $(cat "$TMP/cuda.out")"; fi
fi
finish
