#!/bin/sh
# test_roundtrip.sh - `qatconv IN -o OUT` writes every fixture back so that
# ONNX Runtime gives identical outputs, onnx.checker (full_check) accepts it,
# and names, opset imports, producer and metadata are preserved.
. "${top_srcdir:-.}/tests/lib.sh"

for m in "$top_srcdir"/testdata/*.onnx "$top_srcdir"/testdata/*/model.onnx; do
    [ -e "$m" ] || continue
    name=$(echo "$m" | sed "s|$top_srcdir/testdata/||; s|/model.onnx||")
    out=$TMP/rt.onnx
    rm -f "$out"
    if ! "$QATCONV" --quiet "$m" -o "$out" 2>"$TMP/err"; then
        bad "$name: convert failed: $(cat "$TMP/err")"; continue
    fi
    if "$PYTHON3" "$top_srcdir/tests/ort_compare.py" "$m" "$out" > "$TMP/cmp" 2>&1; then
        ok "$name: $(tail -n 1 "$TMP/cmp")"
    else
        bad "$name: $(tail -n 3 "$TMP/cmp")"
    fi
done
finish
