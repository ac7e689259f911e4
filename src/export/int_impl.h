/*
 * int_impl.h - private to src/export/int*.c: the records of the integer-only
 * export pass (int.c explains them) and the helpers its files share.
 *
 *   int_emit.c     small helpers, notes, emitting nodes and constants
 *   int_records.c  WEIGHT / U8 / PEND records: clearing, copying, PEND views
 *   int_requant.c  a PEND record to uint8 (requantization) or to float
 *   int_weights.c  integer weights and the parts every layer is built from
 *   int_layers.c   Conv and Gemm/MatMul
 *   int_ops.c      BatchNorm, Clip/ReLU, Add, Q/DQ, Concat, shape ops, Slice/Gather
 *   int_pool.c     AveragePool, GlobalAveragePool, spatial ReduceMean
 *   int.c          the pass: topological walk, float tail check, clean-up
 */
#ifndef QC_EXPORT_INT_IMPL_H
#define QC_EXPORT_INT_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "int.h"
#include "ir/graph.h"
#include "plan/plan.h"

#define MAX_TERMS   8
#define TWO31       2147483648.0
#define TWO62       4611686018427387904.0

enum ikind { K_NONE = 0, K_WEIGHT, K_U8, K_PEND };

struct term {
    int           v;        /* integer value of the new graph                 */
    enum qc_dtype dt;
    bool          bcast;    /* channel dimension 1 (window sums)              */
    double       *a;        /* [c] real units per integer step (owned)        */
    double        bound;    /* max |q|                                         */
};

struct ival {
    enum ikind kind;
    /* U8 */
    int    v;
    double s;
    int hi; /* largest stored level                           */
    int zp; /* zero point: 0, or 128 for signed levels (QAct.Signed=1) stored
                              * as q + 128, real = s·(stored − zp)              */
    /* PEND */
    int         nt;
    struct term t[MAX_TERMS];
    int64_t     c;           /* channels (axis 1)                              */
    int         rank;
    double     *b;           /* [c] (owned)                                    */
    double      lo, hi_r;    /* clip still to apply, ±inf = none               */
    /* WEIGHT */
    int32_t        *k;       /* levels (owned)                                 */
    double         *ws;      /* [wc] scale per output channel (owned)          */
    int64_t         wc;
    struct qc_shape wshape;
    int             dq_axis; /* axis of a per-axis scale, -1 per tensor        */
    bool            materialized;
    struct ival    *view;    /* U8: its one-term PEND form, built on demand     */
};

struct ix {
    struct qc_graph           *g;
    struct qc_plan            *plan;   /* the fake graph at batch 1            */
    const struct qc_int_opts  *o;
    struct qc_int_stats       *stats;
    struct qc_int_notes       *notes;
    struct ival               *iv;     /* per original value                   */
    int                        n_val, n_node;
    bool                      *drop;   /* per original node                    */
    int                       *qin;    /* per original value: quantized input  */
    bool                       int4_used;
};

/*
 * How a layer's levels reach ONNX Runtime's integer kernels (int.h, "Exact on
 * every x86 CPU"): int8 (or INT4 + Cast) when every pairwise sum x0·j0 + x1·j1
 * of uint8 inputs up to `xhi` stays within int16, else uint8 j + 128 (or UINT4
 * j + 8 + Cast) with that zero point, which takes the exact u8×u8 path.
 */
enum wform { W_SIGNED, W_OFFSET };

/* int_emit.c */
double *qc_int_dvec(int64_t n, double v);
bool qc_int_uniform(const double *a, int64_t n);
const char *qc_int_vname(const struct ix *x, int v);
const char *qc_int_label(const struct ix *x, int node);
const struct qc_shape *qc_int_shape_of(struct ix *x, int v);
enum qc_status qc_int_note(struct ix *x, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum qc_status qc_int_emit(struct ix *x, const char *op, const char *base, const int *in, int n_in,
                           enum qc_dtype dt, int target, int *out, int *node);
enum qc_status qc_int_attr_int(struct ix *x, int node, const char *name, int64_t v);
enum qc_status qc_int_copy_attrs(struct ix *x, int to, int from);
enum qc_status qc_int_constant(struct ix *x, const char *base, const char *suffix,
                               enum qc_dtype dt, const double *vals, int64_t n, int rank, int *v);
enum qc_status qc_int_scalar_const(struct ix *x, const char *base, const char *suffix,
                                   enum qc_dtype dt, double val, int *v);
enum qc_status qc_int_axes_const(struct ix *x, const char *base, const int64_t *ax, int n, int *v);
enum qc_status qc_int_cast(struct ix *x, const char *base, int in, enum qc_dtype to, int target,
                           int *out);

/* int_records.c */
void qc_int_ival_clear(struct ival *r);
int64_t qc_int_channels(struct ix *x, int v, int *rank);
enum qc_status qc_int_u8_to_pend(struct ix *x, int v, struct ival *r);
void qc_int_move(struct ival *dst, struct ival *src);
enum qc_status qc_int_pend_copy(const struct ival *s, struct ival *d);
enum qc_status qc_int_need_pend(struct ix *x, int node, int v, struct ival **out);
bool qc_int_has_clip(const struct ival *r);
enum qc_status qc_int_no_clip(struct ix *x, int node, const struct ival *r, int v);

/* int_requant.c */
enum qc_status qc_int_requant(struct ix *x, const char *base, const struct ival *r, double s_out,
                              int zp, int qlo, int qhi, int *out);
int qc_int_u8_absmax(const struct ival *r);
enum qc_status qc_int_materialize(struct ix *x, int v);
enum qc_status qc_int_output(struct ix *x, int v);

/* int_weights.c */
enum qc_status qc_int_dq_weight(struct ix *x, int node);
double qc_int_wscale(const struct ival *w, int64_t oc);
bool qc_int_pairs_fit_int16(int32_t xhi, int32_t lo, int32_t hi);
bool qc_int_stored_levels(const struct ival *w, int32_t *lo, int32_t *hi);
double qc_int_kmax_levels(const struct ival *w);
enum qc_status qc_int_store_weight(struct ix *x, const char *base, const struct ival *w,
                                   bool transpose, enum qc_dtype compute_dt, enum wform form,
                                   int *wv, int *zp, int *mul, int *add, double *jmax);
enum qc_status qc_int_store_levels(struct ix *x, const char *base, const struct ival *w,
                                   bool transpose, enum qc_dtype compute_dt, int *wv);
bool qc_int_from_input(const struct ix *x, int v);
bool qc_int_input_f32(const struct ix *x, int v);
enum qc_status qc_int_layer_input(struct ix *x, int node, int v, int *q, double *s, int *hi);
enum qc_status qc_int_weight_of(struct ix *x, int node, int v, struct ival **w);
enum qc_status qc_int_layer_record(struct ix *x, int node, int bi, int64_t c, int rank,
                                   struct ival *r);
enum qc_status qc_int_add_term(struct ix *x, int node, struct ival *r, int v, enum qc_dtype dt,
                               bool bcast, double bound, double *a);
enum qc_status qc_int_odd_combine(struct ix *x, const char *base, struct ival *r, int sum,
                                  double sum_bound);

/* int_layers.c */
enum qc_status qc_int_do_conv(struct ix *x, int node);
enum qc_status qc_int_do_gemm(struct ix *x, int node);

/* int_ops.c */
const struct qc_tensor *qc_int_const_input(struct ix *x, const struct qc_node *n, int i);
enum qc_status qc_int_do_batchnorm(struct ix *x, int node);
enum qc_status qc_int_do_clip(struct ix *x, int node, double lo, double hi);
enum qc_status qc_int_clip_bounds(struct ix *x, int node, double *lo, double *hi);
enum qc_status qc_int_do_add(struct ix *x, int node);
enum qc_status qc_int_do_quantize(struct ix *x, int node);
enum qc_status qc_int_do_dequantize(struct ix *x, int node);
enum qc_status qc_int_copy_on_u8(struct ix *x, int node);
enum qc_status qc_int_do_concat(struct ix *x, int node);
enum qc_status qc_int_shape_op(struct ix *x, int node);
enum qc_status qc_int_select_pend(struct ix *x, int node);
enum qc_status qc_int_flatten_pend(struct ix *x, int node);

/* int_pool.c */
bool qc_int_spatial_mean(struct ix *x, int node, int r, int64_t *keep);
enum qc_status qc_int_do_avgpool(struct ix *x, int node);

#endif
