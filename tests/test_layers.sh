#!/bin/sh
# test_layers.sh - the layering check: scripts/check-layers passes on the
# source tree (every include follows the layers of docs/ARCHITECTURE.md), and
# fails, naming the file, on a copy of the tree with a forbidden include added
# (a backend file including train/, a train file including cli/, a file outside
# backend/ including the private backend_impl.h).
. "${top_srcdir:-.}/tests/lib.sh"
CHECK="$PYTHON3 $top_srcdir/scripts/check-layers"

if $CHECK "$top_srcdir" > "$TMP/out" 2>&1; then
    ok "the source tree follows the layers ($(cat "$TMP/out"))"
else
    bad "the source tree breaks the layers:"; cat "$TMP/out"
fi

# forbidden FILE INCLUDE DESC: a copy of the tree with INCLUDE added to FILE fails
forbidden() {
    file=$1 inc=$2 desc=$3
    rm -rf "$TMP/tree" && mkdir "$TMP/tree" || { bad "$desc: cannot copy the tree"; return; }
    for d in src onnx docs include kernels; do
        [ -d "$top_srcdir/$d" ] && cp -R "$top_srcdir/$d" "$TMP/tree/"
    done
    chmod -R u+w "$TMP/tree"
    printf '#include "%s"\n' "$inc" >> "$TMP/tree/$file"
    $CHECK "$TMP/tree" > "$TMP/out" 2>&1
    rc=$?
    if [ $rc -eq 1 ] && grep -q "^$file:[0-9]*: layer .* may not include $inc " "$TMP/out"; then
        ok "$desc: exit 1, names $file"
    else
        bad "$desc: exit $rc, output:"; cat "$TMP/out"
    fi
}

forbidden src/backend/backend.c train/train.h "backend including train/"
forbidden src/train/solver.c cli/cli.h "train including cli/"
forbidden src/export/qdq.c plan/plan_impl.h "export including the private plan/plan_impl.h"
forbidden src/ops/conv.c backend/cpu.c "ops including a backend file other than backend.h"

# and the check refuses to run without its rules
rm -rf "$TMP/tree" && mkdir -p "$TMP/tree/docs" && cp -R "$top_srcdir/src" "$TMP/tree/" &&
    printf '# nothing\n' > "$TMP/tree/docs/ARCHITECTURE.md"
$CHECK "$TMP/tree" > "$TMP/out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "no \`\`\`layers block" "$TMP/out"; then ok "no rules: exit 2"
else bad "no rules: exit $rc: $(cat "$TMP/out")"; fi

finish
