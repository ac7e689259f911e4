#!/bin/sh
# test_plots.sh - --plots DIR: every PNG written there is a valid PNG (the
# signature, every chunk's CRC-32, a sane IHDR, IDAT inflating to exactly the
# bytes the IHDR implies, IEND last) with a picture on it, decoded by an
# independent reader (Python's zlib and struct); graph.dot names every node
# of the written model, graph.png exists when Graphviz dot is on PATH, and
# without dot the run still succeeds with one warning and graph.dot.  The
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

# check_plots DIR MODEL DESC: the checks on one --plots directory.
check_plots() {
    dir=$1; model=$2; desc=$3
    if [ ! -d "$dir" ]; then
        bad "$desc: no plots directory"; return
    fi
    pngs=$(find "$dir" -name '*.png' | sort)
    nhist=$(find "$dir" -name '*.png' ! -name graph.png | wc -l)
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
}

# 1. fake-quant export with plots
"$QATCONV" "$M" -r "$R" -o "$TMP/out.onnx" --epochs 1 --limit 512 --quiet \
    --plots "$TMP/plots" >"$TMP/run.out" 2>"$TMP/run.err"
rc=$?
if [ "$rc" -eq 0 ]; then
    ok "run with --plots"
else
    bad "run with --plots: exit $rc"; cat "$TMP/run.err"
fi
check_plots "$TMP/plots" "$TMP/out.onnx" "fake"

# 2. the checker can fail: corrupted copies of a histogram PNG are rejected
one=$(find "$TMP/plots" -name '*.png' ! -name graph.png | head -n 1)
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

# 3. integer export, when available: the same checks
if "$QATCONV" --help | grep -- '--format' | grep -q 'int'; then
    "$QATCONV" "$M" -r "$R" -o "$TMP/int.onnx" --epochs 1 --limit 512 --quiet --format int \
        --plots "$TMP/plots_int" >"$TMP/run.out" 2>"$TMP/run.err"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        ok "int run with --plots"
    else
        bad "int run: exit $rc"; cat "$TMP/run.err"
    fi
    check_plots "$TMP/plots_int" "$TMP/int.onnx" "int"
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
