#!/bin/sh
# test_import.sh - the import normalization (src/import/) on the models of
# tests/import_models.py, one per form third-party exporters write (weights
# through Reshape, Identity, Constant, ConstantOfShape or DequantizeLinear,
# IR 3 weights listed as graph inputs, Conv/MatMul + Add biases, Mul + Add
# scale layers, old BatchNormalization forms, already-quantized models).
# Per model: qatconv's forward (tests/run_model, which reads models as qatconv
# does) equals ONNX Runtime on the original file on 64 inputs; the model
# written back without a recipe gives ONNX Runtime's outputs of the original
# (relative error <= 1e-4, same argmax) and has lost the folded ops; `info`
# counts the parameters (hand-computed in import_models.py); the recipe
# template names every layer; one short QAT epoch on synthetic data with the
# fake and the integer export succeeds, its report lists every layer, and
# qatconv's forward of the fake model equals ONNX Runtime's.  Errors are one
# line: spatial=0 BatchNorm, a QOperator model at load, a QDQ model (and
# qatconv's own fake export) given a recipe.
. "${top_srcdir:-.}/tests/lib.sh"
: "${top_builddir:=.}"
RUN_MODEL=$top_builddir/tests/run_model
IM=$top_srcdir/tests/import_models.py

if ! "$PYTHON3" -c 'import onnx, onnxruntime' 2>/dev/null; then
    echo "SKIP: needs the onnx and onnxruntime Python packages"; exit 77
fi
if ! "$PYTHON3" "$IM" build "$TMP/m" > "$TMP/build.log" 2>&1; then
    bad "import_models.py build: $(tail -n 3 "$TMP/build.log")"; finish; exit 1
fi

cat > "$TMP/syn.ini" <<'EOF2'
Seed=1
Solvers=SGD
Solvers.LearningRate=0.01
Solvers.Momentum=0.9
[database]
Type=Synthetic
NbClasses=10
NbLearn=256
NbTest=64
[sp]
SizeX=8
SizeY=8
NbChannels=1
BatchSize=32
[onnx:Conv_def]
QWeight=LSQ
QWeight.Range=255
[onnx:Fc_def] onnx:Conv_def
[onnx:Relu_def]
ActivationFunction=Linear
QAct=LSQ
QAct.Range=255
EOF2

# the same without quantizers: float fine-tuning (here --epochs 0 and --fold-bn)
sed '/^\[onnx:/,$d' "$TMP/syn.ini" > "$TMP/float.ini"

# expect CASE KEY: the value of KEY in CASE.expect ("" when absent)
expect() { sed -n "s/^$2 //p" "$TMP/m/$1.expect"; }

# fake_forward CASE MODEL: qatconv's forward of MODEL equals ONNX Runtime's
fake_forward() {
    mkdir -p "$TMP/$1.fref"
    cp "$TMP/m/$1.ref/input_0.pb" "$TMP/$1.fref/"
    "$PYTHON3" "$top_srcdir/tests/ort_run.py" "$2" "$TMP/$1.fref/input_0.pb" \
        --outdir "$TMP/$1.fref" > /dev/null 2>&1 &&
        "$RUN_MODEL" "$2" "$TMP/$1.fref" > "$TMP/fref.out" 2>&1
}

for c in $(cat "$TMP/m/LIST"); do
    m=$TMP/m/$c.onnx
    err=$(expect "$c" error)
    if [ -n "$err" ]; then
        expect_error 2 "$c: load refused" -- "$QATCONV" info "$m"
        grep -qF "$err" "$TMP/err" && ok "$c: the line says '$err'" ||
            bad "$c: expected '$err' in: $(cat "$TMP/err")"
        continue
    fi

    # qatconv's forward = ONNX Runtime on the original (64 inputs)
    if "$RUN_MODEL" "$m" "$TMP/m/$c.ref" > "$TMP/run.out" 2>&1; then
        ok "$c: forward = ONNX Runtime ($(tail -n 1 "$TMP/run.out"))"
    else
        bad "$c: forward: $(cat "$TMP/run.out")"
    fi

    # written back without a recipe: the same outputs in ONNX Runtime, the folded ops gone
    w=$TMP/$c.w.onnx
    if ! "$QATCONV" --quiet "$m" -o "$w" 2> "$TMP/err"; then
        bad "$c: write back: $(cat "$TMP/err")"; continue
    fi
    ref=$TMP/m/$(expect "$c" ort); [ "$ref" = "$TMP/m/" ] && ref=$m
    if [ "$(expect "$c" compare)" != 0 ]; then
        if "$PYTHON3" "$IM" compare "$ref" "$w" > "$TMP/cmp.out" 2>&1; then
            ok "$c: written model: $(tail -n 1 "$TMP/cmp.out")"
        else
            bad "$c: written model: $(tail -n 3 "$TMP/cmp.out")"
        fi
    fi
    gone=$(expect "$c" gone)
    if [ -n "$gone" ]; then
        # shellcheck disable=SC2086
        if "$PYTHON3" "$IM" ops "$w" $gone > "$TMP/ops.out" 2>&1; then
            ok "$c: $(cat "$TMP/ops.out")"
        else
            bad "$c: $(cat "$TMP/ops.out")"
        fi
    fi

    kept=$(expect "$c" kept)
    if [ -n "$kept" ]; then
        # shellcheck disable=SC2086
        if "$PYTHON3" "$IM" kept "$w" $kept > "$TMP/ops.out" 2>&1; then
            ok "$c: $(cat "$TMP/ops.out")"
        else
            bad "$c: $(cat "$TMP/ops.out")"
        fi
    fi

    # info and the recipe template count the parameters and layers
    want=$(expect "$c" params)
    got=$("$QATCONV" info "$m" 2>&1 | sed -n 's/^[0-9]* nodes, \([0-9]*\) parameters$/\1/p')
    [ "$got" = "$want" ] && ok "$c: info: $got parameters" ||
        bad "$c: info: '$got' parameters, expected $want"
    layers=$(expect "$c" layers)
    if [ -n "$layers" ]; then
        got=$("$QATCONV" --recipe-template "$m" 2>&1 | sed -n 's/^; \([0-9]*\) quantizable weights.*/\1/p')
        [ "$got" = "$layers" ] && ok "$c: --recipe-template: $got quantizable weights" ||
            bad "$c: --recipe-template: '$got' quantizable weights, expected $layers"
    fi

    # old BatchNormalization forms fold like new ones (a float recipe, no training)
    if [ "$(expect "$c" foldbn)" = 1 ]; then
        fb=$TMP/$c.fb.onnx
        if "$QATCONV" --quiet "$m" -r "$TMP/float.ini" -o "$fb" --epochs 0 --fold-bn \
            > /dev/null 2> "$TMP/err" && "$PYTHON3" "$IM" ops "$fb" BatchNormalization \
            > /dev/null 2>&1 && "$PYTHON3" "$IM" compare "$ref" "$fb" > "$TMP/cmp.out" 2>&1; then
            ok "$c: --fold-bn folds every BatchNormalization: $(tail -n 1 "$TMP/cmp.out")"
        else
            bad "$c: --fold-bn: $(cat "$TMP/err"; tail -n 2 "$TMP/cmp.out" 2>/dev/null)"
        fi
    fi

    terr=$(expect "$c" train_error)
    if [ -n "$terr" ]; then
        OUTFILE=$TMP/$c.t.onnx expect_error 2 "$c: training refused" -- \
            "$QATCONV" --quiet "$m" -r "$TMP/syn.ini" -o "$TMP/$c.t.onnx" --epochs 1
        grep -qF "$terr" "$TMP/err" && ok "$c: the line says '$terr'" ||
            bad "$c: expected '$terr' in: $(cat "$TMP/err")"
    fi

    # one short QAT epoch, the fake and the int exports
    e2e=$(expect "$c" e2e)
    [ -n "$e2e" ] || continue
    f=$TMP/$c.fake.onnx
    if "$QATCONV" --quiet "$m" -r "$TMP/syn.ini" -o "$f" --epochs 1 --threads 1 \
        --report "$TMP/$c.json" > "$TMP/out" 2> "$TMP/err"; then
        n=$(grep -c '"name":' "$TMP/$c.json")
        [ "$n" = "$layers" ] && ok "$c: QAT + fake export, $n layers in the report" ||
            bad "$c: QAT report has $n layers, expected $layers"
        if fake_forward "$c" "$f"; then
            ok "$c: fake model: qatconv forward = ONNX Runtime ($(tail -n 1 "$TMP/fref.out"))"
        else
            bad "$c: fake model forward: $(cat "$TMP/fref.out")"
        fi
        if "$QATCONV" --quiet "$m" -r "$TMP/syn.ini" -o "$TMP/$c.int.onnx" --epochs 1 \
            --threads 1 --format int > "$TMP/out" 2> "$TMP/err" &&
            grep -q "integer export: $layers layers" "$TMP/out"; then
            ok "$c: QAT + int export ($(grep 'integer export' "$TMP/out" | sed 's/^summary: //'))"
        else
            bad "$c: int export: $(cat "$TMP/err" "$TMP/out" | tail -n 3)"
        fi
    elif [ "$e2e" = old ] && grep -q 'needs opset 13 or later' "$TMP/err"; then
        ok "$c: QAT trains; the fake export refuses it for its opset only ($(cat "$TMP/err"))"
    else
        bad "$c: QAT: $(cat "$TMP/err")"
    fi
done

# a MatMul on a 3-D input keeps its Add: no Gemm (testdata's Linear on [N,5,6])
mw=$top_srcdir/testdata/matmul_weight_op13/model.onnx
if "$QATCONV" info "$mw" 2>&1 | grep -q ' MatMul ' && "$QATCONV" info "$mw" 2>&1 | grep -q ' Add '
then ok "MatMul on a 3-D input: MatMul + Add kept"
else bad "MatMul on a 3-D input: $("$QATCONV" info "$mw" 2>&1 | tail -n 4)"; fi

# qatconv's own fake export is a QDQ model: it evaluates, a recipe is refused
f=$TMP/reshape_weight.fake.onnx
if [ -e "$f" ]; then
    OUTFILE=$TMP/again.onnx expect_error 2 "own fake export: training refused" -- \
        "$QATCONV" --quiet "$f" -r "$TMP/syn.ini" -o "$TMP/again.onnx" --epochs 1
    if "$QATCONV" eval "$f" -r "$TMP/syn.ini" --quiet > "$TMP/out" 2>&1; then
        ok "own fake export: eval still reads it"
    else
        bad "own fake export: eval: $(tail -n 2 "$TMP/out")"
    fi
    if "$QATCONV" --quiet "$f" --format int -o "$TMP/rewrite.onnx" 2> "$TMP/err"; then
        ok "own fake export: --format int without a recipe still rewrites it"
    else
        bad "own fake export: --format int: $(cat "$TMP/err")"
    fi
fi
finish
