#!/bin/sh
# test_manpage.sh - man/qatconv.1 documents every long option that --help lists,
# and renders without groff warnings.
. "${top_srcdir:-.}/tests/lib.sh"
MAN=$top_srcdir/man/qatconv.1
opts=$("$QATCONV" --help | sed -n 's/^ *\(-., \)\{0,1\}--\([a-z-]*\).*/\2/p')
[ -n "$opts" ] || bad "no options parsed from --help"
for o in $opts; do
    esc=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
    if grep -q -- "\\\\-\\\\-$esc" "$MAN"; then ok "--$o documented"
    else bad "--$o is in --help but not in man/qatconv.1"; fi
done
if out=$(groff -ww -z -man "$MAN" 2>&1) && [ -z "$out" ]; then ok "groff -ww renders it cleanly"
else bad "groff warnings: $out"; fi
finish
