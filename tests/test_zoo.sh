#!/bin/sh
# test_zoo.sh - scripts/qatconv-zoo on a directory with the LeNet and MLP
# fixtures and a truncated model: one table, the broken model's row failed
# and the exit status nonzero, the good models' rows filled in (accuracies,
# parameters checked against the ONNX files, bytes against the written
# files); a directory of good models exits 0.  One epoch on 512 images.
. "${top_srcdir:-.}/tests/lib.sh"
ZOO=$top_srcdir/scripts/qatconv-zoo

{ printf 'Solvers.LearningRate=0.001\nSolvers.Momentum=0.9\n'; fashion_sections 64; cat <<EOF2
[onnx:Conv_def]
QWeight=LSQ
QWeight.Range=15
[onnx:Fc_def] onnx:Conv_def
[onnx:Relu_def]
ActivationFunction=Linear
QAct=LSQ
QAct.Range=15
EOF2
} > "$TMP/zoo.ini"
mkdir -p "$TMP/m" "$TMP/good"
cp "$top_srcdir/testdata/fashion_lenet_bn.onnx" "$TMP/m/lenet.onnx"
cp "$top_srcdir/testdata/fashion_mlp.onnx" "$TMP/m/mlp.onnx"
head -c 700 "$top_srcdir/testdata/fashion_lenet_bn.onnx" > "$TMP/m/broken.onnx"
# a per-model override: the MLP at 8 bits
sed 's/Range=15/Range=255/' "$TMP/zoo.ini" > "$TMP/m/mlp.ini"

"$PYTHON3" "$ZOO" --help | grep -q -- '--overrides' && ok "--help" || bad "--help"

"$PYTHON3" "$ZOO" --qatconv "$QATCONV" -r "$TMP/zoo.ini" -j 2 --epochs 1 -o "$TMP/out" \
    "$TMP/m" -- --limit 512 --quiet --threads 1 > "$TMP/table" 2> "$TMP/zoo.err"
rc=$?
cat "$TMP/table"
[ $rc -eq 1 ] && ok "a broken model: exit 1" || bad "exit $rc with a broken model: $(cat "$TMP/zoo.err")"
if grep -q '^broken .*FAILED (fake: exit 2' "$TMP/table"; then ok "broken row failed"
else bad "broken row: $(grep '^broken' "$TMP/table")"; fi
if [ "$(grep -c '^\(broken\|lenet\|mlp\) ' "$TMP/table")" -eq 3 ]; then ok "one row per model"
else bad "rows: $(cat "$TMP/table")"; fi

# the good rows: float and fake accuracy, parameters, bytes; int either
# converted or refused by a qatconv that cannot write it yet
# a qatconv with the integer export must convert LeNet to int (the MLP may be refused)
INT_OK=0
"$QATCONV" --help | grep -q 'int (integer' && INT_OK=1
export INT_OK
if "$PYTHON3" - "$TMP/table" "$TMP/out" "$TMP/m" > "$TMP/check.py" 2>&1 <<'PY'
import os, sys, onnx, numpy as np
from onnx import numpy_helper as nh
table, out, models = sys.argv[1:4]
lines = open(table).read().splitlines()
head = lines[0].split()
assert head[:4] == ["model", "float%", "fake%", "int%"], head
for m in ("lenet", "mlp"):
    row = next(l for l in lines if l.startswith(m + " "))
    cells = row.split()
    flt, fake, intacc, params, bfake, bint = cells[1:7]
    assert 50.0 < float(flt) <= 100.0, (m, flt)
    assert 50.0 < float(fake) <= 100.0, (m, fake)
    model = onnx.load(os.path.join(models, m + ".onnx"))
    # the report's layers are the Conv/Gemm/MatMul nodes: their weights and biases
    init = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    n = sum(init.get(i, 0) for nd in model.graph.node
            if nd.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") for i in nd.input)
    assert int(params) == n, (m, params, n)
    assert int(bfake) == os.path.getsize(os.path.join(out, m + ".fake.onnx")), (m, bfake)
    onnx.checker.check_model(onnx.load(os.path.join(out, m + ".fake.onnx")))
    if intacc == "FAIL":
        assert "int: exit" in row, row
        assert m != "lenet" or os.environ.get("INT_OK") != "1", "LeNet int export failed: " + row
    else:
        assert 50.0 < float(intacc) <= 100.0 and int(bint) > 0, row
        assert "ok" == cells[-1], row
print("ok")
PY
then ok "good rows: accuracies, parameters and bytes check out"
else bad "good rows: $(cat "$TMP/check.py")"; fi
# the override was used for the MLP: its report shows 8-bit weights, LeNet's 4-bit
if grep -q '"weight_bits": 8' "$TMP/out/mlp.fake.json" &&
   ! grep -q '"weight_bits": 8' "$TMP/out/lenet.fake.json"; then ok "per-model override recipe"
else bad "override not applied"; fi

# every model good: exit 0 (fake only, so this does not depend on --format int)
cp "$top_srcdir/testdata/fashion_mlp.onnx" "$TMP/good/mlp.onnx"
if "$PYTHON3" "$ZOO" --qatconv "$QATCONV" -r "$TMP/zoo.ini" --formats fake --epochs 1 \
        -o "$TMP/out2" "$TMP/good" -- --limit 256 --quiet --threads 1 > "$TMP/table2" 2>&1 &&
   grep -q '^mlp .* ok$' "$TMP/table2"; then ok "all good: exit 0"
else bad "all good: $(cat "$TMP/table2")"; fi
finish
