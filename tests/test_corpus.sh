#!/bin/sh
# test_corpus.sh - qatconv on the third-party model corpus (issue 14): scripts/corpus-table
# runs every model of testdata/corpus/ (SOURCES checksums checked first), the onnx package's
# zoo models and torchvision's classifiers (scripts/gen_torchvision.py, cached in the build
# folder) through loading, forward = ONNX Runtime, write-back, the recipe template, one QAT
# epoch and both exports; the table goes to corpus-table.md in the build folder (the cells as
# JSON to corpus-table.json, the logs under corpus-work/).  Fails when fewer than 90 % of the
# cells are ✓, when a ✗ has no reason, or when a model has no row.
#
# QC_CORPUS=quick (the sanitizer builds of .ci/run) runs the third-party files only, on 16
# inputs; QC_CORPUS=full runs every model on 64 inputs (the README's table); the default runs
# the third-party files and the torchvision exports at opset 13 on 64 inputs (the 224x224 zoo
# models and the opset-11/17 exports only in full mode: they take over ten minutes on two
# cores).  Skips (77) only when an oracle is missing: numpy, onnx,
# onnxruntime, tests/run_model, or (outside quick mode) PyTorch with torchvision.
. "${top_srcdir:-.}/tests/lib.sh"
TABLE=$top_srcdir/scripts/corpus-table
RUN_MODEL=${top_builddir:-.}/tests/run_model
MIN_PCT=${QC_CORPUS_MIN_PCT:-90}
if ! "$PYTHON3" -c 'import numpy, onnx, onnxruntime' 2>"$TMP/imp"; then
    echo "SKIP: the oracles numpy, onnx and onnxruntime are not all importable by $PYTHON3:" \
        "$(tail -n 1 "$TMP/imp")"
    exit 77
fi
if [ ! -x "$RUN_MODEL" ]; then
    echo "SKIP: $RUN_MODEL is not built (make check builds it)"
    exit 77
fi
mode=${QC_CORPUS:-default}
case $mode in
    quick) set -- --quick --inputs 16 ;;
    full) set -- ;;
    default) set -- --skip 'light_*,tv_*_op11,tv_*_op17' ;;
    *) echo "QC_CORPUS=$mode: expected quick, full or default"; exit 99 ;;
esac
if [ "$mode" != quick ] &&
    ! /usr/bin/python3 -c 'import torch, torchvision' 2>"$TMP/imp"; then
    echo "SKIP: PyTorch with torchvision (/usr/bin/python3, Debian python3-torchvision)" \
        "exports the corpus's torchvision models: $(tail -n 1 "$TMP/imp")"
    exit 77
fi

# the copied files are the ones SOURCES describes
if (cd "$top_srcdir/testdata/corpus" &&
    grep '^# [0-9a-f]\{64\}  ' SOURCES | cut -c3- | sha256sum -c --quiet) >"$TMP/sum" 2>&1 &&
    n=$(grep -c '^# [0-9a-f]\{64\}  ' "$top_srcdir/testdata/corpus/SOURCES") &&
    [ "$n" -eq "$(ls "$top_srcdir"/testdata/corpus/*.onnx | wc -l)" ]; then
    ok "testdata/corpus: $n files, sha256 as SOURCES says"
else
    bad "testdata/corpus checksums: $(cat "$TMP/sum")"
fi

OUT=corpus-table.md
JSON=corpus-table.json
rm -f "$OUT" "$JSON"
start=$(date +%s)
if "$PYTHON3" "$TABLE" --qatconv "$QATCONV" --run-model "$RUN_MODEL" --srcdir "$top_srcdir" \
    --workdir corpus-work -j 2 --out "$OUT" --json "$JSON" "$@" >/dev/null 2>"$TMP/table.err"
then
    ok "corpus-table ($mode) in $(($(date +%s) - start)) s"
else
    bad "corpus-table ($mode): $(tail -n 5 "$TMP/table.err")"
fi
[ -f "$OUT" ] && cat "$OUT"

if "$PYTHON3" - "$JSON" "$top_srcdir/testdata/corpus" "$mode" "$MIN_PCT" \
    >"$TMP/check" 2>&1 <<'EOF'
import glob, json, os, sys
sys.excepthook = lambda t, e, tb: (print("%s: %s" % (t.__name__, e)), sys.exit(1))
path, corpus, mode, min_pct = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
d = json.load(open(path))
names = {r["name"] for r in d["rows"]}
want = {os.path.basename(p)[:-5] for p in glob.glob(os.path.join(corpus, "*.onnx"))}
if mode == "full":
    want |= {"light_" + m for m in ("bvlc_alexnet", "densenet121", "inception_v1",
                                    "inception_v2", "resnet50", "shufflenet", "squeezenet",
                                    "vgg19", "zfnet512")}
if mode != "quick":
    want |= {"tv_%s_op%d" % (m, o) for o in ((11, 13, 17) if mode == "full" else (13,))
             for m in ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0",
                       "squeezenet1_1", "shufflenet_v2_x1_0", "googlenet")}
missing = want - names
assert not missing, "no row for %s" % sorted(missing)
no_reason = ["%s/%s" % (r["name"], c) for r in d["rows"] for c, v in r["cells"].items()
             if not v["ok"] and not v.get("reason", "").strip()]
assert not no_reason, "a ✗ without a reason: %s" % no_reason
multiline = ["%s/%s" % (r["name"], c) for r in d["rows"] for c, v in r["cells"].items()
             if "\n" in v.get("reason", "")]
assert not multiline, "a reason of several lines: %s" % multiline
n_ok, n = d["ok"], d["cells"]
assert n == 7 * len(d["rows"]), (n, len(d["rows"]))
pct = 100.0 * n_ok / n
print("%d models, %d of %d cells ✓ (%.1f %%), %.0f s" % (len(d["rows"]), n_ok, n, pct,
                                                       d["secs"]))
assert pct >= min_pct, "fewer than %g %% of the cells are ✓" % min_pct
EOF
then
    ok "table: $(tail -n 1 "$TMP/check")"
else
    bad "table: $(tail -n 1 "$TMP/check")"
fi
finish
