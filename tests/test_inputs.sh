#!/bin/sh
# test_inputs.sh - models whose data input is declared as third-party exporters
# declare it (tests/input_models.py builds them; plan/inputs.h binds them):
#   fixed1  a fixed batch of 1 with the batch baked into a Reshape constant;
#   flat0   the same through Flatten(axis=0): refused with one line naming it;
#   symhw   symbolic height and width ([N,3,H,W]);
#   nhwc    channels last ([N,8,8,3] then Transpose 0,3,1,2);
#   fp16    float16 everywhere (input, weights, output);
#   cast16, castbf16  a float32 model that rounds a tensor through float16 /
#           bfloat16 (Cast there and back): qatconv's forward rounds as ORT does.
# For each: qatconv's forward (tests/run_model, 64 inputs at once) equals ONNX
# Runtime on the original file (one input at a time for the fixed batch;
# the float32 twin for fp16, whose weights are float16-exact), the model
# written back without a recipe is identical in ONNX Runtime
# (tests/ort_compare.py), one epoch of SAT W4A4 on Type=Synthetic data at batch
# 8 trains, the written model's input/output shapes and types are the
# documented ones, and ONNX Runtime runs it and agrees with qatconv.
. "${top_srcdir:-.}/tests/lib.sh"
H=$top_srcdir/tests/input_models.py
RUN_MODEL=${top_builddir:-.}/tests/run_model

if ! "$PYTHON3" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "SKIP: python3 with onnx, onnxruntime and numpy needed (scripts/install-deps)"
    exit 77
fi
if [ ! -x "$RUN_MODEL" ]; then
    bad "$RUN_MODEL not built (make check builds it)"
    finish; exit 1
fi
"$PYTHON3" "$H" build "$TMP" || { bad "input_models.py build"; finish; exit 1; }

# recipe C H W CLASSES [extra lines]: SAT W4A4, Type=Synthetic, batch 8
recipe() {
    cat <<EOF
Epochs=1
Seed=3
Solvers=SGD
Solvers.LearningRate=0.01
[database]
Type=Synthetic
NbClasses=$4
NbLearn=64
NbTest=32
[sp]
SizeX=$3
SizeY=$2
NbChannels=$1
BatchSize=8
[sp.Transformation-1]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
[onnx:Conv_def]
QWeight=SAT
QWeight.Range=15
[onnx:Fc_def] onnx:Conv_def
[onnx:Relu_def]
ActivationFunction=Linear
QAct=SAT
QAct.Range=15
${5:-}
EOF
}

# forward NAME MODEL REF: run_model on MODEL against ONNX Runtime on REF (64 inputs)
forward() {
    mkdir -p "$TMP/$1.d"
    if "$PYTHON3" "$H" ref "$3" "$TMP/$1.d" 64 &&
        out=$("$RUN_MODEL" "$2" "$TMP/$1.d" 2>&1); then
        ok "$1: qatconv forward = ONNX Runtime on 64 inputs ($out)"
    else
        bad "$1: forward differs from ONNX Runtime: $out"
    fi
}

# writeback NAME [options]: written back without a recipe, identical in ONNX Runtime
writeback() {
    m=$TMP/$1.onnx
    if "$QATCONV" "$m" -o "$TMP/$1.wb.onnx" >/dev/null 2>"$TMP/err" &&
        out=$("$PYTHON3" "$top_srcdir/tests/ort_compare.py" "$m" "$TMP/$1.wb.onnx" 2>&1); then
        ok "$1: written back identical in ONNX Runtime"
    else
        bad "$1: write-back: $(cat "$TMP/err") $out"
    fi
}

# expect_io NAME FILE WANT: the written model's input/output types and shapes
expect_io() {
    got=$("$PYTHON3" "$H" io "$2")
    if [ "$got" = "$3" ]; then ok "$1: written model is $got"; else bad "$1: written $got, want $3"; fi
}

# train NAME C H W FORMAT [options]: one epoch of SAT W4A4 at batch 8
train() {
    n=$1 c=$2 h=$3 w=$4 fmt=$5
    shift 5
    recipe "$c" "$h" "$w" 10 > "$TMP/$n.ini"
    if "$QATCONV" "$TMP/$n.onnx" -r "$TMP/$n.ini" -o "$TMP/$n.$fmt.onnx" --format "$fmt" \
            --quiet "$@" >"$TMP/out" 2>"$TMP/err"; then
        ok "$n: one SAT W4A4 epoch at batch 8, --format $fmt $* ($(grep -o 'after [0-9.]*%' "$TMP/out"))"
    else
        bad "$n: training failed: $(cat "$TMP/err")"
    fi
}

# ---- a fixed batch of 1 ------------------------------------------------------------
forward fixed1 "$TMP/fixed1.onnx" "$TMP/fixed1.onnx"
writeback fixed1
train fixed1 3 8 8 fake
expect_io "fixed1 fake" "$TMP/fixed1.fake.onnx" "float32 [1,3,8,8] float32 [1,10]"
s=$("$PYTHON3" "$H" shape "$TMP/fixed1.fake.onnx" flat_shape)
[ "$s" = "[1, 512]" ] && ok "fixed1 fake: Reshape constant as declared ($s)" ||
    bad "fixed1 fake: Reshape constant $s, want [1, 512]"
forward "fixed1-fake" "$TMP/fixed1.fake.onnx" "$TMP/fixed1.fake.onnx"
train fixed1 3 8 8 fake --dynamic-batch
expect_io "fixed1 fake --dynamic-batch" "$TMP/fixed1.fake.onnx" "float32 [N,3,8,8] float32 [N,10]"
s=$("$PYTHON3" "$H" shape "$TMP/fixed1.fake.onnx" flat_shape)
[ "$s" = "[0, 512]" ] && ok "fixed1 --dynamic-batch: Reshape constant rewritten ($s)" ||
    bad "fixed1 --dynamic-batch: Reshape constant $s, want [0, 512]"
forward "fixed1-dynamic" "$TMP/fixed1.fake.onnx" "$TMP/fixed1.fake.onnx"
"$QATCONV" "$TMP/fixed1.onnx" -o "$TMP/fixed1.dyn.onnx" --dynamic-batch >/dev/null 2>&1 &&
    expect_io "fixed1 written --dynamic-batch" "$TMP/fixed1.dyn.onnx" "float32 [N,3,8,8] float32 [N,10]"
forward "fixed1-dyn-writeback" "$TMP/fixed1.dyn.onnx" "$TMP/fixed1.onnx"
train fixed1 3 8 8 fake --batch 1
recipe 3 8 8 10 > "$TMP/flat0.ini"
OUTFILE=$TMP/flat0.out.onnx expect_error 2 "flat0: Flatten(axis=0) cannot be rebatched" -- \
    "$QATCONV" "$TMP/flat0.onnx" -r "$TMP/flat0.ini" -o "$TMP/flat0.out.onnx" --quiet
train flat0 3 8 8 float --batch 1

# ---- symbolic height and width ---------------------------------------------------
forward symhw "$TMP/symhw.onnx" "$TMP/symhw.onnx"
writeback symhw
train symhw 3 12 10 fake
expect_io "symhw fake" "$TMP/symhw.fake.onnx" "float32 [N,3,H,W] float32 [N,10]"
forward "symhw-fake" "$TMP/symhw.fake.onnx" "$TMP/symhw.fake.onnx"
"$QATCONV" --recipe-template "$TMP/symhw.onnx" > "$TMP/symhw.tpl.ini" 2>"$TMP/err" &&
    grep -q '^SizeX=224$' "$TMP/symhw.tpl.ini" && grep -q 'symbolic' "$TMP/symhw.tpl.ini" &&
    ok "symhw: --recipe-template writes 224x224 and says the size is symbolic" ||
    bad "symhw: template: $(cat "$TMP/err")"

# ---- channels last ------------------------------------------------------------------
forward nhwc "$TMP/nhwc.onnx" "$TMP/nhwc.onnx"
writeback nhwc
"$QATCONV" --recipe-template "$TMP/nhwc.onnx" > "$TMP/nhwc.tpl.ini" 2>"$TMP/err" &&
    grep -q '^Transpose=1$' "$TMP/nhwc.tpl.ini" && grep -q '^NbChannels=3$' "$TMP/nhwc.tpl.ini" &&
    grep -q '^SizeX=8$' "$TMP/nhwc.tpl.ini" &&
    ok "nhwc: --recipe-template writes [onnx] Transpose=1 and 3x8x8" ||
    bad "nhwc: template: $(cat "$TMP/err")"
train nhwc 3 8 8 fake
expect_io "nhwc fake" "$TMP/nhwc.fake.onnx" "float32 [N,8,8,3] float32 [N,10]"
forward "nhwc-fake" "$TMP/nhwc.fake.onnx" "$TMP/nhwc.fake.onnx"
# the key wins over the detection: Transpose=0 feeds NCHW images, which do not fit
recipe 3 8 8 10 "[onnx]
Type=ONNX
Transpose=0" > "$TMP/nhwc0.ini"
OUTFILE=$TMP/nhwc0.onnx expect_error 2 "nhwc: [onnx] Transpose=0 feeds NCHW" -- \
    "$QATCONV" "$TMP/nhwc.onnx" -r "$TMP/nhwc0.ini" -o "$TMP/nhwc0.onnx" --quiet

# ---- float16 ---------------------------------------------------------------------------
forward fp16 "$TMP/fp16.onnx" "$TMP/fp16_f32.onnx"
writeback fp16
train fp16 3 8 8 float
expect_io "fp16 float" "$TMP/fp16.float.onnx" "float16 [N,3,8,8] float16 [N,10]"
cp "$TMP/fp16.float.onnx" "$TMP/fp16.float.keep.onnx"
train fp16 3 8 8 fake
expect_io "fp16 fake" "$TMP/fp16.fake.onnx" "float16 [N,3,8,8] float16 [N,10]"
cp "$TMP/fp16.fake.onnx" "$TMP/fp16.fake.keep.onnx"
train fp16 3 8 8 fake --no-keep-dtype
expect_io "fp16 fake --no-keep-dtype" "$TMP/fp16.fake.onnx" "float32 [N,3,8,8] float32 [N,10]"
forward "fp16-fake-f32" "$TMP/fp16.fake.onnx" "$TMP/fp16.fake.onnx"
if out=$("$PYTHON3" "$H" agree "$TMP/fp16.fake.keep.onnx" "$TMP/fp16.fake.onnx" \
        "$TMP/fp16-fake-f32.d" 2>&1); then
    ok "fp16 fake: the float16-boundary model predicts what the float32 one does ($out)"
else
    bad "fp16 fake: float16 boundary disagrees: $out"
fi

# ---- Cast to a half type inside a float32 model ----------------------------------------
for m in cast16 castbf16; do
    forward "$m" "$TMP/$m.onnx" "$TMP/$m.onnx"
    writeback "$m"
done

finish
