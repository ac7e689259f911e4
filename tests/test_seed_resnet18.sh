#!/bin/sh
# test_seed_resnet18.sh - the seed's ResNet-18 SAT tutorial recipes
# (recipes/resnet18-sat-seed-clamp.ini and -w4a4.ini: N2D2's text but for the
# node names) on torchvision's resnet18 (random weights, exported by
# tests/export_resnet18.py with PyTorch) over an ILSVRC2012 devkit folder of
# 200..300-pixel JPEGs found through $N2D2_DATA as N2D2 does
# (tests/make_images.py ilsvrc: 2 synsets x 65 training images, 4 val/):
#  stage 1 (clamp) trains with the seven transformations (RandomResizeCrop
#  and the flip on learn, Rescale/PadCrop/SliceExtraction on the others) and
#  writes its float latent weights (--format float: N2D2's two-stage flow,
#  man qatconv(1)); stage 2 (W4A4, ReluQ_def on the 17
#  ReLUs, first/last layer at 8 bits) loads on stage 1's output and puts 38
#  quantizers (20 Conv + 1 Gemm + 17 ReLU).  Needs torch + torchvision and
#  PIL (/usr/bin/python3 or $PYTHON3): skipped without them.
# The recipe's BatchSize=128 at 224x224 needs about 9 GB and 5 minutes on 2
# cores, so the test runs "a few batches": BatchSize=16 over 2 x 16 training
# images (2 batches), under QC_TEST_SCALE=small (the sanitizer build)
# BatchSize=8 over 2 x 8 (2 batches); every other line of the recipes unchanged.  The
# recipes say DefaultModel=Frame_CUDA: --device cpu overrides it (with a warning).
# The stage-1 loss must stay that of an untrained 1000-class net (ln 1000 =
# 6.9; < 50 asserted): with the BatchNormalization folded into the convs the
# clamp stage's tanh-normalized weights grew the logits to 1e12.
. "${top_srcdir:-.}/tests/lib.sh"
PYT=
for p in "$PYTHON3" /usr/bin/python3; do
    if "$p" -c 'import torch, torchvision, PIL, numpy' 2>/dev/null; then PYT=$p; break; fi
done
if [ -z "$PYT" ]; then echo "SKIP: no torch + torchvision + PIL"; exit 77; fi
"$PYT" "$top_srcdir/tests/export_resnet18.py" "$TMP/r18.onnx" > "$TMP/exp.out" 2>&1 ||
    { bad "export: $(tail -3 "$TMP/exp.out")"; finish; exit; }
BATCH=$(scaled 16 8)
PER_CLASS=$(scaled 16 8) # two synsets: 2 x PER_CLASS = 2 batches of BATCH
"$PYT" "$top_srcdir/tests/make_images.py" ilsvrc "$TMP/data/ILSVRC2012" 2 "$PER_CLASS" 4 ||
    { bad "making the ILSVRC2012 folder"; finish; exit; }
N2D2_DATA=$TMP/data
export N2D2_DATA

# run STAGE IN OUT EPOCHS [ARG...]: qatconv with recipes/resnet18-sat-seed-STAGE.ini
run() {
    r=$top_srcdir/recipes/resnet18-sat-seed-$1.ini st=$1 in=$2 out=$3 ep=$4
    shift 4
    sed "s/^BatchSize=128\$/BatchSize=$BATCH/" "$r" > "$TMP/$st-small.ini"
    timeout 1200 "$QATCONV" "$in" -r "$TMP/$st-small.ini" -o "$out" --epochs "$ep" \
        --threads 2 --seed 1 --device cpu "$@" > "$TMP/$st.out" 2>&1
    rc=$?
    return $rc
}
if run clamp "$TMP/r18.onnx" "$TMP/s1.onnx" 1 --format float && [ -s "$TMP/s1.onnx" ] &&
    grep -q "^summary: 1 epoch, .* $((2 * PER_CLASS)) training images" "$TMP/clamp.out" &&
    grep -q '(21 quantizers' "$TMP/clamp.out"; then
    ok "stage 1 (clamp): 2 batches of $BATCH trained, 21 quantizers (20 Conv + 1 Gemm)"
else bad "stage 1: exit $rc: $(tail -5 "$TMP/clamp.out")"; fi
loss=$(sed -n 's/^epoch 1\/1: loss \([^,]*\),.*/\1/p' "$TMP/clamp.out")
if [ -n "$loss" ] && awk -v l="$loss" 'BEGIN { exit !(l < 50) }'; then
    ok "stage 1 loss $loss (an untrained 1000-class net: about ln 1000 = 6.9)"
else bad "stage 1 loss '$loss': not that of an untrained net"; fi
if [ -s "$TMP/s1.onnx" ] && run w4a4 "$TMP/s1.onnx" "$TMP/s2.onnx" 0 && [ -s "$TMP/s2.onnx" ] &&
    grep -q '(38 quantizers)' "$TMP/w4a4.out"; then
    ok "stage 2 (W4A4) on stage 1's model: 38 quantizers, evaluated and written"
else bad "stage 2: exit $rc: $(tail -5 "$TMP/w4a4.out")"; fi
finish
