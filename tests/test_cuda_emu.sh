#!/bin/sh
# test_cuda_emu.sh - the whole qatconv with --device cuda, on the CPU emulator
# of tests/cuda_emu (tests/qatconv_emu: qatconv linked with the emulated CUDA
# runtime), against the CPU backend of the same program:
#   - QAT (LSQ W4A4) with the integer export, plots, a report and a
#     checkpoint: the device path of the training loop (batches uploaded on
#     the copy stream into alternating buffers, the loss on the device, the
#     solver and quantizers on device memory, Q(W) downloaded for the plots,
#     the exported graph evaluated on the CPU); its test top-1 on 1,000
#     test images equals the CPU run's to within 0.3 points, and the training loss
#     to 1e-3;
#   - --resume of the device checkpoint; eval --device cuda equal to the CPU's;
#   - the peak device memory line; --tf32 accepted on cuda, refused on cpu;
#   - exploding gradients found on the device (row sums), named as on the CPU;
#   - errors: a missing device (cuda:3) and an op the CUDA kernels lack name
#     the problem in one line with exit 3 / 2.
. "${top_srcdir:-.}/tests/lib.sh"
EMU=${QATCONV_EMU:-${top_builddir:-.}/tests/qatconv_emu}
M=$top_srcdir/testdata/fashion_lenet_bn.onnx
if [ ! -x "$EMU" ]; then
    echo "SKIP: $EMU not built (no C++17 compiler)"
    exit 77
fi
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    echo "SKIP: Fashion-MNIST not installed"
    exit 77
fi
export QC_EMU_QUIET=1
# no validation split; the test evaluations (float, before, after, export) on the
# first 1,000 test images (Test=0.1), to keep the emulated runs short
sed 's/^Validation=.*/Validation=0.0\nTest=0.1/' "$top_srcdir/recipes/lenet-lsq-w4a4.ini" > "$TMP/r.ini"
COMMON="--epochs 1 --limit 1024 --batch 64 --threads 1 --seed 3"

for dev in cpu cuda; do
    "$EMU" "$M" -r "$TMP/r.ini" -o "$TMP/$dev.onnx" $COMMON --device $dev --format int \
        --plots "$TMP/plots-$dev" --report "$TMP/$dev.json" --checkpoint "$TMP/$dev.ckpt" \
        > "$TMP/$dev.out" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        ok "QAT + int export on $dev ($(grep -c . "$TMP/$dev.out") lines of output)"
    else
        bad "QAT + int export on $dev: exit $rc"; cat "$TMP/$dev.out"
    fi
done

# "summary: test top-1 float ..., after 88.75%, ..." and "epoch 1/1: loss 0.2022, ..."
acc_cpu=$(sed -n 's/^summary: test top-1.*, after \([0-9.]*\)%.*/\1/p' "$TMP/cpu.out")
acc_gpu=$(sed -n 's/^summary: test top-1.*, after \([0-9.]*\)%.*/\1/p' "$TMP/cuda.out")
loss_cpu=$(sed -n 's/^epoch 1\/1: loss \([0-9.]*\),.*/\1/p' "$TMP/cpu.out")
loss_gpu=$(sed -n 's/^epoch 1\/1: loss \([0-9.]*\),.*/\1/p' "$TMP/cuda.out")
if [ -n "$acc_cpu" ] && [ -n "$acc_gpu" ] &&
    awk -v a="$acc_cpu" -v b="$acc_gpu" 'BEGIN { d = a - b; exit !(d <= 0.3 && d >= -0.3) }'; then
    ok "test top-1 after QAT: cpu $acc_cpu %, cuda $acc_gpu %"
else
    bad "test top-1 after QAT: cpu '$acc_cpu', cuda '$acc_gpu'"
fi
if [ -n "$loss_cpu" ] && [ -n "$loss_gpu" ] &&
    awk -v a="$loss_cpu" -v b="$loss_gpu" 'BEGIN { d = (a - b) / a; exit !(d <= 1e-3 && d >= -1e-3) }'; then
    ok "training loss: cpu $loss_cpu, cuda $loss_gpu"
else
    bad "training loss: cpu '$loss_cpu', cuda '$loss_gpu'"
fi
peak=$(sed -n 's/^device memory peak: \([0-9.]*\) MiB (cuda:0)$/\1/p' "$TMP/cuda.out")
if [ -n "$peak" ] && awk -v p="$peak" 'BEGIN { exit !(p > 0.1 && p < 4096) }' &&
    ! grep -q "device memory peak" "$TMP/cpu.out"; then
    ok "peak device memory reported on cuda only: $peak MiB"
else
    bad "peak device memory line: '$peak'"
fi
n_png=$(ls "$TMP/plots-cuda" 2>/dev/null | grep -c '\.png$')
if [ "$n_png" -ge 3 ] && [ -s "$TMP/plots-cuda/graph.dot" ]; then
    ok "plots from device memory: $n_png PNG files and graph.dot"
else
    bad "plots on cuda: $n_png PNG files"
fi
if grep -q '"weights": "LSQ", "weight_bits": 4' "$TMP/cuda.json" 2>/dev/null; then
    ok "report written from device scalars"
else
    bad "report on cuda"
fi

# resume the device checkpoint for a second epoch
if "$EMU" "$M" -r "$TMP/r.ini" -o "$TMP/resumed.onnx" --epochs 2 --limit 1024 --batch 64 \
    --threads 1 --seed 3 --device cuda --resume "$TMP/cuda.ckpt" --no-eval --quiet \
    > "$TMP/resume.out" 2>&1; then
    ok "--resume on cuda"
else
    bad "--resume on cuda: $(cat "$TMP/resume.out")"
fi

# eval of the float model: same predictions, so the same top-1
fashion_sections 100 > "$TMP/eval.ini"
e_cpu=$("$EMU" eval "$M" -r "$TMP/eval.ini" --limit 2000 --threads 1 --device cpu 2>&1 |
    sed -n 's/^test: top-1 \([0-9.]*\)%.*/\1/p')
e_gpu=$("$EMU" eval "$M" -r "$TMP/eval.ini" --limit 2000 --threads 1 --device cuda --tf32 2>&1 |
    sed -n 's/^test: top-1 \([0-9.]*\)%.*/\1/p')
if [ -n "$e_cpu" ] && [ "$e_cpu" = "$e_gpu" ]; then
    ok "eval --device cuda --tf32: top-1 $e_gpu % = cpu $e_cpu %"
else
    bad "eval: cpu '$e_cpu', cuda '$e_gpu'"
fi

# exploding gradients on the device (tests/explode_model.py): the row sums of the
# gradients (one GEMV on the device) find the overflow, the full download names it,
# as the CPU backend does (tests/test_failures.sh)
if "$PYTHON3" "$top_srcdir/tests/explode_model.py" "$TMP/explode.onnx"; then
    { printf 'Solvers.LearningRate=0.001\n'; fashion_sections 32; } > "$TMP/explode.ini"
    OUTFILE=$TMP/explode_out.onnx expect_error 3 "exploding gradients on cuda" -- \
        "$EMU" "$TMP/explode.onnx" -r "$TMP/explode.ini" -o "$TMP/explode_out.onnx" \
        --epochs 1 --limit 64 --quiet --no-eval --device cuda
    grep -q "epoch 1, batch 1: the gradient of 'w3' (node 'conv3', Conv) is NaN" "$TMP/err" ||
        bad "exploding gradients on cuda: $(cat "$TMP/err")"
else
    bad "tests/explode_model.py failed"
fi

expect_error 1 "--tf32 on the cpu" -- "$EMU" eval "$M" -r "$TMP/eval.ini" --limit 100 --tf32
expect_error 3 "a missing device" -- "$EMU" eval "$M" -r "$TMP/eval.ini" --limit 100 \
    --device cuda:3
# ConvTranspose has CPU kernels only: the cuda plan names the node instead of running it on the CPU
LRN=$top_srcdir/testdata/conv_transpose_op13/model.onnx
if [ -f "$LRN" ]; then
    "$EMU" info "$LRN" > /dev/null 2>&1 || bad "info $LRN"
    OUTFILE= expect_error 2 "an op without CUDA kernels" -- \
        "$EMU" "$LRN" -r "$TMP/eval.ini" -o "$TMP/lrn.onnx" --device cuda --epochs 1 --limit 64
    grep -q "cuda backend cannot run" "$TMP/err" || bad "the message names the backend: $(cat "$TMP/err")"
fi
finish
