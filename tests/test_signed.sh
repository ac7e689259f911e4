#!/bin/sh
# test_signed.sh - signed LSQ activation quantizers (QAct=LSQ with QAct.Signed=1):
# - the tiny ResNet fixture with signed 4-bit ([-8, 7]) quantizers on the BatchNorm
#   outputs that feed its residual Adds (values of either sign), trained briefly: the fake
#   export passes onnx.checker full_check, every signed quantizer is an int8
#   QuantizeLinear/DequantizeLinear pair with zero point 0 and a Clip to [-8, 7] on the
#   levels, the unsigned ones stay uint8, and ONNX Runtime predicts what qatconv's
#   evaluation of the export predicts (tests/ort_eval.py, at most 10 of 10,000 images may
#   differ, as in test_qat.sh);
# - the same at 8 bits ([-128, 127], no Clip: QuantizeLinear saturates to int8's range);
# - a small model with a linear bottleneck and a residual Add without an activation
#   (tests/signed_model.py, trained in float first): --recipe-template proposes signed
#   LSQ quantizers on the two values its layers read that can be negative, SAT on the
#   ReLUs; after QAT with that recipe every Conv/Gemm of the fake export reads a
#   DequantizeLinear, and ONNX Runtime agrees with qatconv (as written: all but boundary
#   flips; with its QDQ fusion, at most 30 boundary flips of relative margin < 0.5 %);
# - the same model with a linear head (the Gemm reads signed values): the template puts a
#   signed quantizer on that BatchNorm too;
# - the int export of all four: every integer tensor equals ONNX Runtime's on 200
#   images, no float op lies between the input quantizer and the output, and ONNX
#   Runtime's top-1 of it is within 0.5 points of qatconv's figure for the fake export;
# - a Concat of signed and unsigned levels (tests/int_concat_model.py) exports: its
#   integers equal ONNX Runtime's at every layer and no float op remains (the grid
#   chosen for the Concat: tests/test_int_concat_zp.sh);
# - QAct.Signed=1 with QAct=SAT (CG-PACT is unsigned) and a Signed value other than 0/1
#   are one error line naming the recipe file and line.
# Under QC_TEST_SCALE=small (tests/lib.sh) every case and check runs on the first 2,000
# test images (at most 2 or 6 of them may differ where 10 or 30 of 10,000 may), the int
# exports on 100 images, and the two float trainings on 8,192 images instead of 60,000.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_resnet_tiny.onnx
DATA=/usr/share/datasets/fashion-mnist
RUN_MODEL=${top_builddir:-.}/tests/run_model
NIMG=$(scaled 200 100)
FLOAT_LIMIT=$(scaled "" "--limit 8192")
if ! "$PYTHON3" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    echo "SKIP: onnx, onnxruntime or numpy missing"; exit 77
fi
if [ ! -d "$DATA" ]; then
    echo "SKIP: $DATA missing"; exit 77
fi

# the BatchNorm outputs that reach an Add without a ReLU
SIGNED="/block1/bn2/BatchNormalization /block2/bn2/BatchNormalization
/block2/down/down.1/BatchNormalization"

# recipe ACT_RANGE: LSQ W4A4 (8-bit first and last layers) as recipes/resnet-lsq-w4a4.ini,
# unsigned on the ReLUs, signed with Range ACT_RANGE on the BatchNorms in $SIGNED
recipe() {
    lsq_recipe 0.002 /stem/stem.0/Conv /fc/Gemm
    for b in $SIGNED; do
        printf '[%s]\nQAct=LSQ\nQAct.Signed=1\nQAct.Range=%s\nQActSolver.LearningRate=0.001\n' \
            "$b" "$1"
    done
}

# check_qdq MODEL QN QP: every activation QuantizeLinear of a $SIGNED value is int8 with
# zero point 0 (and a Clip to [-QN, QP] unless that is int8's range), the others uint8
check_qdq() {
    "$PYTHON3" - "$1" "$2" "$3" $SIGNED <<'PY'
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
qn, qp = int(sys.argv[2]), int(sys.argv[3])
signed = [b + "_output_0" for b in sys.argv[4:]]
inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
users = {}
for n in m.graph.node:
    for i in n.input:
        users.setdefault(i, []).append(n)
ns = nu = 0
for n in m.graph.node:
    if n.op_type != "QuantizeLinear":
        continue
    z = inits[n.input[2]]
    if n.input[0].startswith(tuple(signed)):
        assert z.dtype.name == "int8" and z == 0, n.name + ": zero point %r" % z
        nxt = users[n.output[0]][0]
        if (qn, qp) != (128, 127):
            assert nxt.op_type == "Clip", n.name + ": no Clip"
            lo, hi = inits[nxt.input[1]], inits[nxt.input[2]]
            assert lo.dtype.name == "int8" and (int(lo), int(hi)) == (-qn, qp), \
                "%s: Clip [%s, %s]" % (n.name, lo, hi)
        else:
            assert nxt.op_type == "DequantizeLinear", n.name + ": " + nxt.op_type
        ns += 1
    else:
        assert z.dtype.name == "uint8" and z == 0, n.name
        nu += 1
assert ns == len(signed), "%d signed quantizers, expected %d" % (ns, len(signed))
print("%d int8 and %d uint8 activation quantizers" % (ns, nu))
PY
}

for r in 15 255; do
    name=res$r
    recipe $r > "$TMP/$name.ini"
    small_test_set "$TMP/$name.ini"
    if ! "$QATCONV" "$M" -r "$TMP/$name.ini" -o "$TMP/$name.onnx" --epochs 1 --limit 2048 \
            --quiet > "$TMP/$name.train" 2>&1; then
        bad "$name: training failed: $(cat "$TMP/$name.train")"; continue
    fi
    ok "$name signed on the residual BatchNorms: $(grep 'test top-1' "$TMP/$name.train")"
    if [ "$r" = 15 ]; then lv="8 7"; else lv="128 127"; fi
    if out=$(check_qdq "$TMP/$name.onnx" $lv 2>&1); then ok "$name: $out"
    else bad "$name: $out"; fi
    if "$QATCONV" eval "$TMP/$name.onnx" -r "$TMP/$name.ini" --quiet \
            --predictions "$TMP/$name.qc" > "$TMP/$name.eval" 2>&1 &&
        "$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$TMP/$name.onnx" --data "$DATA" \
            --compare "$TMP/$name.qc" --max-differ "$QC_DIFFER_10" --limit "$QC_N_TEST" \
            --run-model "$RUN_MODEL" \
            > "$TMP/$name.agree" 2>&1; then
        ok "$name: ONNX Runtime per image: $(grep '^agree=' "$TMP/$name.agree")"
    else
        bad "$name: ONNX Runtime per image: $(grep -v '^differ image' "$TMP/$name.eval" \
            "$TMP/$name.agree")"
    fi
done

# bottleneck NAME [--linear-head]: tests/signed_model.py trained in float for one epoch
# ($TMP/NAME_float.onnx), its --recipe-template recipe ($TMP/NAME.ini)
{ printf 'Solvers.LearningRate=0.02\nSolvers.Momentum=0.9\n'; fashion_sections 128; } \
    > "$TMP/float.ini"
small_test_set "$TMP/float.ini"
bottleneck() {
    name=$1; shift
    # shellcheck disable=SC2086
    if "$PYTHON3" "$top_srcdir/tests/signed_model.py" "$@" "$TMP/$name.onnx" &&
        "$QATCONV" "$TMP/$name.onnx" -r "$TMP/float.ini" -o "$TMP/${name}_float.onnx" \
            --epochs 1 $FLOAT_LIMIT --quiet > "$TMP/${name}_float.train" 2>&1; then
        ok "$name ($*) float: $(grep 'test top-1' "$TMP/${name}_float.train")"
    else
        bad "$name: float training: $(cat "$TMP/${name}_float.train" 2>/dev/null)"
    fi
    "$QATCONV" --recipe-template "$TMP/${name}_float.onnx" > "$TMP/$name.ini" \
        2> "$TMP/$name.err" &&
        sed -i 's/^Solvers.LearningRate=.*/Solvers.LearningRate=0.002/' "$TMP/$name.ini" &&
        small_test_set "$TMP/$name.ini"
}

# a linear bottleneck and a residual Add without an activation (tests/signed_model.py)
bottleneck lb
# the template: signed LSQ on the two values a layer reads that can be negative, SAT
# (unsigned) on the ReLUs as before
for sec in project_bn add; do
    if awk -v s="[$sec]" '$0 == s { f = 1; next } /^\[/ { f = 0 } f' "$TMP/lb.ini" |
            tr '\n' ' ' | grep -q 'QAct=LSQ QAct.Range=15 QAct.Signed=1'; then
        ok "--recipe-template: [$sec] gets a signed LSQ QAct"
    else
        bad "--recipe-template: no signed LSQ section [$sec]: $(cat "$TMP/lb.ini" "$TMP/lb.err")"
    fi
done
n=$(grep -c '^QAct.Signed=1' "$TMP/lb.ini")
[ "$n" = 2 ] && grep -q '^QAct=SAT' "$TMP/lb.ini" &&
    grep -q '^; 5 quantizable weights, 2 activations, 2 signed activations' "$TMP/lb.ini" &&
    ok "--recipe-template: 2 signed quantizers, SAT on the ReLUs" ||
    bad "--recipe-template: $n signed quantizers: $(cat "$TMP/lb.ini")"
if "$QATCONV" "$TMP/lb_float.onnx" -r "$TMP/lb.ini" -o "$TMP/lb_fake.onnx" --epochs 1 \
        --limit 8192 --quiet > "$TMP/lb.train" 2>&1; then
    ok "linear bottleneck, template recipe: $(grep 'test top-1' "$TMP/lb.train")"
else
    bad "linear bottleneck: QAT with the template recipe: $(cat "$TMP/lb.train")"
fi
# every layer reads a DequantizeLinear (through MaxPool/Flatten), the first one's the
# template's QIn on the graph input, the signed ones int8
if out=$("$PYTHON3" - "$TMP/lb_fake.onnx" <<'PY' 2>&1
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
prod = {o: n for n in m.graph.node for o in n.output}
n_layers = n_i8 = 0
for n in m.graph.node:
    if n.op_type not in ("Conv", "Gemm", "MatMul"):
        continue
    v = n.input[0]
    while v in prod and prod[v].op_type in ("MaxPool", "Flatten"):
        v = prod[v].input[0]
    d = prod.get(v)
    assert d is not None and d.op_type == "DequantizeLinear", \
        "%s reads %s" % (n.name, d.op_type if d else v)
    n_layers += 1
    n_i8 += inits[d.input[2]].dtype.name == "int8"
assert (n_layers, n_i8) == (5, 2), "%d layers, %d int8 inputs" % (n_layers, n_i8)
print("the 5 layers read a DequantizeLinear, 2 of them int8 levels")
PY
); then ok "linear bottleneck: $out"; else bad "linear bottleneck: $out"; fi
# ONNX Runtime as written (float QDQ, as qatconv computes it): the same prediction for
# every image but boundary flips; with its graph optimizations (the QDQ pairs fused into
# integer kernels) a level can round the other way: at most 30 images may then differ,
# each with a relative top-2 margin under 0.5 %
"$QATCONV" eval "$TMP/lb_fake.onnx" -r "$TMP/lb.ini" --quiet --predictions "$TMP/lb.qc" \
    > "$TMP/lb.eval" 2>&1 || bad "linear bottleneck: eval: $(cat "$TMP/lb.eval")"
for mode in --no-optimize optimized; do
    if [ $mode = optimized ]; then opt="--max-differ $QC_DIFFER_30 --max-margin 0.005"
    else opt="--no-optimize --max-differ $QC_DIFFER_10"; fi
    # shellcheck disable=SC2086
    if "$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$TMP/lb_fake.onnx" --data "$DATA" \
            --compare "$TMP/lb.qc" --limit "$QC_N_TEST" --run-model "$RUN_MODEL" $opt \
            > "$TMP/lb.agree" 2>&1; then
        ok "linear bottleneck ($mode): ONNX Runtime per image: $(grep '^agree=' "$TMP/lb.agree")"
    else
        bad "linear bottleneck ($mode): ONNX Runtime per image: $(cat "$TMP/lb.agree")"
    fi
done

# the same with a linear head (the Gemm reads signed values): the template's recipe
bottleneck lh --linear-head
n=$(grep -c '^QAct.Signed=1' "$TMP/lh.ini")
[ "$n" = 3 ] && grep -qx '\[head_bn\]' "$TMP/lh.ini" &&
    ok "lh --recipe-template: 3 signed quantizers, one on the BatchNorm the Gemm reads" ||
    bad "lh --recipe-template: $n signed quantizers: $(cat "$TMP/lh.ini" "$TMP/lh.err")"
if "$QATCONV" "$TMP/lh_float.onnx" -r "$TMP/lh.ini" -o "$TMP/lh_fake.onnx" --epochs 1 \
        --limit 4096 --quiet > "$TMP/lh.train" 2>&1; then
    ok "lh, template recipe: $(grep 'test top-1' "$TMP/lh.train")"
else
    bad "lh: QAT with the template recipe: $(cat "$TMP/lh.train")"
fi

# the int export of each: signed levels stored as uint8 q + 128 with zero point 128
# (ConvInteger's x_zero_point, a residual Add of signed values in integer terms, the
# requantization to [-qn, qp] + 128); every integer tensor equals ONNX Runtime's on 200
# images (tests/int_layers.py + tests/run_model), no float op between the input
# quantizer and the output (tests/int_check.py)
for name in res15 res255 lb lh; do
    fake=$TMP/$name.onnx
    case $name in l*) fake=$TMP/${name}_fake.onnx ;; esac
    [ -f "$fake" ] || { bad "$name: no fake export to convert"; continue; }
    int_exact "$fake" "$name" "$NIMG"
    # the integers compute the trained model: ONNX Runtime's top-1 of the int export
    # within 0.5 points of qatconv's evaluation of the fake export
    want=$(sed -n 's/.*exported graph \([0-9.]*\)%.*/\1/p' "$TMP/$name.train")
    got=$("$PYTHON3" "$top_srcdir/tests/ort_eval.py" "$TMP/${name}_int.onnx" --data "$DATA" \
        --limit "$QC_N_TEST" 2>&1 | sed -n 's/^accuracy=\([0-9.]*\) .*/\1/p')
    if [ -n "$want" ] && [ -n "$got" ] &&
        awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; exit !(d < 0.5 && d > -0.5) }'; then
        ok "$name int export: ONNX Runtime top-1 $got%, the fake export's $want%"
    else
        bad "$name int export: ONNX Runtime top-1 '$got'%, the fake export's '$want'%"
    fi
done

# a Concat of signed and unsigned levels: both are brought onto one grid (scale and
# zero point); the integers equal ONNX Runtime's at every layer, no float op remains
if "$PYTHON3" "$top_srcdir/tests/int_concat_model.py" "$TMP/cc.onnx" &&
    { printf 'Solvers.LearningRate=0.01\n'; fashion_sections 128
      printf '[onnx:Conv_def]\nQWeight=LSQ\nQWeight.Range=15\n[onnx:Fc_def] onnx:Conv_def\n'
      printf '[onnx:Relu_def]\nQAct=LSQ\nQAct.Range=15\n'
      printf '[expand1x1_relu]\nQAct=LSQ\nQAct.Range=15\nQAct.Signed=1\n'; } > "$TMP/cc.ini" &&
    "$QATCONV" "$TMP/cc.onnx" -r "$TMP/cc.ini" -o "$TMP/cc_fake.onnx" --epochs 1 --limit 256 \
        --no-eval --quiet > "$TMP/cc.train" 2>&1; then
    int_exact "$TMP/cc_fake.onnx" cc "$NIMG"
else
    bad "concat model: $(cat "$TMP/cc.train" 2>/dev/null)"
fi

# recipe errors: one line naming file:line
{ printf '[/block1/bn2/BatchNormalization]\nQAct=SAT\nQAct.Signed=1\n'
    fashion_sections 128; } > "$TMP/sat.ini"
expect_error 2 "QAct.Signed=1 with QAct=SAT" -- \
    "$QATCONV" "$M" -r "$TMP/sat.ini" -o "$TMP/sat.onnx" --epochs 1 --limit 128
grep -q 'sat.ini:3: .*QAct.Signed=1 with QAct=SAT' "$TMP/err" ||
    bad "the SAT error does not name sat.ini:3: $(cat "$TMP/err")"
printf '[/block1/bn2/BatchNormalization]\nQAct=LSQ\nQAct.Signed=2\n' > "$TMP/two.ini"
expect_error 2 "QAct.Signed=2" -- \
    "$QATCONV" "$M" -r "$TMP/two.ini" -o "$TMP/two.onnx" --epochs 1 --limit 128
finish
