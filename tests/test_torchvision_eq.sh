#!/bin/sh
# test_torchvision_eq.sh - recipes/imagenet-torchvision-eval.ini gives the
# evaluation input torchvision's ImageNet models expect: on 120 JPEGs of
# varied sizes and aspect ratios (tests/make_images.py tveq; every 10th
# grayscale), the tensor tests/dump_data writes for the test split equals
# torchvision's Resize(256), CenterCrop(224), ToTensor() [and Normalize] on
# PIL images (tests/torchvision_eq.py) within 1/255 max abs in [0,1] pixel
# units (the figure is printed, and the one after Normalize).  Then the
# figure's two ingredients are shown to matter: N2D2's centring (floor)
# instead of CropRounding=HalfEven, and OpenCV-style bilinear instead of the
# antialiased filter, both exceed the bound.  Needs torch, torchvision and PIL
# (/usr/bin/python3 or $PYTHON3): skipped without them.
. "${top_srcdir:-.}/tests/lib.sh"
DUMP=${top_builddir:-.}/tests/dump_data
R=$top_srcdir/recipes/imagenet-torchvision-eval.ini
PYTV=
for p in "$PYTHON3" /usr/bin/python3; do
    if "$p" -c 'import torch, torchvision, PIL, numpy' 2>/dev/null; then PYTV=$p; break; fi
done
if [ -z "$PYTV" ]; then echo "SKIP: no torch + torchvision + PIL"; exit 77; fi
N=120
"$PYTV" "$top_srcdir/tests/make_images.py" tveq "$TMP/img" $N || { bad "making the JPEGs"; finish; exit; }

# the recipe's data sections on a DIR_Database of the folder (all in the
# test split); pix.ini: without the Normalize section [sp.Transformation-6]
{ printf '[database]\nType=DIR_Database\nDataPath=%s\nLearn=0.0\nTest=1.0\n' "$TMP/img"
  sed -n '/^\[sp\]/,$p' "$R"; } > "$TMP/norm.ini"
awk '/^\[sp.Transformation-6\]/{skip=1} /^\[sp.OnTheFly/{skip=0} !skip' "$TMP/norm.ini" > "$TMP/pix.ini"
grep -q '^SecondValue=0.229' "$TMP/norm.ini" && ! grep -q '^SecondValue' "$TMP/pix.ini" ||
    bad "the recipe's Normalize section is not [sp.Transformation-6]"

# compare RECIPE_PIX RECIPE_NORM: prints the oracle's line; status 0 within 1/255
compare() {
    "$DUMP" "$1" test "$TMP/p.raw" > "$TMP/d.out" 2>&1 &&
    "$DUMP" "$2" test "$TMP/n.raw" >> "$TMP/d.out" 2>&1 ||
        { echo "dump_data: $(cat "$TMP/d.out")"; return 2; }
    "$PYTV" "$top_srcdir/tests/torchvision_eq.py" "$TMP/img/c0" "$TMP/p.raw" "$TMP/n.raw"
}
line=$(compare "$TMP/pix.ini" "$TMP/norm.ini")
rc=$?
echo "figure: $line"
if [ $rc -eq 0 ] && echo "$line" | grep -q "^images $N "; then
    ok "torchvision equivalence within 1/255 on $N JPEGs: $line"
else bad "torchvision equivalence: exit $rc: $line"; fi

# the ingredients matter (the check can fail)
for v in "s/^CropRounding=HalfEven//" "s/^Interpolation=.*/Interpolation=Linear/"; do
    sed "$v" "$TMP/pix.ini" > "$TMP/pv.ini"
    sed "$v" "$TMP/norm.ini" > "$TMP/nv.ini"
    line=$(compare "$TMP/pv.ini" "$TMP/nv.ini")
    if [ $? -eq 1 ]; then ok "'$v' leaves the bound: $line"
    else bad "'$v' should break the equivalence: $line"; fi
done
finish
