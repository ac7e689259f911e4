/*
 * op.h - the op table contract.
 *
 * Every ONNX op qatconv supports is one const struct qc_op_def, defined in
 * src/ops/<family>.c and listed once in ops.def.  A definition has:
 *   parse     reads node->attrs once (opset-aware), validates them, and stores
 *             a small params struct in node->params (qc_malloc'ed; freed by the
 *             graph with qc_free).  Unsupported attribute values are
 *             QC_ERR_UNSUPPORTED with a message naming the node.  NULL = none.
 *   infer     computes each output's dtype and shape from the inputs.  in[i]
 *             carries dtype and shape; in[i]->data is non-NULL when that input
 *             is a constant (initializer, Constant, folded value), which is how
 *             Reshape/Slice/Pad/Clip/Resize read their input-form attributes.
 *             in[i] is NULL for an omitted optional input.
 *   workspace scratch bytes the CPU forward/backward need (im2col ...) when
 *             running on `threads` threads, or NULL.
 *   fold      when the plan may evaluate the node once at plan time
 *             (shape subgraphs): see enum qc_fold.
 *   saved     bytes of per-node state a TRAINING forward writes for its
 *             backward (BatchNorm batch mean and 1/std, MaxPool arg-max,
 *             Dropout mask, LRN denominator bases), or NULL.  The plan
 *             allocates it once per node and passes it as ctx->saved to both
 *             directions.
 *   cpu       the reference kernels: forward (required) and backward (NULL
 *             for ops that are never differentiated: shape-subgraph ops).
 *   roles     what the op's inputs are to training, quantization, recipes and
 *             reports (struct qc_op_roles below; all zero = a plain op).
 * The ONNX op_type is not in the definition: ops.def names each op once
 * (qc_op_name, qc_op_lookup).
 *
 * Backward contract: dout[j] is the gradient of output j (NULL when nothing
 * downstream needs it: treat as zero); din[i] is the gradient buffer of
 * input i, NULL when input i needs no gradient (constants, the graph input).
 * Backward ACCUMULATES (din[i] += ...): a value consumed twice gets both
 * contributions, and parameter gradients add up over IterationSize batches.
 * It may read in[], out[] (the forward's values, unchanged since) and
 * ctx->saved; it never allocates.  Training-mode forwards (ctx->training):
 * BatchNormalization normalizes with batch statistics and updates its
 * running mean/variance inputs (in[3], in[4]) in place; Dropout draws its
 * mask from ctx->rng.  Every backward carries its formula in a comment.
 *
 * Kernels receive input and output tensors whose data is allocated by the
 * plan; they never allocate.  Training compute is float32; integer kernels
 * (index arithmetic in folded subgraphs, integer-only exports: ConvInteger,
 * MatMulInteger, int32/int64 arithmetic, Cast) are forward only and exact.
 */
#ifndef QATCONV_SRC_OPS_OP_H
#define QATCONV_SRC_OPS_OP_H

#include <stdbool.h>
#include <stddef.h>

#include "ir/graph.h"
#include "util/qc.h"
#include "ir/tensor.h"

struct qc_backend;

enum qc_op_kind {
#define QC_OP(ID, NAME, DEF) QC_OP_##ID,
#include "ops.def"
#undef QC_OP
    QC_OP_COUNT
};

/* Streaming element-wise loops (ReLU, Add, BatchNorm, max pooling, bias, the
 * quantizers' activation passes) go parallel from this many elements (128 KB):
 * below it waking the second thread (OMP_WAIT_POLICY=PASSIVE, src/cli/main.c)
 * costs about what it saves.  At 1 << 22, LeNet-BN's layers (at most 0.8 M
 * elements at batch 128) all ran on one thread and 2 threads trained it at
 * 1.2x the speed of one; at 1 << 15, float training at 2 threads went from
 * 6,856 to 9,449 images/s (12,800 images, same run, best of 3). */
#define QC_PAR_MIN_STREAM ((int64_t)1 << 15)

enum qc_fold {
    QC_FOLD_NEVER = 0,      /* a compute op                                       */
    QC_FOLD_CONST_INPUTS,   /* folded when every present input is a non-parameter
                               constant (no float initializer)                     */
    QC_FOLD_ALWAYS,         /* Shape, Constant: folded once shapes are known       */
};

struct qc_rng;

/* What a kernel may use besides its tensors. */
/* Synchronized BatchNorm over the ranks of a data-parallel job (src/dist/):
 * sum(arg, buf, n) replaces buf[0..n) by its sum over every rank, in place;
 * the training loop provides it (train.c), the ops only call it. */
struct qc_op_sync {
    enum qc_status (*sum)(void *arg, double *buf, int64_t n);
    void *arg;
    bool batchnorm; /* synchronized BatchNorm ([train] SyncBatchNorm=1); the
                          plan also sums the LSQ activation step init (plan.h) */
    /* this rank's images [lo, lo + batch) of the global batch gbatch (the
     * plan's batch is the slice): training Dropout draws the masks of its
     * slice of the single process's (act.c) */
    int64_t lo, gbatch;
};

struct qc_op_ctx {
    struct qc_backend *be;          /* sgemm and memory                          */
    void              *workspace;   /* >= the op's workspace() bytes, aligned 64  */
    size_t             workspace_size;
    void              *saved;       /* this node's saved() bytes (training)       */
    size_t             saved_size;
    struct qc_rng     *rng;         /* training randomness (Dropout), or NULL     */
    int                threads;     /* element-wise parallelism                   */
    int64_t            opset;       /* default-domain opset of the model          */
    bool               training;    /* Dropout, BatchNorm mode                    */
    const char        *label;       /* node label for messages                    */
    const struct qc_op_sync *sync;  /* a data-parallel job's sums over its ranks,
                                       or NULL (one process); training BatchNorm
                                       uses them when sync->batchnorm           */
};

/* The kernel signatures as function types (`qc_forward_func f;` declares a
 * kernel f) and as the pointer types the tables hold. */
typedef enum qc_status qc_forward_func(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       struct qc_tensor *const *out);
/* dout[i]: gradient of output i (read); din[i]: gradient of input i to
 * ACCUMULATE into, NULL when input i needs none. */
typedef enum qc_status qc_backward_func(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                        const struct qc_tensor *const *in,
                                        const struct qc_tensor *const *out,
                                        const struct qc_tensor *const *dout,
                                        struct qc_tensor *const *din);
/* Scratch bytes a backend's kernels need (same arguments as qc_op_def.workspace). */
typedef size_t qc_workspace_func(const struct qc_node *n, const struct qc_tensor *const *in,
                                 const struct qc_tensor *const *out, int threads);
typedef qc_forward_func *qc_forward_fn;
typedef qc_backward_func *qc_backward_fn;
typedef qc_workspace_func *qc_workspace_fn;

/* One backend's kernels of an op.  workspace: NULL = the op definition's
 * workspace() (the CPU's); a device backend whose kernels need other scratch
 * (the CUDA convolution's batched im2col) gives its own. */
struct qc_kernel {
    qc_forward_fn   forward;
    qc_backward_fn  backward;
    qc_workspace_fn workspace;
};

/* ---- op roles ------------------------------------------------------------------------
 *
 * The op contract beyond the kernels: which inputs are the layer's weight and
 * bias, which are trainable parameters or running statistics, the weight's
 * output-channel axis, which quantizers the op takes, and the N2D2 cell it
 * stands for.  Training (plan_train.c), the quantizer specs (quant/qspec.c),
 * the recipe's kind default sections (recipe/match.c), the report and the
 * recipe template read these through the accessors below instead of lists of
 * kinds.  Roles describe the float ops that train; the integer-only export
 * ops (ConvInteger, MatMulInteger) and the QDQ ops have none.
 */

/* struct qc_op_roles stores input slots as QC_SLOT(i) = i + 1, so that a
 * definition that sets no roles (all zero) has no weight and no bias. */
#define QC_SLOT(i) ((i) + 1)
/* Bit of input slot i in the trainable and running masks. */
#define QC_INPUT_BIT(i) (1u << (i))

/* Which quantizers an op takes (bits of qc_op_roles.quant). */
enum qc_op_quant {
    QC_QUANT_WEIGHT = 1 << 0,   /* a weight quantizer (QWeight) on its weight input    */
    QC_QUANT_ACT    = 1 << 1,   /* an activation quantizer (QAct) on its output, from
                                   the activation kind default section                */
};

/* The N2D2 cell kind an op stands for: a recipe's kind default section
 * ([*:Conv_def], [*:Fc_def], [*:BatchNorm_def], [*:Relu_def]) applies to the
 * ops of its cell. */
enum qc_op_cell {
    QC_CELL_NONE = 0,
    QC_CELL_CONV,           /* Conv, ConvTranspose                            */
    QC_CELL_FC,             /* Gemm, MatMul                                   */
    QC_CELL_BATCHNORM,      /* BatchNormalization                             */
    QC_CELL_ACTIVATION,     /* Relu, Clip                                     */
};

/* What one input of a node is to training (qc_op_input_role). */
enum qc_op_input_role {
    QC_INPUT_DATA = 0,      /* an activation or a constant                    */
    QC_INPUT_TRAINABLE,     /* a parameter (when a float initializer)         */
    QC_INPUT_RUNNING,       /* a running statistic: kept with the parameters,
                               updated by the training forward, no gradient   */
};

struct qc_op_roles {
    int      weight;        /* QC_SLOT(input) of the weight (the quantized
                               kernel of a layer), 0 = none                   */
    int      bias;          /* QC_SLOT(input) of the bias, 0 = none           */
    int      channel_axis;  /* the weight's output-channel axis               */
    /* The axis when it depends on attributes (Gemm: transB), else NULL; it
     * replaces channel_axis.  n is a node of a validated graph. */
    int    (*channel_axis_of)(const struct qc_node *n);
    unsigned trainable;     /* QC_INPUT_BIT(i): input i is trainable           */
    unsigned running;       /* QC_INPUT_BIT(i): input i is a running statistic */
    unsigned quant;         /* enum qc_op_quant bits                           */
    enum qc_op_cell cell;
};

struct qc_op_def {
    int           n_in_min, n_in_max;      /* counting omitted optional inputs     */
    int           n_out_min, n_out_max;
    enum qc_fold  fold;
    enum qc_status (*parse)(struct qc_node *n, int64_t opset, const char *label);
    enum qc_status (*infer)(const struct qc_node *n, const char *label,
                            const struct qc_tensor *const *in, struct qc_tensor *const *out);
    size_t (*workspace)(const struct qc_node *n, const struct qc_tensor *const *in,
                        const struct qc_tensor *const *out, int threads);
    size_t (*saved)(const struct qc_node *n, const struct qc_tensor *const *in,
                    const struct qc_tensor *const *out);
    struct qc_kernel cpu;
    struct qc_op_roles roles;
};

#define QC_OP(ID, NAME, DEF) extern const struct qc_op_def DEF;
#include "ops.def"
#undef QC_OP

/* The definition of kind k (0 <= k < QC_OP_COUNT). */
const struct qc_op_def *qc_op_get(enum qc_op_kind k);
/* Kind of an ONNX op_type in the default domain, or -1. */
int qc_op_lookup(const char *onnx_name);
/* The ONNX op_type of kind k ("Conv"), from ops.def. */
const char *qc_op_name(enum qc_op_kind k);

/* Role accessors (registry.c).  The kind arguments take a node's kind as is:
 * -1 (unknown) has no roles. */

/* The roles of kind k. */
const struct qc_op_roles *qc_op_roles(enum qc_op_kind k);
/* Whether kind k is a layer with a weight input: Conv, ConvTranspose, Gemm,
 * MatMul. */
bool qc_op_is_weighted(int kind);
/* Whether kind k takes a weight quantizer / an output-activation quantizer
 * from the kind default sections. */
bool qc_op_quantizes_weight(int kind);
bool qc_op_quantizes_act(int kind);
/* The N2D2 cell kind k stands for (QC_CELL_NONE for most ops). */
enum qc_op_cell qc_op_cell(int kind);
/* Whether a kind-k node that follows a layer belongs to the layer's N2D2
 * cell (BatchNormalization, activations): the layer's output quantizer may
 * sit after it. */
bool qc_op_extends_cell(int kind);
/* What input `slot` of a kind-k node is to training. */
enum qc_op_input_role qc_op_input_role(int kind, int slot);
/* The input slot of n's weight / bias when n's op has one and the node has
 * that input (not omitted), else -1. */
int qc_op_weight_input(const struct qc_node *n);
int qc_op_bias_input(const struct qc_node *n);
/* The output-channel axis of n's weight (Conv 0, ConvTranspose 1, MatMul 1,
 * Gemm 0 with transB and 1 without), or -1 when n's op has no weight. */
int qc_op_weight_channel_axis(const struct qc_node *n);

/* Shared helpers for op files (src/ops/common.c). */

/* Numpy-style broadcast of two shapes into *out; QC_ERR_SHAPE (logged with
 * label) if incompatible. */
enum qc_status qc_broadcast_shape(const char *label, const struct qc_shape *a,
                                  const struct qc_shape *b, struct qc_shape *out);
/* Normalizes a possibly negative axis against rank; QC_ERR_ONNX if out of
 * range. */
enum qc_status qc_norm_axis(const char *label, int64_t axis, int rank, int *out);
/* Allocates *n->params of `size` zeroed bytes (for parse hooks). */
enum qc_status qc_op_params_new(struct qc_node *n, size_t size);

/* "Op 'label'" into buf, for the typed attribute getters; returns buf. */
const char *qc_op_where(char *buf, size_t len, const char *op, const char *label);
/* qc_norm_axis with "Op 'label'" in its message. */
enum qc_status qc_op_norm_axis(const char *op, const char *label, int64_t axis, int rank,
                               int *out);
/* An input that must be present (else QC_ERR_ONNX) and constant at infer time
 * (else QC_ERR_UNSUPPORTED); `what` names it in the message. */
enum qc_status qc_op_need_const(const char *op, const char *label, const struct qc_tensor *t,
                                const char *what);
/* Reads a constant 1-D (or scalar) int64/int32 tensor into out[0..*n), at
 * most max values. */
enum qc_status qc_op_const_ints(const char *op, const char *label, const struct qc_tensor *t,
                                const char *what, int64_t *out, int max, int *n);
/* Row-major element strides of a shape. */
void qc_shape_strides(const struct qc_shape *s, int64_t *str);
/* Copies one element of esize bytes. */
void qc_copy_elem(unsigned char *dst, const unsigned char *src, size_t esize);
/* Copies a box of cnt[0..ndim) elements of esize bytes: element idx goes from
 * src + sum(idx[k]*sstr[k]) to dst + sum(idx[k]*dstr[k]) (strides in
 * elements, possibly negative). */
void qc_copy_box(size_t esize, int ndim, const int64_t *cnt, const unsigned char *src,
                 const int64_t *sstr, unsigned char *dst, const int64_t *dstr);

/* Integer matrix product with MatMul broadcasting (gemm.c): y (int32 or
 * int64) = (a - a_zp) * (b - b_zp), wrapping modulo the width of y.  a and b
 * are any integer dtype; a_zp (scalar or one per row of a) and b_zp (scalar
 * or one per column of b) may be NULL.  Needs
 * qc_op_int_matmul_workspace(a, b, y) bytes of ctx->workspace. */
enum qc_status qc_op_int_matmul(const struct qc_op_ctx *ctx, const struct qc_tensor *a,
                                const struct qc_tensor *b, const struct qc_tensor *a_zp,
                                const struct qc_tensor *b_zp, struct qc_tensor *y);
size_t qc_op_int_matmul_workspace(const struct qc_tensor *a, const struct qc_tensor *b,
                                  const struct qc_tensor *y);
/* MatMul's output shape (numpy matmul broadcasting); QC_ERR_SHAPE, logged
 * with label, when a and b do not fit. */
enum qc_status qc_op_matmul_shape(const char *label, const struct qc_shape *a,
                                  const struct qc_shape *b, struct qc_shape *y);

/* eltwise.c: element strides of s aligned right to rank nd, 0 where s has
 * extent 1 (numpy broadcasting; the CPU and CUDA kernels). */
void qc_aligned_strides(const struct qc_shape *s, int nd, int64_t *st);

#endif
