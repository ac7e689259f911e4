#!/bin/sh
# test_int_concat_zp.sh - the int export of Concat, AveragePool and channel slices of levels
# with zero points (signed LSQ activations, QAct.Signed=1, stored as uint8 q + 128):
# - a SqueezeNet fire module in miniature (tests/int_concat_model.py) with signed 4-bit
#   quantizers on both concatenated branches (a MobileNet/DenseNet-style Concat of signed
#   LSQ outputs), and with a signed 4-bit branch next to an unsigned 8-bit one (their
#   union spans more than 256 levels of the larger scale: one coarser grid);
# - tests/int_zp_model.py avgpool: AveragePool of signed levels with padding excluded
#   from the count (count_include_pad=0) and included (=1), and of unsigned levels with
#   ceil_mode=1 (a last window of one column/row), and a head's ReduceMean over the
#   spatial axes (torchvision's x.mean([2, 3])) with a quantizer of its own;
# - tests/int_zp_model.py split: ShuffleNet's channel split as torch exports it (Slices
#   along the channels), a strided channel Slice, a Concat of unsigned and signed levels
#   and a channel Gather;
# each trained briefly, then exported with --format int: every integer tensor equals ONNX
# Runtime's on 200 images (tests/int_layers.py + tests/run_model), no float op lies
# between the input quantizer and the output (tests/int_check.py), and each pooling /
# Concat step computes what the fake export's float ops compute on the same levels
# (tests/int_fake_levels.py, ONNX Runtime as the oracle);
# - a layer that reads a float value through ops that keep values is one error line
#   naming the op that computes it (an LRN behind a MaxPool, as in AlexNet).
. "${top_srcdir:-.}/tests/lib.sh"
DATA=/usr/share/datasets/fashion-mnist
RUN_MODEL=${top_builddir:-.}/tests/run_model
if ! "$PYTHON3" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "SKIP: onnx, onnxruntime or numpy missing"; exit 77
fi
if [ ! -d "$DATA" ]; then
    echo "SKIP: $DATA missing"; exit 77
fi

# recipe: LSQ W4 weights, unsigned LSQ A4 on the ReLUs, then the sections given as
# NAME:RANGE:SIGNED
recipe() {
    printf 'Solvers.LearningRate=0.01\nSolvers.Momentum=0.9\n'
    fashion_sections 128
    printf '[onnx:Conv_def]\nQWeight=LSQ\nQWeight.Range=15\n[onnx:Fc_def] onnx:Conv_def\n'
    printf '[onnx:Relu_def]\nActivationFunction=Linear\nQAct=LSQ\nQAct.Range=15\n'
    for a in "$@"; do
        IFS=: read -r sec range sgn <<EOF2
$a
EOF2
        printf '[%s]\nQAct=LSQ\nQAct.Range=%s\nQAct.Signed=%s\nQActSolver.LearningRate=0.001\n' \
            "$sec" "$range" "$sgn"
    done
}

# model NAME GENERATOR-ARGS... -- RECIPE-SECTIONS...: the float model, trained briefly
# with that recipe into $TMP/NAME_fake.onnx
model() {
    name=$1; shift
    gen=""
    while [ "$1" != -- ]; do gen="$gen $1"; shift; done
    shift
    recipe "$@" > "$TMP/$name.ini"
    # shellcheck disable=SC2086
    if "$PYTHON3" $gen "$TMP/$name.onnx" &&
        "$QATCONV" "$TMP/$name.onnx" -r "$TMP/$name.ini" -o "$TMP/${name}_fake.onnx" \
            --epochs 1 --limit "$(scaled 2048 512)" --no-eval --quiet > "$TMP/$name.train" 2>&1
    then
        ok "$name: trained, fake-quant export written"
    else
        bad "$name: training: $(cat "$TMP/$name.train" 2>/dev/null)"
    fi
}

# int_export NAME [STEP...]: the int export of $TMP/NAME_fake.onnx, exact against ONNX
# Runtime at every layer, integer-only, each STEP (tests/int_fake_levels.py) as the fake
# export computes it
int_export() {
    name=$1; shift
    int_exact "$TMP/${name}_fake.onnx" "$name" 200 || return
    [ $# -gt 0 ] || return
    if out=$("$PYTHON3" "$top_srcdir/tests/int_fake_levels.py" "$TMP/${name}_fake.onnx" \
            "$TMP/${name}_int.onnx" 200 "$@" 2>&1); then
        ok "$name: $(echo "$out" | tr '\n' ';')"
    else
        bad "$name: the int export's steps against the fake export's: $out"
    fi
}

CC="$top_srcdir/tests/int_concat_model.py"
ZP="$top_srcdir/tests/int_zp_model.py"

# a Concat of two signed 4-bit branches: one grid, zero point 128
model ccs "$CC" -- expand1x1_relu:15:1 expand3x3_relu:15:1
int_export ccs concat@concat=expand1x1_relu,expand3x3_relu
# the input of the largest scale passes unchanged (the levels its quantizer's
# requantization ends with), the other is requantized to its grid
if out=$("$PYTHON3" - "$TMP/ccs_int.onnx" <<'PY' 2>&1
import sys, onnx
m = onnx.load(sys.argv[1])
cat = next(n for n in m.graph.node if n.op_type == "Concat")
own = [i for i in cat.input if i.endswith("_relu_quantized_Cast_2")]
assert len(own) == 1 and len(cat.input) == 2, "Concat inputs %s" % list(cat.input)
print("Concat of %s (unchanged) and %s (requantized)" % (own[0], (set(cat.input) - set(own)).pop()))
PY
); then ok "ccs: $out"; else bad "ccs: $out"; fi

# a signed 4-bit branch next to an unsigned 8-bit one
model ccm "$CC" -- expand1x1_relu:15:1 expand3x3_relu:255:0
int_export ccm

# AveragePool of signed levels (padding excluded, included), of unsigned ones (ceil_mode)
model av "$ZP" avgpool -- c1_bn:15:1 c2_bn:15:1 p1:15:1 p2:15:1 p3:15:0 mean:255:0
int_export av p1=c1_bn p2=c2_bn p3=c3_relu mean=c4_relu

# channel Slices, a Concat of unsigned and signed levels, a channel Gather
model sp "$ZP" split -- c2_bn:15:1
int_export sp concat@concat=c1_relu,c2_bn c4_relu=c3_relu

# a channel Slice and a channel Gather of per-channel integer terms (BatchNorm outputs
# no quantizer has made levels yet)
model pe "$ZP" pending --
int_export pe sl_relu=- g_relu=sl_relu

# a layer reading a float value through a MaxPool: the error names the LRN behind it
model lrn "$ZP" lrn --
OUTFILE=$TMP/lrn_int.onnx expect_error 2 "int export of a Conv behind LRN + MaxPool" -- \
    "$QATCONV" "$TMP/lrn_fake.onnx" --format int -o "$TMP/lrn_int.onnx"
if grep -q "node 'c2': input 'pool' (output of MaxPool 'pool', computed by LRN 'lrn') is not a \
quantized activation" "$TMP/err"; then
    ok "the error names the LRN behind the MaxPool"
else
    bad "the error does not name the LRN behind the MaxPool: $(cat "$TMP/err")"
fi

finish
