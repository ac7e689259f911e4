#!/bin/sh
# test_report_metrics.sh - the test metrics of the --report JSON and of
# `qatconv eval` against ONNX Runtime: LeNet-BN fine-tuned briefly with LSQ
# W4A4 (fake-quant export, --valid-metric F1Score), then
#   - the report's confusion matrix is exactly the one of `qatconv eval
#     --predictions` on the written model (same graph, same kernels), and its
#     top-1 is the matrix's trace over the images;
#   - ONNX Runtime's predictions of the written model on the 10,000 test
#     images give a confusion matrix within 2 cells per differing image of
#     the report's, at most 10 images differing (0.1 %: a fake-quant graph
#     computed in another summation order can round an activation at a level
#     boundary the other way, see test_qat.sh), and the same top-1 and top-5
#     within those images;
#   - the report's per-class precision / recall / F1 and macro averages equal
#     numpy's from its matrix, eval's --per-class lines numpy's from its
#     predictions;
#   - the kept epoch was chosen by F1Score (report and summary say so), and
#     MissRate keeps its smallest figure (Sensitivity's epoch, 3 epochs);
#     an unknown --valid-metric is a usage error (exit 1, one line).
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
R=$top_srcdir/recipes/lenet-lsq-w4a4.ini
DATA=/usr/share/datasets/fashion-mnist
MAX_DIFFER=10

if [ ! -r "$DATA/t10k-images-idx3-ubyte.gz" ]; then
    echo "SKIP: no Fashion-MNIST in $DATA (scripts/install-deps installs it)"
    exit 77
fi
if ! "$PYTHON3" -c 'import onnxruntime, numpy' 2>/dev/null; then
    echo "SKIP: no onnxruntime/numpy for $PYTHON3"
    exit 77
fi

"$QATCONV" "$M" -r "$R" -o "$TMP/out.onnx" --epochs 1 --limit 512 --quiet \
    --valid-metric F1Score --report "$TMP/rep.json" >"$TMP/conv.out" 2>"$TMP/conv.err"
rc=$?
if [ "$rc" -eq 0 ]; then
    ok "convert with --report and --valid-metric F1Score"
else
    bad "convert: exit $rc"; cat "$TMP/conv.err"; finish; exit 1
fi
if grep -q '^summary: best validation F1Score [0-9.]*% (epoch 1)' "$TMP/conv.out" \
    && grep -q '^summary: test top-5 [0-9.]*%, macro F1 [0-9.]*%' "$TMP/conv.out"; then
    ok "summary: $(grep -E 'best validation|top-5' "$TMP/conv.out" | tr '\n' ' ')"
else
    bad "summary lines"; cat "$TMP/conv.out"
fi
"$QATCONV" eval "$TMP/out.onnx" -r "$R" --quiet --per-class --predictions "$TMP/qc.pred" \
    >"$TMP/eval.out" 2>"$TMP/eval.err"
rc=$?
if [ "$rc" -eq 0 ]; then
    ok "eval: $(head -n 2 "$TMP/eval.out" | tr '\n' ' ')"
else
    bad "eval: exit $rc"; cat "$TMP/eval.err"; finish; exit 1
fi

cat > "$TMP/check.py" <<'PY'
import json, re, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import onnxruntime as ort
from ort_eval import read_idx

src, data, model, rep_path, qc_pred, eval_out, max_differ = sys.argv[1:8]
max_differ = int(max_differ)
rep = json.load(open(rep_path))
labels = read_idx(data, "t10k-labels-idx1-ubyte").astype(np.int64)
images = read_idx(data, "t10k-images-idx3-ubyte").astype(np.float32) / np.float32(255.0)
n, k = len(labels), 10
bad = 0

def fail(msg):
    global bad
    bad += 1
    print("FAIL " + msg)

def matrix(pred):
    c = np.zeros((k, k), np.int64)
    np.add.at(c, (labels, pred), 1)
    return c

def per_class(c):
    tp = np.diag(c).astype(float)
    rows, cols = c.sum(1), c.sum(0)
    p = np.where(tp > 0, tp / np.maximum(cols, 1), 0.0)
    r = np.where(tp > 0, tp / np.maximum(rows, 1), 0.0)
    f = np.where(tp > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0.0)
    return 100 * p, 100 * r, 100 * f, rows

t = rep["test"]
c_rep = np.array(t["confusion"], np.int64)
if t["graph"] != "exported graph" or t["images"] != n or c_rep.shape != (k, k):
    fail("report test object: graph %r, %r images, matrix %s" % (t["graph"], t["images"],
                                                              c_rep.shape))
if c_rep.sum() != n or abs(t["top1"] - 100.0 * np.trace(c_rep) / n) > 1e-3:
    fail("report top1 %s is not the trace of its matrix (%d/%d)" % (t["top1"], np.trace(c_rep), n))
if rep["validation"]["metric"] != "F1Score" or rep["validation"]["best"] is None:
    fail("report validation %r" % rep["validation"])

# qatconv eval on the written model: the same matrix, exactly
qc = np.loadtxt(qc_pred, dtype=np.int64)
c_qc = matrix(qc)
if not np.array_equal(c_qc, c_rep):
    fail("report matrix differs from qatconv eval's in %d cells" % (c_qc != c_rep).sum())

# ONNX Runtime
so = ort.SessionOptions()
so.intra_op_num_threads = 1
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
inp = sess.get_inputs()[0].name
logits = np.concatenate([sess.run(None, {inp: images[i:i + 100].reshape(-1, 1, 28, 28)})[0]
                         for i in range(0, n, 100)])
pred = logits.argmax(1)
# the label's rank: larger scores, or equal ones at a lower index (first maximum)
sl = logits[np.arange(n), labels][:, None]
idx = np.arange(k)[None, :]
rank = ((logits > sl) | ((logits == sl) & (idx < labels[:, None]))).sum(1)
top5 = 100.0 * (rank < 5).sum() / n
c_ort = matrix(pred)
differ = int((pred != qc).sum())
l1 = int(np.abs(c_ort - c_rep).sum())
print("ONNX Runtime: top-1 %.2f%%, top-5 %.2f%%; report: top-1 %.2f%%, top-5 %.2f%%; "
      "%d images differ, matrices %d apart" % (100.0 * (pred == labels).sum() / n, top5,
                                               t["top1"], t["top5"], differ, l1))
if differ > max_differ:
    fail("%d images predicted differently by ONNX Runtime (at most %d)" % (differ, max_differ))
if l1 > 2 * differ:
    fail("matrices %d apart for %d differing images" % (l1, differ))
if abs(t["top1"] - 100.0 * (pred == labels).sum() / n) > 100.0 * differ / n + 1e-3:
    fail("top-1 further from ONNX Runtime's than the differing images allow")
if abs(t["top5"] - top5) > 100.0 * max_differ / n + 1e-3:
    fail("top-5 %.2f%% vs ONNX Runtime's %.2f%%" % (t["top5"], top5))

# per-class figures of the report: numpy's from its matrix
p, r, f, rows = per_class(c_rep)
for i, cl in enumerate(t["classes"]):
    if cl["class"] != i or cl["images"] != rows[i] or \
            max(abs(cl["precision"] - p[i]), abs(cl["recall"] - r[i]), abs(cl["f1"] - f[i])) > 1e-3:
        fail("report class %d: %r, numpy %.4f %.4f %.4f" % (i, cl, p[i], r[i], f[i]))
m = t["macro"]
if max(abs(m["precision"] - p.mean()), abs(m["recall"] - r.mean()), abs(m["f1"] - f.mean())) > 1e-3:
    fail("report macro %r, numpy %.4f %.4f %.4f" % (m, p.mean(), r.mean(), f.mean()))

# eval --per-class lines: numpy's from eval's predictions
p, r, f, rows = per_class(c_qc)
lines = re.findall(r"^class (\d+): (\d+) images, \d+ predicted, precision ([0-9.]+)%, "
                   r"recall ([0-9.]+)%, F1 ([0-9.]+)%$", open(eval_out).read(), re.M)
if len(lines) != k:
    fail("%d per-class lines in eval's output" % len(lines))
for cls, imgs, pp, rr, ff in lines:
    i = int(cls)
    if int(imgs) != rows[i] or max(abs(float(pp) - p[i]), abs(float(rr) - r[i]),
                                   abs(float(ff) - f[i])) > 0.006:
        fail("eval class %d: %s %s %s %s, numpy %d %.2f %.2f %.2f"
             % (i, imgs, pp, rr, ff, rows[i], p[i], r[i], f[i]))
m5 = re.search(r"top-5 ([0-9.]+)% \((\d+)/(\d+)\)", open(eval_out).read())
if not m5 or abs(float(m5.group(1)) - top5) > 100.0 * max_differ / n + 0.006:
    fail("eval top-5 %s vs ONNX Runtime's %.2f%%" % (m5 and m5.group(1), top5))
sys.exit(1 if bad else 0)
PY
if "$PYTHON3" "$TMP/check.py" "$top_srcdir/tests" "$DATA" "$TMP/out.onnx" "$TMP/rep.json" \
        "$TMP/qc.pred" "$TMP/eval.out" "$MAX_DIFFER" >"$TMP/check.out" 2>&1; then
    ok "$(tail -n 1 "$TMP/check.out")"
else
    bad "report metrics against ONNX Runtime and numpy"; cat "$TMP/check.out"
fi

# a rate where lower is better: MissRate = 100 - Sensitivity per class, so
# its kept epoch is Sensitivity's and its figure 100 minus Sensitivity's
# (keeping the largest MissRate would keep the worst epoch instead)
for vm in Sensitivity MissRate; do
    "$QATCONV" "$M" -r "$R" -o "$TMP/$vm.onnx" --epochs 3 --limit 512 --quiet --no-eval \
        --valid-metric $vm --report "$TMP/$vm.json" >"$TMP/$vm.out" 2>"$TMP/$vm.err" ||
        { bad "--valid-metric $vm: $(cat "$TMP/$vm.err")"; }
done
if "$PYTHON3" - "$TMP/Sensitivity.json" "$TMP/MissRate.json" >"$TMP/vm.out" 2>&1 <<'PY'
import json, sys
s, m = (json.load(open(f))["validation"] for f in sys.argv[1:3])
print("Sensitivity %.4f%% (epoch %d), MissRate %.4f%% (epoch %d)"
      % (s["best"], s["epoch"], m["best"], m["epoch"]))
sys.exit(0 if m["metric"] == "MissRate" and s["epoch"] == m["epoch"] >= 1
         and abs(s["best"] + m["best"] - 100.0) < 2e-4 else 1)
PY
then
    ok "lowest MissRate kept: $(cat "$TMP/vm.out")"
else
    bad "MissRate's kept epoch: $(cat "$TMP/vm.out")"
fi

# an unknown metric: a usage error naming it
"$QATCONV" "$M" -r "$R" -o "$TMP/x.onnx" --valid-metric Bogus >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q 'valid-metric Bogus' "$TMP/err" \
    && [ ! -e "$TMP/x.onnx" ]; then
    ok "--valid-metric Bogus: exit 1, $(cat "$TMP/err")"
else
    bad "--valid-metric Bogus: exit $rc"; cat "$TMP/err"
fi

finish
