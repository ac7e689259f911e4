#!/bin/sh
# test_mpi.sh - data-parallel training over MPI (issue 18), CPU backend.
#
# Equivalence: `mpirun -np 2` (1 thread per rank, SyncBatchNorm=1) against
# one process with the same global batch of 64, 20 steps of the LeNet-BN
# Fashion-MNIST fixture, for an LSQ W4A4 and a SAT W4A4 recipe: the loss of
# each step (--log) and every float of the final checkpoint's state
# (weights, biases, BatchNorm γ/β and running statistics, SAT α, LSQ steps)
# and of the optimizer state (momentum) agree within 1e-5 relative: each
# loss, and each run of 16 consecutive state floats (a piece of one tensor)
# in the max norm, |a - b|max <= 1e-5 · max(|a|max, |b|max, 1e-3) (the oracle is the
# single-process run, itself checked against PyTorch by
# tests/test_torch_equiv.sh).  The two runs sum the same per-image terms in
# another grouping, so they agree to float rounding, not bit for bit; a
# weight that training drives near 0 keeps its path's absolute rounding, so
# elementwise relative errors of such weights are machine-dependent (the
# SAT run's reached 1.3e-5 with a 1e-3 floor) and are not what is checked.
# Gradient buckets (AllReduceBucketKB): with 1 KiB several buckets, started
# during the backward (the note at the end of training), and with 0 one
# all-reduce after it: both equal to the one-process run, and to each other
# bit for bit.
# Local BatchNorm (no SyncBatchNorm): runs, writes, and differs from the
# single-process run (each rank normalizes with its own 32 images).
# The same on a PNG folder database (the decoder threads, a random flip:
# float fine-tuning).  --resume of the one-process checkpoint for a second epoch, 2 ranks vs 1
# process (the same start: QAT amplifies the 1e-6 differences of the
# checkpoints themselves through level flips):
# the same agreement.  Rank 0 alone writes: the output, the checkpoint and
# the --log.  Validation and test, split over the ranks and summed, give
# the one-process figures (top-1, top-5, macro F1).
# Faults: a bad recipe on every rank is one "qatconv: error" line and exit 3;
# SIGKILL of one rank mid-epoch (rank 1; rank 0 under mpirun -q) ends the
# job within 10 s with one error line naming the killed rank and no output
# file; SIGTERM to the job stops every rank after the current step with one
# error line, nothing written (mpirun's own exit status, not 0); SIGTERM to
# rank 1 alone: the same, exit 3.  A rank that fails alone (a truncated
# image folder on rank 1, in a training batch or in the calibration before
# the evaluations; on rank 0): one error line (the failing rank's, "rank 1:"),
# exit 3 within 10 s, no output file.
# Dropout in training: the 2-rank run equals the one-process run (each rank
# draws its images' share of the one-process masks).  SyncBatchNorm and
# Dropout on the (emulated) CUDA backend: the same equivalence.  Skips (77) only where mpirun is absent; a build without
# MPI under an installed mpirun is a failure (configure should have found it).
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
DATA=/usr/share/datasets/fashion-mnist

if ! command -v mpirun >/dev/null 2>&1; then
    echo "SKIP: mpirun missing (Debian: openmpi-bin libopenmpi-dev)"; exit 77
fi
if [ ! -d "$DATA" ] || ! "$PYTHON3" -c 'import numpy' 2>/dev/null; then
    echo "SKIP: $DATA or numpy missing"; exit 77
fi
if [ -n "${top_builddir:-}" ] && ! grep -q '^#define HAVE_MPI 1' "$top_builddir/config.h"; then
    bad "mpirun is installed but qatconv was built without MPI (configure --with-mpi)"
    finish
    exit 1
fi
MPIRUN="mpirun --oversubscribe"
[ "$(id -u)" -eq 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
# Under ASan (the sanitizer build), LeakSanitizer reports Open MPI's own
# allocations that MPI_Finalize does not free (ompi_op_base_op_select and the
# components it dlopens and unloads, "<unknown module>"), on every rank: leaks
# are not checked in the ranks; the same code paths in one process are (every
# other test), and ASan's other checks stay on in the ranks.
if ldd "$QATCONV" 2>/dev/null | grep -q libasan; then
    MPIRUN="$MPIRUN -x ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fi
# MPMD: "$MPIRUN1 -np 1 qatconv A : -np 1 qatconv B" gives each rank its own arguments
MPIRUN1=$MPIRUN
MPIRUN="$MPIRUN -np 2"
# one OpenMP thread per rank, and a tag to find this test's processes
export OMP_NUM_THREADS=1 QC_TEST_MPI_TAG=$$

sed -e 's/^Validation=.*/Validation=0/' "$top_srcdir/recipes/lenet-lsq-w4a4.ini" >"$TMP/lsq-local.ini"
sed -e 's/^Validation=.*/Validation=0/' "$top_srcdir/recipes/lenet-sat-w4a4.ini" >"$TMP/sat-local.ini"
for r in lsq sat; do
    { echo "SyncBatchNorm=1"; cat "$TMP/$r-local.ini"; } >"$TMP/$r.ini"
done
ARGS="--epochs 1 --limit 1280 --batch 64 --threads 1 --seed 7 --no-eval --quiet"

# cmp_runs A B: the --log losses and the checkpoints' state and optimizer
# floats of runs A and B; prints "steps N loss E state E opt E" (max
# relative errors: each loss, and each run of 16 consecutive state/optimizer
# floats in the max norm, see blockrel) and fails above 1e-5
cmp_runs() {
    "$PYTHON3" - "$1" "$2" <<'EOF'
import struct, sys
import numpy as np

def ckpt(path):
    b = open(path, "rb").read()
    assert b[:8] == b"QCCKPT01", path
    version, n_groups = struct.unpack_from("<II", b, 8)
    n_state, n_opt = struct.unpack_from("<qq", b, 32)
    # the header of checkpoint.c: 64 bytes (v1), 112 (v2), the metric name (v3)
    off = 64 + (112 if version >= 2 else 0) + (32 if version >= 3 else 0) + 24 * n_groups
    st = np.frombuffer(b, "<f4", n_state, off)
    opt = np.frombuffer(b, "<f4", n_opt, off + 4 * n_state)
    return st, opt

def losses(path):
    rows = [l.split(",") for l in open(path).read().split("\n")[1:] if l]
    return np.array([float(r[3]) for r in rows])

def rel(a, b):
    # elementwise, for the losses (about ln 10, never near 0)
    a, b = a.astype(np.float64), b.astype(np.float64)
    d = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-3)
    return float(d.max()) if d.size else 0.0

def blockrel(a, b, n=16):
    # the state and optimizer floats in runs of n consecutive floats (a piece of one
    # tensor: part of a kernel, a BatchNorm vector), each run's max-norm relative error
    # |a - b|max / max(|a|max, |b|max, 1e-3), the floor of rel above.  Not
    # elementwise: a weight that SGD walked from 0.05 to 1e-3 carries the absolute
    # rounding of its whole path (about 1e-8 here, float32's 6e-8 relative on each
    # step's gradient sums, grouped by rank), so its own relative error grows as it
    # nears 0 (1.3e-5 seen, SAT) while its tensor's stays near 1e-6; a missing or
    # wrong all-reduce is 1e-3 or more in every run.
    a, b = a.astype(np.float64), b.astype(np.float64)
    m = -(-a.size // n) * n
    A, B = np.zeros(m), np.zeros(m)
    A[:a.size], B[:b.size] = a, b
    A, B = A.reshape(-1, n), B.reshape(-1, n)
    den = np.maximum(np.maximum(np.abs(A).max(1), np.abs(B).max(1)), 1e-3)
    d = np.abs(A - B).max(1) / den
    return float(d.max()) if d.size else 0.0

A, B = sys.argv[1], sys.argv[2]
la, lb = losses(A + ".csv"), losses(B + ".csv")
(sa, oa), (sb, ob) = ckpt(A + ".ckpt"), ckpt(B + ".ckpt")
ok = len(la) == len(lb) > 0 and sa.size == sb.size and oa.size == ob.size
e = (rel(la, lb), blockrel(sa, sb), blockrel(oa, ob)) if ok else (1, 1, 1)
print("steps %d loss %.2e state %.2e (%d floats) opt %.2e" % (len(lb), e[0], e[1], sa.size, e[2]))
sys.exit(0 if ok and max(e) <= 1e-5 else 1)
EOF
}

# ---- equivalence: 2 ranks x 1 thread vs 1 process, SyncBatchNorm ----------------
for r in lsq sat; do
    "$QATCONV" "$M" -r "$TMP/$r.ini" -o "$TMP/$r-1.onnx" $ARGS --log "$TMP/$r-1.csv" \
        --checkpoint "$TMP/$r-1.ckpt" >"$TMP/out" 2>&1 || { cat "$TMP/out"; bad "$r: one process"; continue; }
    (cd "$TMP" && $MPIRUN "$QATCONV" "$M" -r "$r.ini" -o "$r-2.onnx" $ARGS --log "$r-2.csv" \
        --checkpoint "$r-2.ckpt") >"$TMP/out" 2>&1 || { cat "$TMP/out"; bad "$r: mpirun -np 2"; continue; }
    if fig=$(cmp_runs "$TMP/$r-1" "$TMP/$r-2"); then
        ok "$r: 2 ranks = 1 process within 1e-5: $fig"
    else
        bad "$r: 2 ranks differ from 1 process: $fig"
    fi
    [ -s "$TMP/$r-2.onnx" ] && ok "$r: rank 0 wrote the output" || bad "$r: no output"
    n=$(grep -c '^epoch 1/1' "$TMP/out")
    [ "$n" = 0 ] && ok "$r: --quiet on every rank" || bad "$r: $n epoch lines under --quiet"
done

# ---- gradient buckets: several (AllReduceBucketKB=1), none (0), the default above ----
# The LeNet's 60k gradients fill one bucket of the default 1024 KiB; with 1 KiB
# they make several, started while the backward still runs (the note at the
# end of training counts them); with 0, one all-reduce after the backward.
# Both equal the one-process run, and each other bit for bit (the same sums,
# then the same scaling, element by element).
BARGS=$(echo "$ARGS" | sed 's/ --quiet//')
for kb in 1 0; do
    { echo "AllReduceBucketKB=$kb"; cat "$TMP/lsq.ini"; } >"$TMP/kb$kb.ini"
    (cd "$TMP" && $MPIRUN "$QATCONV" "$M" -r "kb$kb.ini" -o "kb$kb.onnx" $BARGS --log "kb$kb.csv" \
        --checkpoint "kb$kb.ckpt") >"$TMP/kb$kb.out" 2>&1 || { cat "$TMP/kb$kb.out"; bad "AllReduceBucketKB=$kb: mpirun"; }
    if fig=$(cmp_runs "$TMP/lsq-1" "$TMP/kb$kb"); then
        ok "AllReduceBucketKB=$kb: 2 ranks = 1 process within 1e-5: $fig"
    else
        bad "AllReduceBucketKB=$kb: 2 ranks differ from 1 process: $fig"
    fi
done
note=$(grep '^gradients averaged over 2 ranks' "$TMP/kb1.out")
nb=$(echo "$note" | sed -n 's/.* in \([0-9]*\) buckets .*/\1/p')
early=$(echo "$note" | sed -n 's/.*, \([0-9]*\) started during the backward$/\1/p')
if [ "${nb:-0}" -ge 3 ] && [ "${early:-0}" -ge 20 ] && echo "$note" | grep -q ': [0-9]* all-reduces in 20 steps'; then
    ok "AllReduceBucketKB=1: several buckets, overlapping the backward ($note)"
else
    cat "$TMP/kb1.out"; bad "AllReduceBucketKB=1: not several overlapped buckets ($note)"
fi
if grep -q '^gradients averaged over 2 ranks by one all-reduce after each backward (AllReduceBucketKB=0): 20 steps' "$TMP/kb0.out"; then
    ok "AllReduceBucketKB=0: one all-reduce per step"
else
    cat "$TMP/kb0.out"; bad "AllReduceBucketKB=0: no one-all-reduce note"
fi
if cmp -s "$TMP/kb1.ckpt" "$TMP/kb0.ckpt" && cmp -s "$TMP/kb1.csv" "$TMP/kb0.csv"; then
    ok "buckets and one all-reduce: the same checkpoint and log, bit for bit"
else
    bad "buckets and one all-reduce give different floats"
fi

# ---- --resume: epoch 2 from the one-process checkpoint, 1 process vs 2 ranks ----
"$QATCONV" "$M" -r "$TMP/lsq.ini" -o "$TMP/res-1.onnx" $ARGS --epochs 2 --resume "$TMP/lsq-1.ckpt" \
    --log "$TMP/res-1.csv" --checkpoint "$TMP/res-1.ckpt" >"$TMP/out" 2>&1 ||
    { cat "$TMP/out"; bad "resume: one process"; }
(cd "$TMP" && $MPIRUN "$QATCONV" "$M" -r lsq.ini -o res-2.onnx $ARGS --epochs 2 --resume lsq-1.ckpt \
    --log res-2.csv --checkpoint res-2.ckpt) >"$TMP/out" 2>&1 || { cat "$TMP/out"; bad "resume: mpirun"; }
if fig=$(cmp_runs "$TMP/res-1" "$TMP/res-2"); then
    ok "resume (2 ranks): epoch 2 = 1 process within 1e-5: $fig"
else
    bad "resume (2 ranks) differs from 1 process: $fig"
fi

# ---- image folders: the decoder threads take the rank's slice -----------------------
if "$PYTHON3" "$top_srcdir/tests/make_images.py" fashion "$DATA" "$TMP/f" >/dev/null 2>&1; then
    cat >"$TMP/dir.ini" <<EOF2
SyncBatchNorm=1
Solvers.LearningRate=0.002
Solvers.Momentum=0.9
[database]
Type=DIR_Database
DataPath=$TMP/f/dir
Learn=1.0
[sp]
SizeX=28
SizeY=28
NbChannels=1
BatchSize=64
[sp.Transformation-1]
Type=FlipTransformation
RandomHorizontalFlip=1
ApplyTo=LearnOnly
[sp.Transformation-2]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
EOF2
    "$QATCONV" "$M" -r "$TMP/dir.ini" -o "$TMP/dir-1.onnx" $ARGS --log "$TMP/dir-1.csv" \
        --checkpoint "$TMP/dir-1.ckpt" >"$TMP/out" 2>&1 || { cat "$TMP/out"; bad "folder: one process"; }
    (cd "$TMP" && $MPIRUN "$QATCONV" "$M" -r dir.ini -o dir-2.onnx $ARGS --log dir-2.csv \
        --checkpoint dir-2.ckpt) >"$TMP/out" 2>&1 || { cat "$TMP/out"; bad "folder: mpirun"; }
    if fig=$(cmp_runs "$TMP/dir-1" "$TMP/dir-2"); then
        ok "image folder (decoder threads, random flip): 2 ranks = 1 process: $fig"
    else
        bad "image folder: 2 ranks differ from 1 process: $fig"
    fi
else
    bad "making the image folders (tests/make_images.py)"
fi

# ---- validation and test split over the ranks, figures summed ------------------------
sed 's/^Validation=0$/Validation=0.05/' "$TMP/lsq.ini" >"$TMP/val.ini"
EV="--epochs 1 --limit 1280 --batch 64 --threads 1 --seed 7"
"$QATCONV" "$M" -r "$TMP/val.ini" -o "$TMP/val-1.onnx" $EV >"$TMP/val-1.out" 2>&1 ||
    { cat "$TMP/val-1.out"; bad "evaluation: one process"; }
(cd "$TMP" && $MPIRUN "$QATCONV" "$M" -r val.ini -o val-2.onnx $EV) >"$TMP/val-2.out" 2>&1 ||
    { cat "$TMP/val-2.out"; bad "evaluation: mpirun"; }
grep '^summary: .*\(validation\|test\)' "$TMP/val-1.out" >"$TMP/val-1.sum"
grep '^summary: .*\(validation\|test\)' "$TMP/val-2.out" >"$TMP/val-2.sum"
if [ "$(wc -l <"$TMP/val-1.sum")" -ge 3 ] && cmp -s "$TMP/val-1.sum" "$TMP/val-2.sum"; then
    ok "validation and test over 2 ranks: the one-process figures ($(sed -n 2p "$TMP/val-1.sum"))"
else
    diff "$TMP/val-1.sum" "$TMP/val-2.sum"; bad "evaluation figures differ under 2 ranks"
fi

# ---- Dropout: each rank draws its slice's masks of the one-process draw --------
# A Dropout (ratio 0.3) after each hidden ReLU of the Fashion MLP, float
# fine-tuning: the 2-rank run equals the one-process run only if rank r uses
# the single process's uniforms of its images (ranks drawing the first ones
# each, as before, give both halves the same masks and another result).
if "$PYTHON3" - "$top_srcdir/testdata/fashion_mlp.onnx" "$TMP/mlp_drop.onnx" <<'EOF'
import sys
import onnx
from onnx import helper, numpy_helper
import numpy as np
m = onnx.load(sys.argv[1])
g = m.graph
g.initializer.append(numpy_helper.from_array(np.array(0.3, np.float32), "drop_ratio"))
nodes = []
for n in g.node:
    nodes.append(n)
    if n.op_type == "Relu":
        y = n.output[0]
        n.output[0] = y + "_pre"
        nodes.append(helper.make_node("Dropout", [y + "_pre", "drop_ratio"], [y],
                                      name="drop_" + y))
del g.node[:]
g.node.extend(nodes)
onnx.checker.check_model(m)
onnx.save(m, sys.argv[2])
EOF
then
    cat >"$TMP/drop.ini" <<EOF2
Solvers.LearningRate=0.01
Solvers.Momentum=0.9
[database]
Type=MNIST_IDX_Database
DataPath=$DATA
Validation=0
[sp]
SizeX=28
SizeY=28
NbChannels=1
BatchSize=64
[sp.Transformation-1]
Type=RangeAffineTransformation
FirstOperator=Divides
FirstValue=255.0
EOF2
    "$QATCONV" "$TMP/mlp_drop.onnx" -r "$TMP/drop.ini" -o "$TMP/drop-1.onnx" $ARGS --log "$TMP/drop-1.csv" \
        --checkpoint "$TMP/drop-1.ckpt" >"$TMP/out" 2>&1 || { cat "$TMP/out"; bad "Dropout: one process"; }
    (cd "$TMP" && $MPIRUN "$QATCONV" mlp_drop.onnx -r drop.ini -o drop-2.onnx $ARGS --log drop-2.csv \
        --checkpoint drop-2.ckpt) >"$TMP/out" 2>&1 || { cat "$TMP/out"; bad "Dropout: mpirun"; }
    if fig=$(cmp_runs "$TMP/drop-1" "$TMP/drop-2"); then
        ok "Dropout in training: 2 ranks = 1 process within 1e-5: $fig"
    else
        bad "Dropout in training: 2 ranks differ from 1 process: $fig"
    fi
else
    bad "making the MLP with Dropout"
fi

# ---- local BatchNorm: runs, not equivalent ----------------------------------------
(cd "$TMP" && $MPIRUN "$QATCONV" "$M" -r lsq-local.ini -o local.onnx $ARGS --log local-2.csv \
    --checkpoint local-2.ckpt) >"$TMP/out" 2>&1 || { cat "$TMP/out"; bad "local BN: mpirun"; }
if [ -s "$TMP/local.onnx" ]; then
    cp "$TMP/lsq-1.csv" "$TMP/local-1.csv"
    cp "$TMP/lsq-1.ckpt" "$TMP/local-1.ckpt"
    if fig=$(cmp_runs "$TMP/local-1" "$TMP/local-2"); then
        bad "local BN: equals the single-process run ($fig): BatchNorm not local?"
    else
        ok "local BN: runs, differs from one process as documented: $fig"
    fi
else
    bad "local BN: no output"
fi

# ---- SyncBatchNorm and Dropout on the (emulated) CUDA backend ------------------------
# tests/qatconv_emu (qatconv on the CUDA emulator of tests/cuda_emu, where
# built), --device cuda, one emulated GPU per rank (QC_EMU_DEVICE_COUNT=2:
# rank r opens cuda:r).  The device BatchNorm sums its per-channel statistics
# over the ranks (the forward's Σx, Σ(x−μ)², the backward's Σdy, Σdy·x̂) and
# each rank's Dropout hashes its images' global indices: 2 ranks equal one
# emulated process with the same global batch, within the 1e-5 of the CPU
# cases (with the sums over the ranks made no-ops, 9e-2 apart or more; with
# the masks of the first images on every rank, 0.2).  A build with NCCL averages the
# gradients through nccl.c on the device (emulated over MPI,
# tests/cuda_emu/emu_nccl.c), one without through the host.  The recipes:
# SAT (α), and LSQ with a given first activation step (QAct.StepSize): with
# the data-initialised one, the single emulated process's step of the first
# batch (its own order of the Σ|x| parts) is an ulp off the 2-rank one
# (which equals the CPU's), and the 4-bit level flips that follow move some
# losses by 1e-4..1e-2: float rounding amplified, not a missing sum.
EMU=${top_builddir:-.}/tests/qatconv_emu
if [ -x "$EMU" ]; then
    sed 's/^QActSolver.Momentum=0.9$/&\nQAct.StepSize=0.2\nQAct.SetOptInitStepSize=0/' "$TMP/lsq.ini" >"$TMP/lsqfix.ini"
    grep -q '^QAct.StepSize=0.2$' "$TMP/lsqfix.ini" || bad "CUDA: making lsqfix.ini"
    for r in sat lsqfix; do
        QC_EMU_DEVICE_COUNT=2 "$EMU" "$M" -r "$TMP/$r.ini" -o "$TMP/cu-$r-1.onnx" $ARGS --device cuda \
            --log "$TMP/cu-$r-1.csv" --checkpoint "$TMP/cu-$r-1.ckpt" >"$TMP/out" 2>&1 ||
            { cat "$TMP/out"; bad "CUDA $r: one process"; continue; }
        (cd "$TMP" && QC_EMU_DEVICE_COUNT=2 $MPIRUN "$EMU" "$M" -r "$r.ini" -o "cu-$r-2.onnx" $ARGS \
            --device cuda --log "cu-$r-2.csv" --checkpoint "cu-$r-2.ckpt") >"$TMP/out" 2>&1 ||
            { cat "$TMP/out"; bad "CUDA $r: mpirun -np 2"; continue; }
        if fig=$(cmp_runs "$TMP/cu-$r-1" "$TMP/cu-$r-2"); then
            ok "SyncBatchNorm on (emulated) CUDA, $r: 2 ranks = 1 process within 1e-5: $fig"
        else
            bad "SyncBatchNorm on (emulated) CUDA, $r: 2 ranks differ from 1 process: $fig"
        fi
    done
    if [ -s "$TMP/mlp_drop.onnx" ]; then
        QC_EMU_DEVICE_COUNT=2 "$EMU" "$TMP/mlp_drop.onnx" -r "$TMP/drop.ini" -o "$TMP/cu-drop-1.onnx" \
            $ARGS --device cuda --log "$TMP/cu-drop-1.csv" --checkpoint "$TMP/cu-drop-1.ckpt" \
            >"$TMP/out" 2>&1 || { cat "$TMP/out"; bad "CUDA Dropout: one process"; }
        (cd "$TMP" && QC_EMU_DEVICE_COUNT=2 $MPIRUN "$EMU" mlp_drop.onnx -r drop.ini -o cu-drop-2.onnx \
            $ARGS --device cuda --log cu-drop-2.csv --checkpoint cu-drop-2.ckpt) >"$TMP/out" 2>&1 ||
            { cat "$TMP/out"; bad "CUDA Dropout: mpirun"; }
        if fig=$(cmp_runs "$TMP/cu-drop-1" "$TMP/cu-drop-2"); then
            ok "Dropout on (emulated) CUDA: 2 ranks = 1 process within 1e-5: $fig"
        else
            bad "Dropout on (emulated) CUDA: 2 ranks differ from 1 process: $fig"
        fi
    fi
fi

# ---- faults -------------------------------------------------------------------------
printf 'Epochs=1\n[sp]\nBatchSize=abc\n' >"$TMP/bad.ini"
(cd "$TMP" && $MPIRUN "$QATCONV" "$M" -r bad.ini -o bad.onnx --threads 1) >"$TMP/out" 2>&1
rc=$?
n=$(grep -c '^qatconv: error' "$TMP/out")
if [ "$rc" = 3 ] && [ "$n" = 1 ] && [ ! -e "$TMP/bad.onnx" ]; then
    ok "bad recipe on every rank: one error line, exit 3"
else
    cat "$TMP/out"; bad "bad recipe: exit $rc, $n error lines"
fi

# ---- a rank that fails alone --------------------------------------------------------
# Rank 1 (or 0) reads a copy of the image folder whose PNGs are truncated
# (the same names: the listing, the split and the batches agree with the
# other rank's; the first decode fails): the job prints ONE error line, the
# failing rank's ("rank 1: ..." when it is not rank 0), exits 3 within 10 s,
# no output file.  Without eval the failure is in a training batch, with it
# in the calibration batch before the evaluations.
if [ -d "$TMP/f/dir" ]; then
    cp -r "$TMP/f/dir" "$TMP/fbad"
    find "$TMP/fbad" -name '*.png' | while read -r png; do
        head -c 100 "$png" >"$png.t" && mv "$png.t" "$png"
    done
    sed '/^SyncBatchNorm=/d' "$TMP/dir.ini" >"$TMP/good.ini"
    sed "s|^DataPath=.*|DataPath=$TMP/fbad|" "$TMP/good.ini" >"$TMP/corrupt.ini"
    for case in "1 --no-eval" "1 " "0 --no-eval"; do
        set -- $case
        bad_rank=$1; shift
        if [ "$bad_rank" = 1 ]; then r0=good.ini r1=corrupt.ini; else r0=corrupt.ini r1=good.ini; fi
        FA="--epochs 1 --batch 64 --threads 1 --seed 7 $*"
        t0=$(date +%s)
        (cd "$TMP" && $MPIRUN1 -np 1 "$QATCONV" "$M" -r $r0 -o lone.onnx $FA : \
            -np 1 "$QATCONV" "$M" -r $r1 -o lone.onnx $FA) >"$TMP/lone.out" 2>&1
        rc=$? secs=$(($(date +%s) - t0))
        n=$(grep -c '^qatconv: error' "$TMP/lone.out")
        want='^qatconv: error: .*fbad/.*PNG'
        [ "$bad_rank" = 1 ] && want='^qatconv: error: rank 1: .*fbad/.*PNG'
        if [ "$rc" = 3 ] && [ "$n" = 1 ] && grep -q "$want" "$TMP/lone.out" &&
            [ "$secs" -le 10 ] && [ ! -e "$TMP/lone.onnx" ]; then
            ok "rank $bad_rank fails alone (${*:-with eval}): one error line, exit 3 in ${secs} s, no output: $(grep '^qatconv: error' "$TMP/lone.out")"
        else
            cat "$TMP/lone.out"; bad "rank $bad_rank fails alone (${*:-with eval}): exit $rc, $n error lines, ${secs} s"
        fi
        rm -f "$TMP/lone.onnx"
    done
else
    bad "a rank that fails alone: no image folder"
fi

# the pid of rank $1 of this test's job $job (a child of mpirun whose
# environment carries the tag)
rank_pid() {
    for p in $(pgrep -P "$job"); do
        e=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/environ") || continue
        if echo "$e" | grep -qx "QC_TEST_MPI_TAG=$$" &&
            echo "$e" | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
            echo "$p"; return
        fi
    done
}
# start_long NAME [RANK [MPIRUN-OPTION]]: a run of several minutes in the
# background, $job its mpirun, $victim its rank RANK (default 1) once it has
# logged 3 steps (up to 90 s: the sanitizer build on a loaded machine needed
# more than 30); a job that did not get there is ended
start_long() {
    (cd "$TMP" && exec $MPIRUN ${3:-} "$QATCONV" "$M" -r lsq.ini -o "$1.onnx" --epochs 1 --batch 64 \
        --threads 1 --no-eval --log "$1.csv") >"$TMP/$1.out" 2>&1 &
    job=$!
    victim=
    for _ in $(seq 900); do
        [ -s "$TMP/$1.csv" ] && [ "$(wc -l <"$TMP/$1.csv")" -gt 3 ] && victim=$(rank_pid "${2:-1}")
        [ -n "$victim" ] && return 0
        kill -0 "$job" 2>/dev/null || return 1
        sleep 0.1
    done
    kill -TERM "$job" 2>/dev/null   # mpirun ends its ranks
    wait "$job"
    return 1
}
# wait_end: seconds until $job ends (at most 30), its status in $rc
wait_end() {
    t0=$(date +%s)
    while kill -0 "$job" 2>/dev/null && [ $(($(date +%s) - t0)) -lt 30 ]; do sleep 0.1; done
    secs=$(($(date +%s) - t0))
    kill -9 "$job" 2>/dev/null
    wait "$job"
    rc=$?
}

# a rank killed mid-epoch (SIGKILL: no handler runs in it): the lowest
# surviving rank of its node says which one in one qatconv line (besides
# Open MPI's banner, which mpirun -q leaves out), every survivor stops, the
# job ends within 10 s, no output file.  Rank 1 killed (rank 0 says it);
# rank 0 killed under mpirun -q (rank 1 says it, on the launcher's stderr).
for kcase in "1" "0 -q"; do
    set -- $kcase
    if start_long "killed$1" "$1" "${2:-}"; then
        kill -9 "$victim"
        wait_end
        out=$TMP/killed$1.out
        n=$(grep -c '^qatconv: error' "$out")
        if [ "$secs" -le 10 ] && [ "$rc" != 0 ] && [ "$n" = 1 ] && [ ! -e "$TMP/killed$1.onnx" ] &&
            grep -q "^qatconv: error: rank $1 of the job ended abnormally (killed or crashed); every rank stopped, nothing written\$" "$out"; then
            ok "rank $1 killed${2:+ ($2)}: one error line, the job ended in ${secs} s, exit $rc, no output: $(grep '^qatconv: error' "$out")"
        else
            cat "$out"; bad "rank $1 killed${2:+ ($2)}: ${secs} s, exit $rc, $n error lines"
        fi
    else
        cat "$TMP/killed$1.out"; bad "killed rank $1: the job did not start"
    fi
done

if start_long term; then
    kill -TERM "$job"
    wait_end
    n=$(grep -c '^qatconv: error' "$TMP/term.out")
    # mpirun forwards the signal and exits with its own status (not 0)
    if [ "$rc" != 0 ] && [ "$n" = 1 ] && [ ! -e "$TMP/term.onnx" ] && [ "$secs" -le 10 ] &&
        grep -q 'interrupted by signal 15 .* nothing written' "$TMP/term.out"; then
        ok "SIGTERM: every rank stopped after a step in ${secs} s, exit $rc, nothing written"
    else
        cat "$TMP/term.out"; bad "SIGTERM: exit $rc, ${secs} s"
    fi
else
    cat "$TMP/term.out"; bad "SIGTERM: the job did not start"
fi

# a signal to one rank (as a scheduler or Ctrl-C on the process group
# delivers it to the ranks): every rank stops after the step, the ranks
# agree on it, rank 0 says it, and qatconv's exit status 3 is the job's
if start_long term1; then
    kill -TERM "$victim"
    wait_end
    n=$(grep -c '^qatconv: error' "$TMP/term1.out")
    if [ "$rc" = 3 ] && [ "$n" = 1 ] && [ ! -e "$TMP/term1.onnx" ] && [ "$secs" -le 10 ] &&
        grep -q '^qatconv: error: interrupted by signal 15 .* nothing written' "$TMP/term1.out"; then
        ok "SIGTERM to rank 1: every rank stopped after a step in ${secs} s, exit 3, one line"
    else
        cat "$TMP/term1.out"; bad "SIGTERM to rank 1: exit $rc, $n error lines, ${secs} s"
    fi
else
    cat "$TMP/term1.out"; bad "SIGTERM to rank 1: the job did not start"
fi

finish
