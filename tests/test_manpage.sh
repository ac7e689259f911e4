#!/bin/sh
# test_manpage.sh - man/qatconv.1 documents every long option that --help lists,
# man/qatconv-recipe.5 every recipe key the parser accepts (qatconv --recipe-keys),
# and both render without groff warnings.
. "${top_srcdir:-.}/tests/lib.sh"
MAN=$top_srcdir/man/qatconv.1
opts=$("$QATCONV" --help | sed -n 's/^ *\(-., \)\{0,1\}--\([a-z-]*\).*/\2/p')
[ -n "$opts" ] || bad "no options parsed from --help"
for o in $opts; do
    esc=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
    if grep -q -- "\\\\-\\\\-$esc" "$MAN"; then ok "--$o documented"
    else bad "--$o is in --help but not in man/qatconv.1"; fi
done
RMAN=$top_srcdir/man/qatconv-recipe.5
"$QATCONV" --recipe-keys > "$TMP/keys" || bad "--recipe-keys failed"
[ -s "$TMP/keys" ] || bad "--recipe-keys listed nothing"
missing=0
while read -r cls key; do
    key=${key%.\*}
    case $key in
        Solvers.*|WeightsSolver.*|BiasSolver.*|ScaleSolver.*|QWeightSolver.*|QActSolver.*|\
        WeightsFiller.*|BiasFiller.*)
            # a key family: the prefix and the sub-key are documented once each
            grep -q -- "${key%%.*}" "$RMAN" && grep -qw -- "${key#*.}" "$RMAN" ;;
        *) grep -qF -- "$key" "$RMAN" ;;
    esac || { bad "recipe key $key ($cls) is not in man/qatconv-recipe.5"; missing=1; }
done < "$TMP/keys"
[ "$missing" -eq 0 ] && ok "every one of $(wc -l < "$TMP/keys") recipe keys is documented"
for m in "$MAN" "$RMAN"; do
    if out=$(groff -ww -z -man "$m" 2>&1) && [ -z "$out" ]; then ok "groff -ww renders $(basename "$m") cleanly"
    else bad "groff warnings in $m: $out"; fi
done
finish
