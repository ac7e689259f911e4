#!/bin/sh
# test_pipeline.sh - the parallel input pipeline of image folders
# (src/data/prefetch.c, per-image random streams in src/data/dataset.c), on a
# PNG folder built here (tests/make_images.py's PNG writer: 3 classes of RGB
# images of varied sizes, converted to 1 channel):
#  (a) training with random transformations (RandomResizeCrop, random flips,
#      random SliceExtraction offsets) gives the byte-identical output model
#      and the same per-batch log with 1 and 3 decoder threads
#      ([database] DecodeThreads) and with the default (--threads);
#  (b) a corrupt image of the learn split: one error line naming the file,
#      exit 2, no output, no hang, at 1 and 3 decoder threads;
#  (c) SIGINT while the threads decode ahead: exit 3, nothing written; the
#      run resumed from its last checkpoint ends with the uninterrupted run's
#      output model, byte for byte;
#  (d) listing a folder of 2,600 images: "indexing FOLDER: 1000 images" and
#      "... 2000 images" progress lines on a terminal (script(1)), cleared
#      after; nothing on a pipe.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
N=$(scaled 80 40)   # images per class

"$PYTHON3" - "$top_srcdir/tests" "$TMP/img" "$N" <<'PY' || { bad "making the PNG folder"; finish; exit; }
import os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from make_images import write_png
out, n = sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(7)
for k, name in enumerate(["cat", "dog", "eel"]):
    os.makedirs(os.path.join(out, name))
    for i in range(n):
        h, w = int(rng.integers(30, 45)), int(rng.integers(30, 45))
        a = rng.integers(0, 160, (h, w, 3)) + 40 * k
        a[: h // 2, : w // 3] = 255 - 60 * k      # an asymmetric mark: flips matter
        write_png(os.path.join(out, name, "%03d.png" % i), a.astype(np.uint8))
PY

# recipe THREADS: a recipe with random transformations (DecodeThreads=THREADS, or none)
recipe() {
    printf 'Solvers.LearningRate=0.01\nSolvers.Momentum=0.9\n[database]\nType=DIR_Database\n'
    printf 'DataPath=%s\nLearn=0.8\nTest=0.2\n' "$TMP/img"
    [ -n "$1" ] && printf 'DecodeThreads=%s\n' "$1"
    cat <<'EOF2'
[sp]
SizeX=28
SizeY=28
NbChannels=1
BatchSize=16
[sp.Transformation-1]
Type=RandomResizeCropTransformation
Width=32
Height=32
ScaleMin=0.5
ScaleMax=1.0
ApplyTo=LearnOnly
[sp.Transformation-2]
Type=RescaleTransformation
Width=32
Height=32
ApplyTo=NoLearn
[sp.Transformation-3]
Type=SliceExtractionTransformation
Width=28
Height=28
RandomOffsetX=1
RandomOffsetY=1
ApplyTo=LearnOnly
[sp.Transformation-4]
Type=PadCropTransformation
Width=28
Height=28
ApplyTo=NoLearn
[sp.Transformation-5]
Type=FlipTransformation
RandomHorizontalFlip=1
RandomVerticalFlip=1
ApplyTo=LearnOnly
[sp.Transformation-6]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
EOF2
}
ARGS="--epochs 2 --seed 11 --threads 2 --quiet --no-eval"

# ---- (a) the same batches and weights for any thread count ---------------------------------------
for th in 1 3 ""; do
    recipe "$th" > "$TMP/r$th.ini"
    timeout 600 "$QATCONV" "$M" -r "$TMP/r$th.ini" -o "$TMP/t$th.onnx" $ARGS --log "$TMP/t$th.csv" \
        > "$TMP/t$th.out" 2>&1 || bad "DecodeThreads=${th:-default} run: $(cat "$TMP/t$th.out")"
done
if [ -s "$TMP/t1.onnx" ] && cmp -s "$TMP/t1.onnx" "$TMP/t3.onnx" && cmp -s "$TMP/t1.onnx" "$TMP/t.onnx"
then ok "1, 3 and --threads 2 decoder threads: byte-identical output models"
else bad "the output model depends on the decoder thread count"; fi
if [ -s "$TMP/t1.csv" ] && cmp -s "$TMP/t1.csv" "$TMP/t3.csv"; then
    ok "1 and 3 decoder threads: the same loss and accuracy on every batch ($(wc -l < "$TMP/t1.csv") lines)"
else bad "batch logs differ"; diff "$TMP/t1.csv" "$TMP/t3.csv" | head -5; fi
# the random transformations act: another seed trains other weights
timeout 600 "$QATCONV" "$M" -r "$TMP/r3.ini" -o "$TMP/s.onnx" --epochs 2 --seed 12 --threads 2 \
    --quiet --no-eval --no-shuffle > "$TMP/s.out" 2>&1 &&
timeout 600 "$QATCONV" "$M" -r "$TMP/r3.ini" -o "$TMP/s2.onnx" --epochs 2 --seed 13 --threads 2 \
    --quiet --no-eval --no-shuffle > "$TMP/s2.out" 2>&1 || bad "seed runs: $(cat "$TMP/s.out" "$TMP/s2.out")"
if [ -s "$TMP/s.onnx" ] && ! cmp -s "$TMP/s.onnx" "$TMP/s2.onnx"; then
    ok "unshuffled runs with seeds 12 and 13 differ (the transformations draw from the seed)"
else bad "the seed does not reach the random transformations"; fi

# ---- (b) a corrupt image reaches the main thread: one line, exit 2 -------------------------------
cp -r "$TMP/img" "$TMP/bad"
head -c 300 "$TMP/img/dog/010.png" > "$TMP/bad/dog/010.png"
for th in 1 3; do
    sed "s|^DataPath=.*|DataPath=$TMP/bad|" "$TMP/r$th.ini" > "$TMP/b$th.ini"
    OUTFILE=$TMP/b$th.onnx expect_error 2 "corrupt PNG, $th decoder threads" -- \
        timeout 300 "$QATCONV" "$M" -r "$TMP/b$th.ini" -o "$TMP/b$th.onnx" $ARGS
    grep -q "dog/010.png: corrupt or truncated PNG" "$TMP/err" ||
        bad "the error line does not name the file: $(cat "$TMP/err")"
done

# ---- (c) SIGINT during prefetch, then --resume --------------------------------------------------
LONG="--epochs $(scaled 20 12) --seed 11 --threads 2 --quiet --no-eval"
timeout 600 "$QATCONV" "$M" -r "$TMP/r3.ini" -o "$TMP/ref.onnx" $LONG > "$TMP/ref.out" 2>&1 ||
    bad "reference run: $(cat "$TMP/ref.out")"
"$QATCONV" "$M" -r "$TMP/r3.ini" -o "$TMP/int.onnx" $LONG --checkpoint "$TMP/int.ckpt" \
    --checkpoint-every 3 --log "$TMP/int.csv" > "$TMP/int.out" 2>&1 &
pid=$!
i=0
while [ $i -lt 1200 ] && [ "$({ wc -l < "$TMP/int.csv"; } 2>/dev/null || echo 0)" -lt 5 ]; do
    sleep 0.05; i=$((i + 1))
done
kill -INT $pid 2>/dev/null
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -0 $pid 2>/dev/null && { kill -KILL $pid; bad "SIGINT ignored or a hang: killed"; }
wait $pid
rc=$?
if [ $rc -eq 3 ] && grep -q 'interrupted by signal' "$TMP/int.out" && [ ! -e "$TMP/int.onnx" ]; then
    ok "SIGINT while decoding ahead: clean stop ($(grep -o 'interrupted.*' "$TMP/int.out"))"
elif [ $rc -eq 0 ]; then
    echo "note: the run ended before the signal (a fast machine): no SIGINT check"
else
    bad "SIGINT: exit $rc, output: $(cat "$TMP/int.out")"
fi
if [ $rc -eq 3 ]; then
    timeout 600 "$QATCONV" "$M" -r "$TMP/r3.ini" -o "$TMP/int.onnx" $LONG --checkpoint "$TMP/int.ckpt" \
        --resume "$TMP/int.ckpt" > "$TMP/res.out" 2>&1 || bad "resume: $(cat "$TMP/res.out")"
    if [ -s "$TMP/ref.onnx" ] && cmp -s "$TMP/ref.onnx" "$TMP/int.onnx"; then
        ok "resumed after SIGINT: the uninterrupted run's output model, byte for byte"
    else bad "resumed run differs from the uninterrupted one"; fi
fi

# ---- (d) the indexing progress line -------------------------------------------------------------
"$PYTHON3" - "$top_srcdir/tests" "$TMP/many" <<'PY' || bad "making the 2,600-image folder"
import os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from make_images import write_png
a = np.zeros((28, 28), np.uint8)
for k in range(2):
    os.makedirs(os.path.join(sys.argv[2], "c%d" % k))
    for i in range(1300):
        a[0, 0] = i % 256
        write_png(os.path.join(sys.argv[2], "c%d" % k, "%05d.png" % i), a)
PY
sed -e "s|^DataPath=.*|DataPath=$TMP/many|" -e 's/^BatchSize=16/BatchSize=128/' "$TMP/r.ini" > "$TMP/many.ini"
IARGS="--epochs 1 --limit 256 --threads 2 --no-eval"
"$QATCONV" "$M" -r "$TMP/many.ini" -o "$TMP/m1.onnx" $IARGS > "$TMP/pipe.out" 2> "$TMP/pipe.err" ||
    bad "2,600-image run: $(cat "$TMP/pipe.err")"
if grep -q indexing "$TMP/pipe.err" "$TMP/pipe.out"; then bad "indexing lines on a pipe: $(cat "$TMP/pipe.err")"
else ok "no indexing line on a pipe"; fi
if script -qec true /dev/null > /dev/null 2>&1; then
    script -qec "$QATCONV $M -r $TMP/many.ini -o $TMP/m2.onnx $IARGS" /dev/null > "$TMP/tty.raw" 2>&1
    tr '\r' '\n' < "$TMP/tty.raw" > "$TMP/tty.txt"
    if grep -aq "indexing $TMP/many: 1000 images" "$TMP/tty.txt" &&
        grep -aq "indexing $TMP/many: 2000 images" "$TMP/tty.txt"; then
        ok "indexing progress on a terminal ($(grep -ac indexing "$TMP/tty.txt") updates)"
    else bad "no indexing progress on a terminal: $(head -c 600 "$TMP/tty.txt")"; fi
else
    echo "note: no script(1): the terminal line is not checked"
fi
finish
