#!/bin/sh
# test_killresume.sh - hard stops (issue 12): a short LSQ W4A4 run on the
# LeNet fixture is killed with SIGKILL at 20 moments drawn by a seeded
# generator - during training steps (any time in the run), inside a
# checkpoint write and inside the output write - and then resumed with
# --resume from its last checkpoint (from scratch when none was written yet)
# until it completes.  After each kill the output is absent or whole, no
# temporary file is left, a kill inside a checkpoint write leaves the
# previous checkpoint; after each completion the output model and the final
# checkpoint (weights, quantizer steps, BatchNorm statistics, momentum,
# solver counters, best weights) equal the uninterrupted run's byte for byte.
#
# Bit equality is legitimate here, not a float tolerance: the same binary,
# the same --threads 1 and the same inputs make the same float operations in
# the same order; a checkpoint carries every input of the remaining run (the
# state, the generators, the pending IterationSize gradients) exactly.
#
# The recipe exercises what a resume must restore: LSQ steps initialized
# from data, momentum, a cosine learning rate, IterationSize=3 (with
# --checkpoint-every 4 some checkpoints fall inside an accumulation), a
# random flip (the data generator) and a validation split (best weights).
# Kills inside writes use the test-only hook QATCONV_TEST_WRITE_PAUSE
# (src/fileio.c).  Corrupt, truncated and mismatched checkpoints: one error
# line, exit 2.  Under QC_TEST_SCALE=small (tests/lib.sh): 8 kills (4 during
# steps, 2 inside checkpoint writes, 2 inside the output write, the second over
# an existing file), not 20.
. "${top_srcdir:-.}/tests/lib.sh"
M=$top_srcdir/testdata/fashion_lenet_bn.onnx

sed -e 's/^Validation=0.1/Validation=0.01/' \
    -e 's/^Solvers.LearningRatePolicy=CosineDecay/&\nSolvers.IterationSize=3/' \
    "$top_srcdir/recipes/lenet-lsq-w4a4.ini" > "$TMP/r.ini"
cat >> "$TMP/r.ini" <<'EOF2'
[sp.Transformation-2]
Type=FlipTransformation
RandomHorizontalFlip=1
ApplyTo=LearnOnly
EOF2
grep -q '^Solvers.IterationSize=3' "$TMP/r.ini" || bad "recipe: IterationSize not set"
# 2 epochs of 16 batches: checkpoints after batches 4, 8, 12, the end of
# epoch 1, then batches 20, 24, 28 and the end of epoch 2 (8 writes)
N_CKPT=8
ARGS="--epochs 2 --limit 1024 --batch 64 --threads 1 --seed 5 --no-eval --quiet"
D=$TMP/run
mkdir "$D"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
R=20260412
rnd() {   # rnd N: a number in [0, N) from the seeded generator, in $V
    R=$(((R * 1103515245 + 12345) % 2147483648))
    V=$(((R / 65536) % $1))
}
# position of a checkpoint: "epochs_done:batches_done" (checkpoint.h)
ckpt_pos() {
    [ -f "$1" ] || { echo none; return; }
    e=$(od -An -t d8 -j 16 -N 8 "$1" | tr -d ' ')
    b=$(od -An -t d8 -j 64 -N 8 "$1" | tr -d ' ')
    echo "$e:$b"
}
# position after checkpoint write number J (1-based) of the run
write_pos() {
    if [ "$1" -eq 0 ]; then echo none
    elif [ $((($1 - 1) % 4)) -eq 3 ]; then echo "$((($1 - 1) / 4 + 1)):0"
    else echo "$((($1 - 1) / 4)):$(((($1 - 1) % 4 + 1) * 4))"; fi
}
leftovers() { ls -A "$D" | grep -v -e '^k\.ckpt$' -e '^k\.onnx$' -e '^k\.err$' -e '^old\.onnx$'; }

# the uninterrupted runs: without and with checkpoints (checkpointing
# changes nothing)
"$QATCONV" "$M" -r "$TMP/r.ini" $ARGS -o "$TMP/plain.onnx" > "$TMP/plain.out" 2>&1 ||
    bad "uninterrupted run: $(cat "$TMP/plain.out")"
# the reference, timed: T0 when the first checkpoint appears (batch 4), T1
# when the output does; training steps lie in between
t0=$(now_ms)
"$QATCONV" "$M" -r "$TMP/r.ini" $ARGS -o "$TMP/ref.onnx" --checkpoint "$TMP/ref.ckpt" \
    --checkpoint-every 4 > "$TMP/ref.out" 2>&1 &
pid=$!
T0=""
while kill -0 $pid 2>/dev/null; do
    [ -z "$T0" ] && [ -f "$TMP/ref.ckpt" ] && T0=$(($(now_ms) - t0))
    [ -f "$TMP/ref.onnx" ] && break
    sleep 0.01
done
T1=$(($(now_ms) - t0))
wait $pid || bad "reference run: $(cat "$TMP/ref.out")"
T=$(($(now_ms) - t0))
if cmp -s "$TMP/plain.onnx" "$TMP/ref.onnx" && [ "$(ckpt_pos "$TMP/ref.ckpt")" = 2:0 ]; then
    ok "reference run: ${T} ms (first checkpoint at ${T0:-?}, output at $T1), checkpoints" \
       "every 4 batches change nothing"
else
    bad "checkpoints change the result, or the final one is at $(ckpt_pos "$TMP/ref.ckpt")"
fi
# kills "during steps": from 300 ms before the first checkpoint to the output
T0=$((${T0:-300} - 300))
[ "$T0" -gt 50 ] || T0=50
[ "$T1" -gt $((T0 + 100)) ] || T1=$((T0 + 100))

# run_k [ENV=VALUE]: one run into $D, in the background, pid in $pid
run_k() {
    res=""
    [ -f "$D/k.ckpt" ] && res="--resume $D/k.ckpt"
    env "$1" "$QATCONV" "$M" -r "$TMP/r.ini" $ARGS -o "$D/k.onnx" --checkpoint "$D/k.ckpt" \
        --checkpoint-every 4 $res > /dev/null 2> "$D/k.err" &
    pid=$!
}
# wait_pauses N: until the N-th "pausing in the write" line or the end
wait_pauses() {
    i=0
    while [ "$(grep -c 'pausing in the write' "$D/k.err")" -lt "$1" ] &&
          kill -0 $pid 2>/dev/null && [ $i -lt 1200 ]; do
        sleep 0.02; i=$((i + 1))
    done
}
# after_kill: the output absent or whole (or untouched), no temporary file
after_kill() {
    if [ -e "$D/k.onnx" ] && ! cmp -s "$D/k.onnx" "$TMP/ref.onnx" &&
       ! { [ -e "$D/old.onnx" ] && cmp -s "$D/k.onnx" "$D/old.onnx"; }; then
        bad "kill $1: $D/k.onnx is half-written ($(wc -c < "$D/k.onnx") bytes)"
        return 1
    fi
    if [ -n "$(leftovers)" ]; then
        bad "kill $1: left behind: $(leftovers | tr '\n' ' ')"
        rm -f "$D"/.k.*
        return 1
    fi
}
# resume_loop: resume (or start) until a run completes; bit equality after
resume_loop() {
    tries=0
    while :; do
        run_k QATCONV_TEST_WRITE_PAUSE=
        { wait $pid; } 2>/dev/null
        rc=$?
        tries=$((tries + 1))
        [ $rc -eq 0 ] && break
        if [ $tries -ge 3 ]; then bad "kill $1: resume fails: $(cat "$D/k.err")"; return; fi
    done
    resumes=$((resumes + tries))
    if cmp -s "$D/k.onnx" "$TMP/ref.onnx" && cmp -s "$D/k.ckpt" "$TMP/ref.ckpt" &&
       [ -z "$(leftovers)" ]; then
        ok "kill $1 ($2): resumed from $3, output and final checkpoint bit-identical"
    else
        bad "kill $1 ($2): resumed from $3, result differs from the uninterrupted run"
    fi
}

# 20 kills: 12 at a random time of the run, 5 inside a checkpoint write,
# 3 inside the output write, in an order drawn by the generator
phases=$(scaled "step step step step step step step step step step step step ckpt ckpt ckpt ckpt ckpt out out out" \
    "step step step step ckpt ckpt out out")
n_kills=$(echo $phases | wc -w)
order=""
left=$phases
n_left=$n_kills
while [ $n_left -gt 0 ]; do
    rnd $n_left
    j=0
    rest=""
    for p in $left; do
        if [ $j -eq $V ]; then order="$order $p"; else rest="$rest $p"; fi
        j=$((j + 1))
    done
    left=$rest
    n_left=$((n_left - 1))
done
resumes=0
n_step=0; n_ckpt=0; n_out=0
t_start=$(now_ms)
k=0
for phase in $order; do
    k=$((k + 1))
    rm -f "$D/k.ckpt" "$D/k.onnx" "$D/old.onnx"
    case $phase in
    step)
        n_step=$((n_step + 1))
        rnd $((T1 - T0))
        ms=$((T0 + V))
        run_k QATCONV_TEST_WRITE_PAUSE=
        sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
        kill -KILL $pid 2>/dev/null
        { wait $pid; } 2>/dev/null
        what="at ${ms} ms of ${T}"
        ;;
    ckpt)
        n_ckpt=$((n_ckpt + 1))
        rnd $N_CKPT
        j=$((V + 1))
        run_k QATCONV_TEST_WRITE_PAUSE=500:k.ckpt
        wait_pauses $j
        kill -KILL $pid 2>/dev/null
        { wait $pid; } 2>/dev/null
        what="inside checkpoint write $j of $N_CKPT"
        # the kill landed in the write: the checkpoint is the previous one
        [ "$(ckpt_pos "$D/k.ckpt")" = "$(write_pos $((j - 1)))" ] ||
            bad "kill $k: checkpoint at $(ckpt_pos "$D/k.ckpt") after a kill in write $j"
        ;;
    out)
        n_out=$((n_out + 1))
        # once over an existing file, which must stay untouched
        if [ $n_out -eq 2 ]; then cp "$M" "$D/old.onnx"; cp "$M" "$D/k.onnx"; fi
        run_k QATCONV_TEST_WRITE_PAUSE=500:k.onnx
        wait_pauses 1
        kill -KILL $pid 2>/dev/null
        { wait $pid; } 2>/dev/null
        what="inside the output write"
        if [ $n_out -eq 2 ]; then
            cmp -s "$D/k.onnx" "$D/old.onnx" || bad "kill $k: the old output was changed"
        elif [ -e "$D/k.onnx" ]; then
            bad "kill $k: output exists after a kill inside its first write"
        fi
        ;;
    esac
    from=$(ckpt_pos "$D/k.ckpt")
    after_kill $k || continue
    rm -f "$D/old.onnx"
    resume_loop $k "$what" "$from"
done
t_all=$(($(now_ms) - t_start))
ok "$n_kills kills ($n_step during steps, $n_ckpt in checkpoint writes, $n_out in the output" \
    "write), $resumes resumed runs, ${t_all} ms"

# bad checkpoints: one error line, exit 2, no output
rm -f "$D/mid.onnx"
OUTFILE=$D/bad.onnx
BAD="$QATCONV $M -r $TMP/r.ini $ARGS -o $OUTFILE"
size=$(wc -c < "$TMP/ref.ckpt")
head -c $((size / 2)) "$TMP/ref.ckpt" > "$TMP/trunc.ckpt"
expect_error 2 "truncated checkpoint" -- $BAD --resume "$TMP/trunc.ckpt"
cp "$TMP/ref.ckpt" "$TMP/flip.ckpt"
printf '\377' | dd of="$TMP/flip.ckpt" bs=1 seek=$((size / 3)) conv=notrunc 2>/dev/null
expect_error 2 "checkpoint with one byte changed" -- $BAD --resume "$TMP/flip.ckpt"
: > "$TMP/empty.ckpt"
expect_error 2 "empty checkpoint" -- $BAD --resume "$TMP/empty.ckpt"
head -c 40 "$TMP/ref.ckpt" > "$TMP/head.ckpt"
expect_error 2 "checkpoint cut inside its header" -- $BAD --resume "$TMP/head.ckpt"
expect_error 2 "missing checkpoint" -- $BAD --resume "$TMP/none.ckpt"
# a mid-epoch checkpoint (write 3: epoch 1, batch 12) with other batches
QATCONV_TEST_WRITE_PAUSE=1000:mid.ckpt "$QATCONV" "$M" -r "$TMP/r.ini" $ARGS -o "$D/mid.onnx" \
    --checkpoint "$D/mid.ckpt" --checkpoint-every 4 > /dev/null 2> "$D/k.err" &
pid=$!
wait_pauses 4
kill -KILL $pid 2>/dev/null
{ wait $pid; } 2>/dev/null
[ "$(ckpt_pos "$D/mid.ckpt")" = 0:12 ] || bad "mid-epoch checkpoint at $(ckpt_pos "$D/mid.ckpt")"
expect_error 2 "mid-epoch checkpoint, other --limit" -- $BAD --resume "$D/mid.ckpt" --limit 512
# another recipe (float fine-tuning: no quantizer parameters)
expect_error 2 "checkpoint of another recipe" -- "$QATCONV" "$M" \
    -r "$top_srcdir/recipes/lenet-finetune.ini" $ARGS -o "$OUTFILE" --resume "$TMP/ref.ckpt"
finish
