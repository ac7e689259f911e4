#!/bin/sh
# test_plots.sh - --plots DIR: every PNG written there is a valid PNG (the
# signature, every chunk's CRC-32, a sane IHDR, IDAT inflating to exactly the
# bytes the IHDR implies, IEND last) with a picture on it, decoded by an
# independent reader (Python's zlib and struct); graph.dot names every node
# of the written model, graph.png exists when Graphviz dot is on PATH, and
# without dot the run still succeeds with one warning and graph.dot.  The
# confusion matrix (confusion.png) is a valid PNG of the size plots.h states
# for the model's classes, and its cells are coloured as the counts of the
# --report JSON order them (cell (t, p) sampled at its top-left pixel, which
# holds no text: a larger count is never lighter, the largest is the darkest,
# a zero is white, the most-correct class's diagonal cell is the darkest); a
# confusion.png that cannot be written is one error line naming it.  The
# checker itself is shown to reject corrupted copies.  A qatconv without
# --plots fails; without Fashion-MNIST the test exits 77 (skipped) saying so.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
R=$top_srcdir/recipes/lenet-lsq-w4a4.ini
DATA=/usr/share/datasets/fashion-mnist

if ! "$QATCONV" --help 2>/dev/null | grep -q -- '--plots'; then
    bad "qatconv --help lists no --plots option"
    finish; exit 1
fi
if [ ! -r "$DATA/t10k-images-idx3-ubyte.gz" ]; then
    echo "SKIP: no Fashion-MNIST in $DATA (scripts/install-deps installs it)"
    exit 77
fi

# check_png.py FILE...: exit 0 when every file is a valid, non-blank PNG;
# prints one line per file.
cat > "$TMP/check_png.py" <<'PY'
import struct, sys, zlib

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def check(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return "bad signature"
    pos, chunks = 8, []
    while pos < len(data):
        if pos + 12 > len(data):
            return "truncated chunk header at %d" % pos
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            return "truncated %r chunk" % ctype
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            return "CRC mismatch in %r chunk" % ctype
        chunks.append((ctype, body))
        pos += 12 + n
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        return "first chunk is not a 13-byte IHDR"
    if chunks[-1] != (b"IEND", b""):
        return "last chunk is not an empty IEND"
    w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if not (0 < w <= 1 << 16 and 0 < h <= 1 << 16):
        return "bad size %dx%d" % (w, h)
    if ctype not in CHANNELS or comp != 0 or filt != 0 or interlace not in (0, 1):
        return "bad IHDR fields %r" % ((depth, ctype, comp, filt, interlace),)
    if depth != 8 and not (ctype in (0, 3) and depth in (1, 2, 4)):
        return "unsupported bit depth %d for colour type %d" % (depth, ctype)
    idat = b"".join(body for t, body in chunks if t == b"IDAT")
    if not idat:
        return "no IDAT"
    try:
        raw = zlib.decompress(idat)
    except zlib.error as e:
        return "IDAT does not inflate: %s" % e
    if interlace:
        return None  # valid as far as checked; the row layout differs
    bpp = CHANNELS[ctype] * depth
    stride = (w * bpp + 7) // 8
    if len(raw) != h * (1 + stride):
        return "IDAT inflates to %d bytes, expected %d" % (len(raw), h * (1 + stride))
    # unfilter every row and count distinct pixels: a plot is not blank
    step = max(1, bpp // 8)
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        f = raw[y * (1 + stride)]
        line = bytearray(raw[y * (1 + stride) + 1:(y + 1) * (1 + stride)])
        if f > 4:
            return "row %d has filter type %d" % (y, f)
        for i in range(stride):
            a = line[i - step] if i >= step else 0
            b = prev[i]
            c = prev[i - step] if i >= step else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                line[i] = (line[i] + paeth(a, b, c)) & 255
        if len(colours) < 3:
            colours.update(bytes(line[i:i + step]) for i in range(0, stride, step))
        prev = line
    if len(colours) < 3:
        return "blank picture (%d colours)" % len(colours)
    return None


bad = 0
for p in sys.argv[1:]:
    err = check(p)
    print("%s: %s" % (p, err or "valid PNG"))
    bad += err is not None
sys.exit(1 if bad or not sys.argv[1:] else 0)
PY

# check_confusion.py PNG REPORT CLASSES: the confusion-matrix picture against
# the report's counts (see the header); reuses check_png.py's decoder.
cat > "$TMP/check_confusion.py" <<'PY'
import json, struct, sys, zlib

png, report, k = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
conf = report["test"]["confusion"]
assert len(conf) == k and all(len(r) == k for r in conf), "report matrix is not %dx%d" % (k, k)
cell = max(4, min(48, 480 // k))
want_w, want_h = 48 + k * cell + 16, 56 + k * cell + 16
data = open(png, "rb").read()
pos, idat = 8, b""
while pos < len(data):
    (n,) = struct.unpack(">I", data[pos:pos + 4])
    t, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
    if t == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
    elif t == b"IDAT":
        idat += body
    pos += 12 + n
if (w, h) != (want_w, want_h) or (depth, ctype) != (8, 2):
    sys.exit("confusion.png is %dx%d depth %d type %d, expected %dx%d 8-bit RGB"
             % (w, h, depth, ctype, want_w, want_h))
raw, stride, prev, rows = zlib.decompress(idat), 3 * w, bytearray(3 * w), []
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a, b = (line[i - 3] if i >= 3 else 0), prev[i]
        c = prev[i - 3] if i >= 3 else 0
        p = a + b - c
        pred = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else \
            (b if abs(p - b) <= abs(p - c) else c)
        line[i] = (line[i] + [0, a, b, (a + b) // 2, pred][f]) & 255
    rows.append(line)
    prev = line
def rgb(t, p):
    x, y = 48 + p * cell, 56 + t * cell
    return tuple(rows[y][3 * x:3 * x + 3])
cells = [(conf[t][p], rgb(t, p), (t, p)) for t in range(k) for p in range(k)]
bad = 0
for n1, c1, at1 in cells:
    if n1 == 0 and c1 != (255, 255, 255):
        print("cell %s counts 0 but is %s, not white" % (at1, c1)); bad += 1
    for n2, c2, at2 in cells:
        # a larger count is never lighter, in every channel
        if n1 > n2 and any(a > b for a, b in zip(c1, c2)):
            print("cell %s (%d) is lighter than cell %s (%d): %s vs %s"
                  % (at1, n1, at2, n2, c1, c2)); bad += 1
            if bad > 5:
                sys.exit(1)
best = max(range(k), key=lambda i: conf[i][i])
darkest = min(cells, key=lambda c: sum(c[1]))
if sum(rgb(best, best)) != sum(darkest[1]):
    print("diagonal cell of class %d (%d correct) is not the darkest" % (best, conf[best][best]))
    bad += 1
distinct = len({c[1] for c in cells})
print("%dx%d, %d cells, %d colours, darkest: class %d's diagonal (%d)"
      % (w, h, k * k, distinct, best, conf[best][best]))
sys.exit(1 if bad or distinct < 3 else 0)
PY

# node_labels.py MODEL: every node's label (its name, or its first output
# name when the name is empty) as it must appear in DOT (escaped), one a line.
cat > "$TMP/node_labels.py" <<'PY'
import sys, onnx
m = onnx.load(sys.argv[1])
for n in m.graph.node:
    label = n.name or n.output[0]
    print(label.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;"))
PY

# edge_types.py DOT MODEL: every dtype label on an edge between two nodes of
# graph.dot equals the element type ONNX shape inference gives that value.
cat > "$TMP/edge_types.py" <<'PY'
import re, sys, onnx
from onnx import TensorProto
dot, m = open(sys.argv[1]).read(), onnx.shape_inference.infer_shapes(onnx.load(sys.argv[2]))
g = m.graph
types = {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.input)
         + list(g.output)}
types.update({t.name: t.data_type for t in g.initializer})
short = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64"}
by_label = {(n.name or n.output[0]): n for n in g.node}
ids = {}
for nid, text in re.findall(r'^  n(\d+) \[label="((?:[^"\\]|\\.)*)"', dot, re.M):
    ids[nid] = by_label.get(text.split("\\n")[1])
checked = bad = 0
for a, b, lab in re.findall(r'^  n(\d+) -> n(\d+) \[label="(\w+)"\]', dot, re.M):
    na, nb = ids.get(a), ids.get(b)
    vals = [o for o in na.output if o in nb.input] if na and nb else []
    if not vals or vals[0] not in types:
        continue
    t = types[vals[0]]
    want = short.get(t, TensorProto.DataType.Name(t).lower())
    checked += 1
    if lab != want:
        bad += 1
        print("edge %s: labelled %s, ONNX infers %s" % (vals[0], lab, want))
print("%d labelled edges checked, %d wrong" % (checked, bad))
sys.exit(1 if bad or checked == 0 else 0)
PY

# check_plots DIR MODEL DESC REPORT: the checks on one --plots directory.
check_plots() {
    dir=$1; model=$2; desc=$3
    if [ ! -d "$dir" ]; then
        bad "$desc: no plots directory"; return
    fi
    pngs=$(find "$dir" -name '*.png' | sort)
    nhist=$(find "$dir" -name 'hist_*.png' | wc -l)
    if [ "$nhist" -ge 1 ]; then
        ok "$desc: $nhist histogram PNGs"
    else
        bad "$desc: no histogram"
    fi
    # shellcheck disable=SC2086
    if "$PYTHON3" "$TMP/check_png.py" $pngs >"$TMP/pngcheck" 2>&1; then
        ok "$desc: all $(echo "$pngs" | wc -w) PNGs valid and not blank"
    else
        bad "$desc: invalid PNG"; cat "$TMP/pngcheck"
    fi
    if [ -f "$dir/graph.dot" ] && head -n 1 "$dir/graph.dot" | grep -q '^digraph'; then
        ok "$desc: graph.dot written"
    else
        bad "$desc: graph.dot missing or not a digraph"; return
    fi
    if ! "$PYTHON3" "$TMP/node_labels.py" "$model" >"$TMP/labels"; then
        bad "$desc: cannot list the nodes of $model"; return
    fi
    missing=0
    while IFS= read -r label; do
        if ! grep -qF -- "\\n$label" "$dir/graph.dot"; then
            echo "  node $label not in graph.dot"
            missing=$((missing + 1))
        fi
    done <"$TMP/labels"
    if [ "$missing" -eq 0 ] && [ -s "$TMP/labels" ]; then
        ok "$desc: graph.dot names all $(wc -l <"$TMP/labels") nodes"
    else
        bad "$desc: $missing nodes missing from graph.dot"
    fi
    if "$PYTHON3" "$TMP/edge_types.py" "$dir/graph.dot" "$model" >"$TMP/edges" 2>&1; then
        ok "$desc: edge dtypes agree with ONNX ($(tail -n 1 "$TMP/edges"))"
    else
        bad "$desc: edge dtypes"; cat "$TMP/edges"
    fi
    if grep -q 'fillcolor="#fde3c8"' "$dir/graph.dot"; then
        ok "$desc: quantized nodes carry notes"
    else
        bad "$desc: no node has a note (bits, scales)"
    fi
    if command -v dot >/dev/null 2>&1; then
        if [ -f "$dir/graph.png" ]; then
            ok "$desc: graph.png drawn"
        else
            bad "$desc: no graph.png"
        fi
        if dot -Tcanon "$dir/graph.dot" >/dev/null 2>"$TMP/doterr"; then
            ok "$desc: dot parses graph.dot"
        else
            bad "$desc: dot rejects graph.dot"; cat "$TMP/doterr"
        fi
    fi
    if ls "$dir"/.*.tmp "$dir"/.*.png.* >/dev/null 2>&1; then
        bad "$desc: temporary file left behind"
    fi
    if [ ! -f "$dir/confusion.png" ]; then
        bad "$desc: no confusion.png"
    elif "$PYTHON3" "$TMP/check_confusion.py" "$dir/confusion.png" "$4" 10 \
            >"$TMP/confcheck" 2>&1; then
        ok "$desc: confusion.png coloured as the report's counts ($(tail -n 1 "$TMP/confcheck"))"
    else
        bad "$desc: confusion.png"; cat "$TMP/confcheck"
    fi
}

# 1. fake-quant export with plots
"$QATCONV" "$M" -r "$R" -o "$TMP/out.onnx" --epochs 1 --limit 512 --quiet \
    --plots "$TMP/plots" --report "$TMP/fake.json" >"$TMP/run.out" 2>"$TMP/run.err"
rc=$?
if [ "$rc" -eq 0 ]; then
    ok "run with --plots"
else
    bad "run with --plots: exit $rc"; cat "$TMP/run.err"
fi
check_plots "$TMP/plots" "$TMP/out.onnx" "fake" "$TMP/fake.json"

# 2. the checker can fail: corrupted copies of a histogram PNG are rejected
one=$(find "$TMP/plots" -name 'hist_*.png' | head -n 1)
if [ -n "$one" ]; then
    size=$(wc -c <"$one")
    # a flipped byte inside IDAT (CRC mismatch), a truncated file, a bad signature
    cp "$one" "$TMP/flip.png"
    printf '\377' | dd of="$TMP/flip.png" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
    head -c $((size - 20)) "$one" >"$TMP/trunc.png"
    { printf 'XPNG'; tail -c +5 "$one"; } >"$TMP/sig.png"
    for f in flip trunc sig; do
        if "$PYTHON3" "$TMP/check_png.py" "$TMP/$f.png" >/dev/null 2>&1; then
            bad "checker accepts a corrupted PNG ($f)"
        else
            ok "checker rejects a corrupted PNG ($f)"
        fi
    done
fi

# 2b. the confusion checker can fail: the report's first row with its
# diagonal count swapped for a smaller one no longer orders as the picture
if [ -f "$TMP/fake.json" ] && "$PYTHON3" -c '
import json, sys
r = json.load(open(sys.argv[1]))
row = r["test"]["confusion"][0]
j = min(range(1, len(row)), key=lambda i: row[i])
row[0], row[j] = row[j], row[0]
json.dump(r, open(sys.argv[2], "w"))' "$TMP/fake.json" "$TMP/swapped.json"; then
    if "$PYTHON3" "$TMP/check_confusion.py" "$TMP/plots/confusion.png" "$TMP/swapped.json" 10 \
            >/dev/null 2>&1; then
        bad "confusion checker accepts a picture of other counts"
    else
        ok "confusion checker rejects a picture of other counts"
    fi
fi

# 3. integer export, when available: the same checks
if "$QATCONV" --help | grep -- '--format' | grep -q 'int'; then
    "$QATCONV" "$M" -r "$R" -o "$TMP/int.onnx" --epochs 1 --limit 512 --quiet --format int \
        --plots "$TMP/plots_int" --report "$TMP/int.json" >"$TMP/run.out" 2>"$TMP/run.err"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        ok "int run with --plots"
    else
        bad "int run: exit $rc"; cat "$TMP/run.err"
    fi
    check_plots "$TMP/plots_int" "$TMP/int.onnx" "int" "$TMP/int.json"
fi

# 3b. the confusion matrix cannot be written (a directory of that name is in
# the way): exit 3, one error line naming the file, no temporary left
mkdir -p "$TMP/plots_blocked/confusion.png/x"
"$QATCONV" "$M" -r "$R" -o "$TMP/blocked.onnx" --epochs 0 --limit 512 --quiet \
    --plots "$TMP/plots_blocked" >"$TMP/run.out" 2>"$TMP/run.err"
rc=$?
if [ "$rc" -ne 0 ] && [ "$(grep -c 'error:' "$TMP/run.err")" -eq 1 ] \
    && grep -q 'error:.*confusion\.png' "$TMP/run.err" \
    && ! ls "$TMP/plots_blocked"/.*.tmp >/dev/null 2>&1; then
    ok "unwritable confusion.png: exit $rc, $(cat "$TMP/run.err")"
else
    bad "unwritable confusion.png: exit $rc"; cat "$TMP/run.err"
fi

# 4. without Graphviz: still exit 0, one warning naming dot, graph.dot kept
mkdir "$TMP/emptybin"
env PATH="$TMP/emptybin" "$QATCONV" "$M" -r "$R" -o "$TMP/nodot.onnx" --epochs 0 --limit 512 \
    --no-eval --quiet --plots "$TMP/plots_nodot" >"$TMP/run.out" 2>"$TMP/run.err"
rc=$?
if [ "$rc" -eq 0 ] && [ -f "$TMP/plots_nodot/graph.dot" ] \
    && [ ! -e "$TMP/plots_nodot/graph.png" ] \
    && [ "$(grep -c 'warning:.*dot' "$TMP/run.err")" -eq 1 ]; then
    ok "without dot: exit 0, one warning, graph.dot only"
else
    bad "without dot: exit $rc"; cat "$TMP/run.err"; ls "$TMP/plots_nodot" 2>&1
fi

finish
