/*
 * int.h - the integer-only export (qatconv(1), --format int).
 *
 * Rewrites a fake-quant graph (the output of qc_export_fake, or any graph of
 * the same shape: integer weight initializers behind DequantizeLinear, and
 * QuantizeLinear(uint8 or int8, zero point 0) [-> Clip] -> DequantizeLinear on
 * the activations) into a graph whose every tensor between the input quantizer
 * and the output dequantization is an integer (int8 levels are kept as uint8
 * q + 128, the layers' x_zero_point 128, and the requantization adds 128):
 *
 *   x_q = QuantizeLinear(x, s_in)                                  uint8
 *   acc = ConvInteger(x_q, J) / MatMulInteger(x_q, J)              int32
 *   y_q = Cast_u8(Clip((Σ_i M0_i · Cast_i64(q_i) + C) / 2^n, lo, hi))
 *
 * BatchNormalization, biases, ReLU/Clip and residual Adds are not nodes of
 * the result: they are folded into the per-channel affine form
 * r = Σ_i a_i · q_i + b (real value r of integer tensors q_i), which each
 * activation quantizer turns into one fixed-point requantization:
 * M_i = a_i / s_out, M0_i = rne(M_i · 2^n), C = rne(b / s_out · 2^n) + 2^(n-1)
 * per channel, n as large as int64 allows (M0 < 2^31).  The bias stays in C:
 * rounding it to accumulator units instead (an int32 bias rne(b / a)) moved
 * 0.9 % of the second LeNet layer's 4-bit levels; with C, none of 2,000
 * images differed from the fake-quant graph at any layer.  Div truncates
 * toward zero: for the non-negative results that survive the Clip,
 * (x + 2^(n-1)) / 2^n is x / 2^n rounded half up (one rounding rule for the
 * whole export; the fake-quant graph rounds half to even, so the two differ
 * only on exact ties).  Odd-grid layers form Σ k·x = 2·Σ j'·x + Σ x in
 * integers before any scaling.
 *
 * Weights keep their exact integer levels k.  Grids whose levels are all odd
 * (SAT Default/FullRange with odd R: k = 2j - R) are stored as j' = (k - 1)/2,
 * k = 2j' + 1, and a window sum (ConvInteger with a ones kernel, or a row
 * sum) for the +1: 4-bit SAT grids fit INT4, 8-bit ones int8.  Levels
 * within [-8, 7] are stored as opset-21 INT4 initializers + Cast(int8) when
 * opts->int4; the model's opset becomes max(opset, 14), or 21 with INT4.
 *
 * At the output (or before a float-only op at the end, e.g. Softmax) the
 * integers are dequantized: Σ_i Cast_f32(q_i) · a_i + b.
 *
 * The input quantizer reads the float32 graph input, or what float Casts of it
 * made (a float16 model's fake-quant file casts its input to float32 before the
 * first layer): those stay float before it.  Layout ops there (Flatten,
 * Reshape, Transpose, Squeeze, Unsqueeze) move the uint8 levels instead.  On
 * the affine form, a shape op that keeps the batch axis 0 and the channel axis
 * 1 ([N, C, ...] to [N, C, ...]: Conv1D's Squeeze, Flatten of [N, C, 1, 1])
 * reshapes each term alike; one that mixes channels is refused.
 *
 * Exact on every x86 CPU.  ONNX Runtime's MatMulInteger with uint8 inputs and
 * int8 weights adds adjacent products in saturating int16 on CPUs without
 * VNNI (vpmaddubsw: AVX2, AVX-512 without VNNI): 255·127 + 255·127 becomes
 * 32767.  Its uint8×uint8 kernels widen to int16 before multiplying and are
 * exact everywhere.  So a MatMulInteger gets int8 (INT4) levels j only when
 * 2·x_max·max(j, 0) <= 32767 and 2·x_max·max(-j, 0) <= 32768 for inputs in
 * [0, x_max], else uint8 j + 128 with zero point 128 (the uint8 kernel is
 * 1.2-2.2x slower on AVX-512 VNNI, so it is used only where needed).  Every
 * ConvInteger gets uint8 j + 128 (UINT4 j + 8 when the levels fit INT4) with
 * that zero point: ONNX Runtime 1.32's int8-weight ConvInteger is exact but
 * measured 3-4x slower than its uint8 one.  Window sums use uint8 ones.
 * tests/test_int_export.sh checks every integer tensor on an emulated AVX2
 * CPU (qemu -cpu Haswell) and with session.x64quantprecision on and off.
 */
#ifndef QATCONV_SRC_EXPORT_INT_H
#define QATCONV_SRC_EXPORT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/graph.h"
#include "util/qc.h"

struct qc_int_opts {
    float input_scale;   /* the input quantizer's scale for a float graph input
                            that feeds a layer directly (1/255: [0,1] pixels)  */
    bool  int4;          /* INT4 storage for levels within [-8, 7]             */
    bool  int_output;    /* int32 graph outputs instead of float logits        */
};

struct qc_int_stats {
    int     n_layers;        /* Conv/Gemm/MatMul turned into integer products  */
    int     n_requant;       /* fixed-point requantizations                    */
    int     n_int4;          /* weights stored as INT4 or UINT4                */
    int     n_offset;        /* weights stored as uint8/UINT4 with a zero point */
    int     n_odd_grid;      /* weights stored as (k - 1)/2 + a window sum     */
    int64_t weight_bytes;    /* bytes of the integer weight initializers       */
};

/* One note per node of the result, for --plots (node label -> text).  The
 * strings are owned by the stats' notes list; free with qc_int_notes_free. */
struct qc_int_note {
    char *node;
    char *text;
};
struct qc_int_notes {
    int                 n, cap;
    struct qc_int_note *v;
};
/* Appends a copy of (node, text). */
enum qc_status qc_int_notes_add(struct qc_int_notes *notes, const char *node, const char *text);
void qc_int_notes_free(struct qc_int_notes *notes);

/* g: a finalized fake-quant graph; rewritten in place.  notes may be NULL. */
enum qc_status qc_export_int(struct qc_graph *g, const struct qc_int_opts *opts,
                             struct qc_int_stats *stats, struct qc_int_notes *notes);

#endif
