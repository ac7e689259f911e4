#!/bin/sh
# test_example.sh - the installed library: `make install DESTDIR=...` from the
# build tree, examples/convert.c compiled against the installed header and
# archive through `pkg-config --cflags --libs qatconv` (PKG_CONFIG_PATH at the
# installed qatconv.pc, its prefix moved into DESTDIR), run on the LeNet fixture
# with a short SAT recipe (1 epoch, 256 learn images, 500 test images), and
# the integer-only model it writes checked: it exists, qatconv loads it, and
# the ONNX checker accepts it (when the onnx module is there).  Without
# Fashion-MNIST or pkg-config the test exits 77 (skipped) saying so.
. "${top_srcdir:-.}/tests/lib.sh"
: "${top_builddir:=.}"
: "${MAKE:=make}"
: "${CC:=cc}"
DATA=/usr/share/datasets/fashion-mnist

if [ ! -r "$DATA/t10k-images-idx3-ubyte.gz" ]; then
    echo "SKIP: no Fashion-MNIST in $DATA (scripts/install-deps installs it)"
    exit 77
fi
if ! command -v pkg-config >/dev/null 2>&1; then
    echo "SKIP: no pkg-config"
    exit 77
fi

DEST=$TMP/inst
if $MAKE -C "$top_builddir" install DESTDIR="$DEST" >"$TMP/install.log" 2>&1; then
    ok "make install DESTDIR"
else
    bad "make install DESTDIR failed:"; tail -20 "$TMP/install.log"; finish; exit 1
fi
PC=$(find "$DEST" -name qatconv.pc | head -n 1)
HDR=$(find "$DEST" -name qatconv.h | head -n 1)
LIB=$(find "$DEST" -name libqatconv.a | head -n 1)
if [ -n "$PC" ] && [ -n "$HDR" ] && [ -n "$LIB" ]; then
    ok "installed qatconv.pc, qatconv.h and libqatconv.a"
else
    bad "installed files missing (pc '$PC', header '$HDR', library '$LIB')"; finish; exit 1
fi

PKG_CONFIG_PATH=$(dirname "$PC"); PKG_CONFIG_LIBDIR=$PKG_CONFIG_PATH
export PKG_CONFIG_PATH PKG_CONFIG_LIBDIR
# the .pc names the configured prefix; the files are under DESTDIR (the -L of
# the dependencies, e.g. OpenBLAS's, stay as they are)
prefix=$(pkg-config --variable=prefix qatconv) ||
    { bad "pkg-config --variable=prefix qatconv"; finish; exit 1; }
FLAGS=$(pkg-config --define-variable=prefix="$DEST$prefix" --cflags --libs qatconv) ||
    { bad "pkg-config --cflags --libs qatconv"; finish; exit 1; }
# shellcheck disable=SC2086
if $CC -std=c11 -Wall -Wextra -Werror "$top_srcdir/examples/convert.c" -o "$TMP/convert" \
        $FLAGS >"$TMP/cc.log" 2>&1; then
    ok "examples/convert.c built with pkg-config against the installed tree ($FLAGS)"
else
    bad "examples/convert.c does not build:"; cat "$TMP/cc.log"; finish; exit 1
fi

sed -e 's/^Validation=.*/Validation=0.0/' -e '/^\[database\]/a Test=0.05' \
    "$top_srcdir/recipes/lenet-sat-w4a4.ini" > "$TMP/short.ini"
if OMP_NUM_THREADS=1 "$TMP/convert" "$top_srcdir/testdata/fashion_lenet_bn.onnx" \
        "$TMP/short.ini" "$TMP/out.onnx" 1 256 >"$TMP/run.out" 2>"$TMP/run.err"; then
    ok "the example converts ($(tail -n 1 "$TMP/run.out"))"
else
    bad "the example failed:"; cat "$TMP/run.out" "$TMP/run.err"; finish; exit 1
fi
if grep -q '^epoch 1/1: loss ' "$TMP/run.out" && grep -q '^test (before): 500 images' "$TMP/run.out"
then
    ok "progress callback: the epoch and the evaluations"
else
    bad "progress callback lines missing:"; cat "$TMP/run.out"
fi
if [ -s "$TMP/out.onnx" ] && "$QATCONV" info "$TMP/out.onnx" >"$TMP/info" 2>&1 &&
   grep -q 'MatMulInteger\|ConvInteger' "$TMP/info"; then
    ok "the integer model exists and loads"
else
    bad "the integer model is missing or does not load:"; cat "$TMP/info"
fi
if "$PYTHON3" -c 'import onnx' 2>/dev/null; then
    if "$PYTHON3" -c 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]))' \
            "$TMP/out.onnx" 2>"$TMP/chk"; then
        ok "onnx.checker accepts the integer model"
    else
        bad "onnx.checker rejects the integer model:"; cat "$TMP/chk"
    fi
fi
if [ -s "$TMP/run.err" ]; then
    bad "the example wrote to stderr:"; cat "$TMP/run.err"
fi
finish
