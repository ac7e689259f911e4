#!/bin/sh
# test_roundtrip.sh - `qatconv IN -o OUT` writes every fixture back so that
# ONNX Runtime gives identical outputs, onnx.checker (full_check) accepts it,
# and names, opset imports, producer and metadata are preserved.  The
# comparisons run in one Python process (tests/ort_compare.py --list).
. "${top_srcdir:-.}/tests/lib.sh"

list=$TMP/pairs
: > "$list"
i=0
for m in "$top_srcdir"/testdata/*.onnx "$top_srcdir"/testdata/*/model.onnx; do
    [ -e "$m" ] || continue
    name=$(echo "$m" | sed "s|$top_srcdir/testdata/||; s|/model.onnx||")
    i=$((i + 1))
    out=$TMP/rt$i.onnx
    if ! "$QATCONV" --quiet "$m" -o "$out" 2>"$TMP/err"; then
        bad "$name: convert failed: $(cat "$TMP/err")"; continue
    fi
    echo "$name $m $out" >> "$list"
done
"$PYTHON3" "$top_srcdir/tests/ort_compare.py" --list "$list" > "$TMP/cmp" 2>&1
while read -r word rest; do
    case $word in
        ok) ok "$rest" ;;
        FAIL) bad "$rest" ;;
        *) bad "ort_compare.py: $word $rest" ;;
    esac
done < "$TMP/cmp"
# every pair has its line (a crash of the comparison process loses the rest)
n_lines=$(grep -c -E "^(ok|FAIL) " "$TMP/cmp" || true)
n_pairs=$(wc -l < "$list")
[ "$n_lines" -eq "$n_pairs" ] || bad "ort_compare.py reported $n_lines of $n_pairs pairs"
finish
