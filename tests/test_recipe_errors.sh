#!/bin/sh
# test_recipe_errors.sh - bad recipes each give one error line naming
# file:line and exit code 2, and write nothing: unknown key, malformed value,
# Range=0, QWeight on a node without weights, an inheritance cycle, a missing
# base section, a wildcard (or name) that matches no node, an unknown
# QuantMode.  A starter recipe from --recipe-template loads cleanly (the first Conv,
# which reads the graph input, with an active QIn section).
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
BASE="[database]
Type=MNIST_IDX_Database
DataPath=/usr/share/datasets/fashion-mnist
[sp]
BatchSize=64"

check() {   # check NAME PATTERN TEXT: the error line must match PATTERN
    name=$1; pattern=$2; shift 2
    printf '%s\n%s\n' "$BASE" "$*" > "$TMP/$name.ini"
    OUTFILE=$TMP/$name.onnx
    expect_error 2 "$name" -- "$QATCONV" "$M" -r "$TMP/$name.ini" -o "$OUTFILE" --epochs 1 \
        --limit 128 --no-eval --quiet
    if grep -q "$name.ini:[0-9][0-9]*:.*$pattern" "$TMP/err"; then ok "$name: names file:line"
    else bad "$name: message '$(cat "$TMP/err")' lacks file:line or '$pattern'"; fi
}

check unknown_key "did you mean 'QWeight.Range'" "[onnx:Conv_def]
QWeight=SAT
QWeight.Rnage=15"
check malformed_value "QWeight.Range" "[onnx:Conv_def]
QWeight=SAT
QWeight.Range=four"
check range_zero "QWeight.Range" "[onnx:Conv_def]
QWeight=SAT
QWeight.Range=0"
check qweight_no_weights "no weight" "[/Relu]
QWeight=SAT"
check inheritance_cycle "cycle" "[a] b
QWeight=SAT
[b] a
QAct=SAT"
check missing_base "not defined" "[/conv1/Conv] conv_base
QWeight=SAT"
check wildcard_nothing "matches no node" "[/conv9*]
QWeight=SAT"
check quant_mode "QuantMode" "[onnx:Conv_def]
QWeight=SAT
QWeight.QuantMode=Mirrored"

"$QATCONV" --recipe-template "$M" > "$TMP/template.ini" 2>"$TMP/template.err" &&
    "$QATCONV" "$M" -r "$TMP/template.ini" -o "$TMP/template.onnx" --epochs 1 --limit 256 \
        --no-eval --quiet > "$TMP/template.out" 2>&1 &&
    grep -q '^\[/conv1/Conv\] onnx:Conv_def' "$TMP/template.ini" &&
    grep -q '^; its section \[/conv1/Conv\] is above (QIn)' "$TMP/template.ini" &&
    grep -q '^;\[/conv2/Conv\] onnx:Conv_def' "$TMP/template.ini" &&
    grep -q '^;\[/Relu\] onnx:Relu_def' "$TMP/template.ini" &&
    ok "--recipe-template names every quantizable node and loads strictly" ||
    bad "--recipe-template: $(cat "$TMP/template.err" "$TMP/template.out" 2>/dev/null)"
finish
