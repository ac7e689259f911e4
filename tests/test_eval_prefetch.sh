#!/bin/sh
# test_eval_prefetch.sh - evaluation passes over image folders go through the
# prefetch pool (src/train/accuracy.c, src/data/prefetch.c) and give the same
# results for any decoder thread count: `qatconv eval --predictions` on 120
# JPEGs of varied sizes (tests/make_images.py tveq; batches of 32, the last
# one partial) with DecodeThreads=1, 3 and the default (--threads 2): the same
# predictions and summary; and the predictions are ONNX Runtime's on the
# tensor tests/dump_data writes for the same split (the right images, in
# order, in every batch).  Needs PIL (/usr/bin/python3 or $PYTHON3) for the
# JPEGs and onnxruntime + numpy in $PYTHON3 for the oracle.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
DUMP=${top_builddir:-.}/tests/dump_data
PYIMG=
for p in "$PYTHON3" /usr/bin/python3; do
    if "$p" -c 'import numpy, PIL' 2>/dev/null; then PYIMG=$p; break; fi
done
if [ -z "$PYIMG" ] || ! "$PYTHON3" -c 'import numpy, onnxruntime' 2>/dev/null; then
    echo "SKIP: needs PIL (JPEGs) and onnxruntime + numpy (oracle)"; exit 77
fi
"$PYIMG" "$top_srcdir/tests/make_images.py" tveq "$TMP/img" 120 || { bad "making the JPEGs"; finish; exit; }

recipe() {
    printf '[database]\nType=DIR_Database\nDataPath=%s\nLearn=0.0\nTest=1.0\n' "$TMP/img"
    [ -n "$1" ] && printf 'DecodeThreads=%s\n' "$1"
    cat <<'EOF2'
[sp]
SizeX=28
SizeY=28
NbChannels=1
BatchSize=32
[sp.Transformation-1]
Type=ColorSpaceTransformation
ColorSpace=Gray
[sp.Transformation-2]
Type=RescaleTransformation
Width=28
Height=28
Interpolation=LinearAntialias
[sp.Transformation-3]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
EOF2
}
for th in 1 3 ""; do
    recipe "$th" > "$TMP/r$th.ini"
    timeout 300 "$QATCONV" eval "$M" -r "$TMP/r$th.ini" --threads 2 --predictions "$TMP/p$th.txt" \
        > "$TMP/e$th.out" 2>&1 || bad "eval, DecodeThreads=${th:-default}: $(cat "$TMP/e$th.out")"
done
if [ "$(wc -l < "$TMP/p1.txt" 2>/dev/null)" = 120 ] && cmp -s "$TMP/p1.txt" "$TMP/p3.txt" &&
    cmp -s "$TMP/p1.txt" "$TMP/p.txt"; then
    ok "eval with 1, 3 and the default decoder threads: the same 120 predictions"
else bad "eval predictions depend on the decoder thread count"; fi
a=$(grep -o 'top-1 [0-9.]*%' "$TMP/e1.out" | head -1); b=$(grep -o 'top-1 [0-9.]*%' "$TMP/e3.out" | head -1)
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "the same accuracy line ($a)"
else bad "accuracy lines differ: '$a' vs '$b'"; fi

# the oracle: ONNX Runtime on dump_data's tensor of the same split
"$DUMP" "$TMP/r1.ini" test "$TMP/x.raw" > "$TMP/d.out" 2>&1 || bad "dump_data: $(cat "$TMP/d.out")"
"$PYTHON3" - "$M" "$TMP/x.raw" "$TMP/p1.txt" > "$TMP/ort.out" 2>&1 <<'PY'
import sys, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
x = np.fromfile(sys.argv[2], np.float32).reshape(-1, 1, 28, 28)
y = np.concatenate([s.run(None, {s.get_inputs()[0].name: x[i:i + 1]})[0] for i in range(len(x))])
ref = y.argmax(1)
qc = np.loadtxt(sys.argv[3], dtype=np.int64)
top2 = np.sort(y, 1)[:, -2:]
near = np.abs(top2[:, 1] - top2[:, 0]) < 1e-4 * np.abs(top2).max(1)
bad = (ref != qc) & ~near
print(f"agree {int((ref == qc).sum())}/{len(ref)} differ_not_tied {int(bad.sum())}")
sys.exit(1 if bad.any() or len(ref) != 120 else 0)
PY
if [ $? -eq 0 ]; then ok "ONNX Runtime on dump_data's tensor: $(cat "$TMP/ort.out")"
else bad "ONNX Runtime disagrees: $(cat "$TMP/ort.out")"; fi
finish
