#!/bin/sh
# test_images.sh - image-folder databases ([database] Type=DIR_Database and
# ILSVRC2012_Database, src/data/imagedb.c, image.c), on folders built here by
# tests/make_images.py:
#  (a) a PNG folder copy of 2,000 + 500 Fashion-MNIST images trains
#      bit-identically to the same images as IDX files (same per-batch log,
#      byte-identical output model).  The IDX files are written sorted by class
#      and the PNG files named so that N2D2's listing (classes in folder order,
#      files by name) and per-class split (Learn=0.8: 200 of each class's 250,
#      the a*.png ones) give the IDX order: see make_images.py;
#  (b) gray, gray+alpha, RGB, RGBA, 16-bit PNG and JPEG folders decode to the
#      network input that numpy (PNG) and PIL (JPEG) give, for 1 and 3
#      channels (tests/dump_data writes it); a JPEG folder in the ILSVRC2012
#      layout splits as N2D2 does and trains;
#  (c) a truncated or corrupt JPEG or PNG, an empty class folder, a missing
#      label file, an image of another size with no transformation: one error
#      line, exit 2, no output; IgnoreCorrupt=1 skips with a count and trains.
# JPEG needs PIL (in /usr/bin/python3 or $PYTHON3): without it the JPEG checks
# are skipped with a message.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
FASHION=/usr/share/datasets/fashion-mnist
DUMP=${top_builddir:-.}/tests/dump_data
MAKE="$top_srcdir/tests/make_images.py"
COMMON="--epochs 1 --seed 3 --threads 2 --quiet"

if [ ! -r "$FASHION/train-images-idx3-ubyte.gz" ]; then
    echo "SKIP: $FASHION not installed"; exit 77
fi
PYIMG=$PYTHON3
for p in "$PYTHON3" /usr/bin/python3; do
    if "$p" -c 'import numpy, PIL' 2>/dev/null; then PYIMG=$p; break; fi
done
"$PYTHON3" "$MAKE" fashion "$FASHION" "$TMP/f" || { bad "making the Fashion-MNIST folders"; finish; exit; }
"$PYIMG" "$MAKE" variety "$TMP/v" || { bad "making the PNG/JPEG folders"; finish; exit; }
HAVE_JPEG=no
[ -d "$TMP/v/jpg" ] && HAVE_JPEG=yes
[ $HAVE_JPEG = yes ] || echo "note: no PIL in $PYTHON3 or /usr/bin/python3: JPEG checks skipped"

# db_recipe SECTION_BODY SIZE CHANNELS [TRANSFORM...]: a recipe (stdout), batches of $BATCH (64)
db_recipe() {
    printf 'Solvers.LearningRate=0.01\nSolvers.Momentum=0.9\n[database]\n%b\n' "$1"
    printf '[sp]\nSizeX=%s\nSizeY=%s\nNbChannels=%s\nBatchSize=%s\n' "$2" "$2" "$3" "${BATCH:-64}"
    n=1
    shift 3
    for t in "$@"; do
        printf '[sp.Transformation-%d]\n%b\n' $n "$t"; n=$((n + 1))
    done
    printf '[sp.Transformation-%d]\nType=RangeAffineTransformation\nFirstOperator=Divides\nFirstValue=255.0\n' $n
}
RESCALE28='Type=RescaleTransformation\nWidth=28\nHeight=28'

# ---- (a) PNG folder == IDX files ----------------------------------------------------------------
db_recipe "Type=MNIST_IDX_Database\nDataPath=$TMP/f/idx\nValidation=0.0" 28 1 > "$TMP/idx.ini"
db_recipe "Type=DIR_Database\nDataPath=$TMP/f/dir\nLearn=0.8\nTest=0.2" 28 1 > "$TMP/dir.ini"
"$QATCONV" "$M" -r "$TMP/idx.ini" -o "$TMP/idx.onnx" $COMMON --log "$TMP/idx.csv" > "$TMP/idx.out" 2>&1 ||
    bad "IDX run: $(cat "$TMP/idx.out")"
"$QATCONV" "$M" -r "$TMP/dir.ini" -o "$TMP/dir.onnx" $COMMON --log "$TMP/dir.csv" > "$TMP/dir.out" 2>&1 ||
    bad "DIR_Database run: $(cat "$TMP/dir.out")"
if [ -s "$TMP/idx.csv" ] && cmp -s "$TMP/idx.csv" "$TMP/dir.csv"; then
    ok "PNG folder: the same loss and accuracy on every batch as IDX ($(wc -l < "$TMP/dir.csv") lines)"
else bad "PNG folder and IDX batch logs differ"; diff "$TMP/idx.csv" "$TMP/dir.csv" | head -5; fi
if [ -s "$TMP/idx.onnx" ] && cmp -s "$TMP/idx.onnx" "$TMP/dir.onnx"; then
    ok "PNG folder: output model byte-identical to IDX's"
else bad "PNG folder and IDX output models differ"; fi
a=$(grep '^summary: test' "$TMP/idx.out"); b=$(grep '^summary: test' "$TMP/dir.out")
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "PNG folder: same test accuracies ($b)"
else bad "test accuracies differ: IDX '$a', DIR '$b'"; fi
# and the oracle of the order: the learn split's labels are the IDX file's
"$DUMP" "$TMP/dir.ini" learn "$TMP/learn.raw" > "$TMP/dump.out" 2>&1 &&
"$PYTHON3" - "$TMP" > "$TMP/ord.out" 2>&1 <<'PY'
import sys, numpy as np
t = sys.argv[1]
x = np.fromfile(t + "/learn.raw", np.float32).reshape(-1, 28, 28)
raw = open(t + "/f/idx/train-images-idx3-ubyte", "rb").read()
ref = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28) / np.float32(255)
assert x.shape == ref.shape, (x.shape, ref.shape)
assert np.array_equal(x, ref.astype(np.float32)), "learn split differs from the IDX file"
lab = np.loadtxt(t + "/learn.raw.labels", dtype=np.int64)
ref_lab = np.frombuffer(open(t + "/f/idx/train-labels-idx1-ubyte", "rb").read(), np.uint8, offset=8)
assert np.array_equal(lab, ref_lab)
PY
if [ $? -eq 0 ]; then ok "PNG folder learn split = the IDX file, image by image (numpy)"
else bad "learn split vs IDX: $(cat "$TMP/dump.out" "$TMP/ord.out")"; fi

# ---- (b) formats: decoded inputs vs numpy / PIL ------------------------------------------------
compare() {   # compare KIND CHANNELS
    db_recipe "Type=DIR_Database\nDataPath=$TMP/v/$1\nLearn=1.0" 32 "$2" > "$TMP/$1$2.ini"
    sed -i '/^\[sp.Transformation/,$d' "$TMP/$1$2.ini"       # raw 0..255 values
    if "$DUMP" "$TMP/$1$2.ini" learn "$TMP/$1$2.raw" > "$TMP/$1$2.out" 2>&1 &&
        "$PYTHON3" - "$TMP/v/$1_c$2.npy" "$TMP/$1$2.raw" >> "$TMP/$1$2.out" 2>&1 <<'PY'
import sys, numpy as np
e = np.load(sys.argv[1])
g = np.fromfile(sys.argv[2], np.float32)
assert g.size == e.size, (g.size, e.shape)
d = np.abs(g.reshape(e.shape) - e).max()
assert d == 0, "max abs difference %g" % d
print(e.shape[0], "images")
PY
    then ok "$1 folder, $2 channel(s): input identical to $3 ($(tail -1 "$TMP/$1$2.out"))"
    else bad "$1 folder, $2 channel(s): $(cat "$TMP/$1$2.out")"; fi
}
compare png 3 "numpy (gray, GA, RGB, RGBA, 16-bit RGB and gray PNG)"
compare png 1 "numpy (OpenCV luma on RGB, alpha dropped, 16-bit as v*255/65535)"
if [ $HAVE_JPEG = yes ]; then
    compare jpg 3 "PIL's decoding (4:2:0, 4:4:4, gray JPEG)"
    compare jpg 1 "PIL's decoding + OpenCV luma"
fi

# ILSVRC2012 layout from the JPEG (else PNG) folder: train/<synset>/, val/ + val.txt, synsets.txt
K=png; [ $HAVE_JPEG = yes ] && K=jpg
IL=$TMP/ilsvrc
mkdir -p "$IL/train" "$IL/val"
i=0
for d in "$TMP/v/$K"/*/; do
    s=n0$(basename "$d"); mkdir -p "$IL/train/$s"; cp "$d"/* "$IL/train/$s/"; echo "$s" >> "$IL/synsets.txt"
done
for f in "$IL"/train/*/*; do   # every training image also in val/ with its class id
    cls=$(grep -n "^$(basename "$(dirname "$f")")\$" "$IL/synsets.txt" | cut -d: -f1)
    cp "$f" "$IL/val/v$i.${f##*.}"; echo "v$i.${f##*.} $((cls - 1))" >> "$IL/val.txt"; i=$((i + 1))
done
BATCH=2 db_recipe "Type=ILSVRC2012_Database\nDataPath=$IL\nLearn=0.5" 28 1 "$RESCALE28" > "$TMP/il.ini"
counts=""
for s in learn validation test; do
    "$DUMP" "$TMP/il.ini" $s "$TMP/il_$s.raw" > "$TMP/il_$s.out" 2>&1 || bad "ILSVRC2012 $s: $(cat "$TMP/il_$s.out")"
    counts="$counts $(cut -d' ' -f1 "$TMP/il_$s.out")"
done
# n training images: round(n/2) learn, the rest + all of val/ test, val/ validates
n=$i
want=" $(( (n + 1) / 2 )) $n $(( n - (n + 1) / 2 + n ))"
if [ "$counts" = "$want" ]; then ok "ILSVRC2012 layout: learn/validation/test = $counts"
else bad "ILSVRC2012 split sizes $counts, expected $want"; fi
if [ -s "$IL/val.txt" ] &&
    [ "$(cat "$TMP/il_validation.raw.labels")" = "$(sed 's/.* //' "$IL/val.txt")" ]; then
    ok "ILSVRC2012 layout: val/ labels are val.txt's"
else bad "ILSVRC2012 val labels differ from val.txt"; fi
"$QATCONV" "$M" -r "$TMP/il.ini" -o "$TMP/il.onnx" $COMMON > "$TMP/il.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ -s "$TMP/il.onnx" ]; then ok "ILSVRC2012 layout ($K) trains (Rescale to 28x28 gray)"
else bad "ILSVRC2012 training: exit $rc: $(cat "$TMP/il.out")"; fi

# ---- (c) errors -----------------------------------------------------------------------------------
OUTFILE=$TMP/none.onnx
mkbad() {   # mkbad NAME SRC_FOLDER: a copy of SRC in $TMP/NAME
    rm -rf "${TMP:?}/$1"; cp -r "$2" "$TMP/$1"
}
train_on() {   # train_on FOLDER [EXTRA_DB_KEYS] > recipe
    db_recipe "Type=DIR_Database\nDataPath=$1\nLearn=0.8\nTest=0.2${2:-}" 28 1 "$RESCALE28"
}
mkbad pngtrunc "$TMP/f/dir"
head -c 300 "$TMP/f/dir/3/a00007.png" > "$TMP/pngtrunc/3/a00007.png"
train_on "$TMP/pngtrunc" > "$TMP/c1.ini"
expect_error 2 "truncated PNG" -- "$QATCONV" "$M" -r "$TMP/c1.ini" -o "$OUTFILE" $COMMON
grep -q 'pngtrunc/3/a00007.png' "$TMP/err" || bad "the truncated PNG error does not name the file"

mkbad pngcrc "$TMP/f/dir"
"$PYTHON3" -c '
import sys; p = sys.argv[1]; d = bytearray(open(p, "rb").read()); d[60] ^= 0xff; open(p, "wb").write(d)
' "$TMP/pngcrc/5/a00011.png"
train_on "$TMP/pngcrc" > "$TMP/c2.ini"
expect_error 2 "corrupt PNG (a flipped IDAT byte)" -- "$QATCONV" "$M" -r "$TMP/c2.ini" -o "$OUTFILE" $COMMON

mkbad notimg "$TMP/f/dir"
echo "not an image" > "$TMP/notimg/0/a00001.png"
train_on "$TMP/notimg" > "$TMP/c3.ini"
expect_error 2 "a text file named .png" -- "$QATCONV" "$M" -r "$TMP/c3.ini" -o "$OUTFILE" $COMMON

if [ $HAVE_JPEG = yes ]; then
    mkbad jpgtrunc "$TMP/v/jpg"
    f=$TMP/jpgtrunc/bird/1.jpg; head -c $(( $(wc -c < "$f") / 2 )) "$TMP/v/jpg/bird/1.jpg" > "$f"
    BATCH=2 db_recipe "Type=DIR_Database\nDataPath=$TMP/jpgtrunc\nLearn=0.5" 28 1 "$RESCALE28" > "$TMP/c4.ini"
    expect_error 2 "truncated JPEG" -- "$QATCONV" "$M" -r "$TMP/c4.ini" -o "$OUTFILE" $COMMON
    grep -q 'jpgtrunc/bird/1.jpg' "$TMP/err" || bad "the truncated JPEG error does not name the file"
    mkbad jpgbad "$TMP/v/jpg"
    # markers (FF C4) written over the entropy-coded data after the SOS marker
    "$PYTHON3" -c '
import sys
p = sys.argv[1]; d = bytearray(open(p, "rb").read()); i = d.find(b"\xff\xda")
for k in range(i + 20, len(d) - 2, 7):
    d[k], d[k + 1] = 0xff, 0xc4
open(p, "wb").write(d)' "$TMP/jpgbad/ship/0.jpg"
    BATCH=2 db_recipe "Type=DIR_Database\nDataPath=$TMP/jpgbad\nLearn=0.5" 28 1 "$RESCALE28" > "$TMP/c5.ini"
    expect_error 2 "corrupt JPEG (markers in the entropy-coded data)" -- "$QATCONV" "$M" -r "$TMP/c5.ini" -o "$OUTFILE" $COMMON
    grep -q 'jpgbad/ship/0.jpg' "$TMP/err" || bad "the corrupt JPEG error does not name the file"
    # 32x32 images, SizeX=28 and no transformation that resizes
    BATCH=2 db_recipe "Type=DIR_Database\nDataPath=$TMP/v/jpg\nLearn=0.5" 28 1 > "$TMP/c6.ini"
    expect_error 2 "32x32 images for a 28x28 input, no Rescale" -- "$QATCONV" "$M" -r "$TMP/c6.ini" -o "$OUTFILE" $COMMON
    grep -q 'v/jpg/.*32x32' "$TMP/err" || bad "the size error does not name the file and its size"
fi

mkbad empty "$TMP/f/dir"
mkdir "$TMP/empty/9b"
train_on "$TMP/empty" > "$TMP/c7.ini"
expect_error 2 "an empty class folder" -- "$QATCONV" "$M" -r "$TMP/c7.ini" -o "$OUTFILE" $COMMON
grep -q 'empty/9b' "$TMP/err" || bad "the empty-folder error does not name it"
train_on "$TMP/no/such/folder" > "$TMP/c8.ini"
expect_error 2 "a missing DataPath folder" -- "$QATCONV" "$M" -r "$TMP/c8.ini" -o "$OUTFILE" $COMMON

mv "$IL/val.txt" "$IL/val.txt.away"
expect_error 2 "ILSVRC2012 without val.txt" -- "$QATCONV" "$M" -r "$TMP/il.ini" -o "$OUTFILE" $COMMON
grep -q 'val.txt' "$TMP/err" || bad "the missing val.txt error does not name it"
mv "$IL/val.txt.away" "$IL/val.txt"
mv "$IL/synsets.txt" "$IL/synsets.away"
expect_error 2 "ILSVRC2012 without synsets.txt" -- "$QATCONV" "$M" -r "$TMP/il.ini" -o "$OUTFILE" $COMMON
mv "$IL/synsets.away" "$IL/synsets.txt"

# IgnoreCorrupt=1: skipped with a count, training goes on
train_on "$TMP/pngtrunc" '\nIgnoreCorrupt=1' > "$TMP/skip.ini"
"$QATCONV" "$M" -r "$TMP/skip.ini" -o "$TMP/skip.onnx" $COMMON > "$TMP/skip.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ -s "$TMP/skip.onnx" ] &&
    grep -q 'warning: .*1 of 2000 images of the learn split unreadable: skipped (IgnoreCorrupt=1)' "$TMP/skip.out" &&
    ! grep -q 'error:' "$TMP/skip.out"; then
    ok "IgnoreCorrupt=1: $(grep -c 'skipped' "$TMP/skip.out") warning lines, the count, training done"
else bad "IgnoreCorrupt=1: exit $rc: $(cat "$TMP/skip.out")"; fi

finish
