/*
 * norm.c - normalization ops: BatchNormalization (inference and training
 * forms, with backward) and LRN (cross-channel local response
 * normalization, with backward).
 *
 * Inputs are [N, C, D1...] float32.  BatchNormalization in inference:
 *     y = scale * (x - mean) / sqrt(var + epsilon) + B
 * computed as y = a_c * x + b_c with a_c = scale_c / sqrt(var_c + eps) and
 * b_c = B_c - mean_c * a_c.  spatial (opset < 9) must be 1; training_mode
 * (opset 14+) must be 0: training is the plan's mode (ctx->training), not the
 * model's.  Extra outputs (running mean/var, and before opset 14 saved
 * mean/var), when a model lists them, are the unchanged statistics.
 *
 * In training (ctx->training), per channel over N and the spatial dims
 * (m = N * D1 * ... values): batch mean mu_B and BIASED variance s2_B
 * normalize, y = scale * (x - mu_B) / sqrt(s2_B + eps) + B; mu_B and
 * istd = 1/sqrt(s2_B + eps) are the node's saved state; the running
 * statistics (inputs 3 and 4) are updated IN PLACE with the ONNX momentum
 * convention, running = momentum * running + (1 - momentum) * batch, where
 * the running VARIANCE takes the UNBIASED batch variance m/(m-1) * s2_B (as
 * PyTorch and cuDNN do; the ONNX reference uses the biased one).  Extra
 * outputs are then the updated running mean/var and the batch mean and
 * biased variance.  Sums are two-pass (mean, then squared deviations),
 * eight float lanes per row added up in double, parallel over channels.
 *
 * LRN, per ONNX:
 *     square_sum[c] = sum_{c' = c - floor((size-1)/2)}^{c + ceil((size-1)/2)} x[c']^2
 *     y[c] = x[c] / (bias + alpha / size * square_sum[c])^beta
 * with c' clipped to [0, C).  A training forward keeps the denominator's
 * base s[c] = bias + alpha / size * square_sum[c] of every element as the
 * node's saved state for the backward.
 */
#include <config.h>

#include "op.h"

#include <math.h>
#include <string.h>

#include "util/log.h"
#include "params_norm.h"

static int nthreads(const struct qc_op_ctx *ctx)
{
    return ctx->threads > 0 ? ctx->threads : 1;
}

/* Checks x is float32 [N, C, ...] and returns C through *c. */
static enum qc_status check_nc(const char *label, const struct qc_tensor *x, int64_t *c)
{
    char s[128];
    if (x->dtype != QC_DTYPE_F32) {
        qc_log_error("%s: input type %s, only float32 is supported", label,
                     qc_dtype_name(x->dtype));
        return QC_ERR_UNSUPPORTED;
    }
    if (x->shape.ndim < 2) {
        qc_log_error("%s: input shape %s, expected [N,C,...]", label,
                     qc_shape_str(&x->shape, s, sizeof(s)));
        return QC_ERR_SHAPE;
    }
    *c = x->shape.dims[1];
    return QC_OK;
}

/* ---- BatchNormalization ---- */

static enum qc_status bn_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct qc_bn_params *p;
    int64_t v;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    if (st != QC_OK)
        return st;
    p = n->params;
    st = qc_attr_float(&n->attrs, label, "epsilon", 1e-5f, &p->epsilon);
    if (st != QC_OK)
        return st;
    st = qc_attr_float(&n->attrs, label, "momentum", 0.9f, &p->momentum);
    if (st != QC_OK)
        return st;
    st = qc_attr_int(&n->attrs, label, "spatial", 1, &v);
    if (st != QC_OK)
        return st;
    if (v != 1) {
        qc_log_error("%s: BatchNormalization spatial=%lld is not supported (only 1)", label,
                     (long long)v);
        return QC_ERR_UNSUPPORTED;
    }
    st = qc_attr_int(&n->attrs, label, "training_mode", 0, &v);
    if (st != QC_OK)
        return st;
    if (v != 0) {
        qc_log_error("%s: BatchNormalization training_mode=%lld is not supported (only 0)",
                     label, (long long)v);
        return QC_ERR_UNSUPPORTED;
    }
    if (opset >= 14 && n->n_out > 3) {
        qc_log_error("%s: BatchNormalization opset %lld has at most 3 outputs, got %d", label,
                     (long long)opset, n->n_out);
        return QC_ERR_ONNX;
    }
    return QC_OK;
}

static enum qc_status bn_infer(const struct qc_node *n, const char *label,
                               const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    static const char *const names[] = { "X", "scale", "B", "mean", "var" };
    int64_t c;
    enum qc_status st = check_nc(label, in[0], &c);
    if (st != QC_OK)
        return st;
    for (int i = 1; i < 5; i++) {
        char s[128];
        if (!in[i]) {
            qc_log_error("%s: BatchNormalization input '%s' is omitted", label, names[i]);
            return QC_ERR_ONNX;
        }
        if (in[i]->dtype != QC_DTYPE_F32) {
            qc_log_error("%s: input '%s' type %s, only float32 is supported", label, names[i],
                         qc_dtype_name(in[i]->dtype));
            return QC_ERR_UNSUPPORTED;
        }
        if (in[i]->shape.ndim != 1 || in[i]->shape.dims[0] != c) {
            char sx[128];
            qc_log_error("%s: input '%s' shape %s does not match X %s (expected [%lld])", label,
                         names[i], qc_shape_str(&in[i]->shape, s, sizeof(s)),
                         qc_shape_str(&in[0]->shape, sx, sizeof(sx)), (long long)c);
            return QC_ERR_SHAPE;
        }
    }
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape = in[0]->shape;
    for (int i = 1; i < n->n_out; i++) {
        out[i]->dtype = QC_DTYPE_F32;
        out[i]->shape = in[3]->shape;
    }
    return QC_OK;
}

#define LANES 8

/* sum_k x[k], eight float lanes added up in double */
static double row_sum(const float *restrict x, int64_t len)
{
    float lane[LANES] = { 0.0f };
    double acc = 0.0;
    int64_t k = 0, body = len - len % LANES;
    for (; k < body; k += LANES)
        for (int j = 0; j < LANES; j++)
            lane[j] += x[k + j];
    for (; k < len; k++)
        lane[0] += x[k];
    for (int j = 0; j < LANES; j++)
        acc += lane[j];
    return acc;
}

/* sum_k (x[k] - mu)^2 */
static double row_sqdev(const float *restrict x, float mu, int64_t len)
{
    float lane[LANES] = { 0.0f };
    double acc = 0.0;
    int64_t k = 0, body = len - len % LANES;
    for (; k < body; k += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = x[k + j] - mu;
            lane[j] += d * d;
        }
    for (; k < len; k++) {
        float d = x[k] - mu;
        lane[0] += d * d;
    }
    for (int j = 0; j < LANES; j++)
        acc += lane[j];
    return acc;
}

/* *sdy += sum_k dy[k];  *sdyx += sum_k dy[k] * (x[k] - mu) */
static void row_dsums(const float *restrict dy, const float *restrict x, float mu, int64_t len,
                      double *sdy, double *sdyx)
{
    float l0[LANES] = { 0.0f }, l1[LANES] = { 0.0f };
    int64_t k = 0, body = len - len % LANES;
    for (; k < body; k += LANES)
        for (int j = 0; j < LANES; j++) {
            l0[j] += dy[k + j];
            l1[j] += dy[k + j] * (x[k + j] - mu);
        }
    for (; k < len; k++) {
        l0[0] += dy[k];
        l1[0] += dy[k] * (x[k] - mu);
    }
    for (int j = 0; j < LANES; j++) {
        *sdy += l0[j];
        *sdyx += l1[j];
    }
}

/* Asks for the cache lines of row[0 .. len): the rows of one channel lie
 * C*inner apart, too far for the hardware prefetchers to follow, so the
 * per-channel loops fetch the next image's row while working on this one. */
static void prefetch_row(const float *row, int64_t len)
{
    for (int64_t k = 0; k < len; k += 16)
        __builtin_prefetch(row + k);
}

/* [N, C, inner] geometry of x. */
void qc_bn_geometry(const struct qc_tensor *x, int64_t *nb, int64_t *c, int64_t *inner)
{
    const struct qc_shape *s = &x->shape;
    *nb = s->dims[0];
    *c = s->dims[1];
    *inner = 1;
    for (int i = 2; i < s->ndim; i++)
        *inner *= s->dims[i];
}

/* Saved state of a training forward: mu_B[C] then istd[C]. */
static size_t bn_saved(const struct qc_node *n, const struct qc_tensor *const *in,
                       const struct qc_tensor *const *out)
{
    (void)n;
    (void)out;
    return 2 * (size_t)in[0]->shape.dims[1] * sizeof(float);
}

/* ctx->saved as mu_B (istd follows at + C), or NULL (logged) when too small. */
float *qc_bn_saved_state(const struct qc_op_ctx *ctx, int64_t c)
{
    size_t need = 2 * (size_t)c * sizeof(float);
    if (!ctx->saved || ctx->saved_size < need) {
        qc_log_error("%s: BatchNormalization needs %zu saved bytes, got %zu", ctx->label, need,
                     ctx->saved ? ctx->saved_size : (size_t)0);
        return NULL;
    }
    return ctx->saved;
}

/* y = a_c * x + b_c over [N, C, inner] rows; a_c, b_c from the statistics in
 * force: mean/istd (training: batch, saved) or running mean/var (inference). */
static void bn_apply(const struct qc_bn_params *p, bool train, const float *mean,
                     const float *disp, const float *scale, const float *bias,
                     const float *restrict x, float *restrict y, int64_t nb, int64_t c,
                     int64_t inner, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static) \
    if (nb * c * inner >= QC_PAR_MIN_STREAM)
    for (int64_t r = 0; r < nb * c; r++) {
        int64_t ch = r % c;
        float is = train ? disp[ch] : 1.0f / sqrtf(disp[ch] + p->epsilon);
        float a = scale[ch] * is, b = bias[ch] - mean[ch] * a;
        const float *restrict xr = x + r * inner;
        float *restrict yr = y + r * inner;
        for (int64_t k = 0; k < inner; k++)
            yr[k] = xr[k] * a + b;
    }
}

/* Where the training statistics of one BatchNorm go: the saved mu_B and
 * istd (ctx->saved), the running statistics (in[3], in[4], updated in place)
 * and the optional saved-mean / saved-var outputs (NULL when absent). */
struct bn_stats_dst {
    float *mu, *istd, *rmean, *rvar, *bmean, *bvar;
};

static enum qc_status bn_stats_dst(const struct qc_op_ctx *ctx, const struct qc_node *n,
                                   const struct qc_tensor *const *in, struct qc_tensor *const *out,
                                   int64_t c, struct bn_stats_dst *d)
{
    d->mu = qc_bn_saved_state(ctx, c);
    if (!d->mu)
        return QC_ERR_INTERNAL;
    d->istd = d->mu + c;
    d->rmean = qc_tensor_f32(in[3]);
    d->rvar = qc_tensor_f32(in[4]);
    d->bmean = n->n_out > 3 ? qc_tensor_f32(out[3]) : NULL;
    d->bvar = n->n_out > 4 ? qc_tensor_f32(out[4]) : NULL;
    return QC_OK;
}

/* Channel ch's statistics from its batch mean and (biased) variance over m
 * values, local or global alike:
 *   istd = 1/sqrt(var + eps)
 *   running = momentum * running + (1 - momentum) * batch (var unbiased: · m/(m-1)) */
static void bn_channel_stats(const struct qc_bn_params *p, const struct bn_stats_dst *d, int64_t ch,
                             float mean, double var, double unbias)
{
    d->mu[ch] = mean;
    d->istd[ch] = (float)(1.0 / sqrt(var + (double)p->epsilon));
    d->rmean[ch] = p->momentum * d->rmean[ch] + (1.0f - p->momentum) * mean;
    d->rvar[ch] = p->momentum * d->rvar[ch] + (1.0f - p->momentum) * (float)(var * unbias);
    if (d->bmean)
        d->bmean[ch] = mean;
    if (d->bvar)
        d->bvar[ch] = (float)var;
}

/* The running-statistics outputs (out[1], out[2]) once every channel is done. */
static void bn_running_outputs(const struct qc_node *n, struct qc_tensor *const *out,
                               const struct bn_stats_dst *d, int64_t c)
{
    if (n->n_out > 1)
        memcpy(out[1]->data, d->rmean, (size_t)c * sizeof(float));
    if (n->n_out > 2)
        memcpy(out[2]->data, d->rvar, (size_t)c * sizeof(float));
}

/* Training statistics (see the file comment): two-pass per-channel sums,
 * saved mu_B/istd, running statistics updated in place. */
static enum qc_status bn_batch_stats(const struct qc_bn_params *p, const struct qc_op_ctx *ctx,
                                     const struct qc_node *n,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out, float **mu_out)
{
    const float *x = qc_tensor_f32(in[0]);
    struct bn_stats_dst d;
    int64_t nb, c, inner, m;
    double unbias;
    enum qc_status st;

    qc_bn_geometry(in[0], &nb, &c, &inner);
    m = nb * inner;
    st = bn_stats_dst(ctx, n, in, out, c, &d);
    if (st != QC_OK)
        return st;
    unbias = m > 1 ? (double)m / (double)(m - 1) : 1.0;
    /* mu_B = sum x / m;  s2_B = sum (x - mu_B)^2 / m */
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) \
    if (c > 1 && nb * c * inner >= QC_PAR_MIN_STREAM)
    for (int64_t ch = 0; ch < c; ch++) {
        double sx = 0.0, sq = 0.0, var;
        float mean;
        for (int64_t b = 0; b < nb; b++) {
            if (b + 1 < nb)
                prefetch_row(x + ((b + 1) * c + ch) * inner, inner);
            sx += row_sum(x + (b * c + ch) * inner, inner);
        }
        mean = (float)(sx / (double)m);
        for (int64_t b = 0; b < nb; b++)
            sq += row_sqdev(x + (b * c + ch) * inner, mean, inner);
        var = sq / (double)m;
        bn_channel_stats(p, &d, ch, mean, var, unbias);
    }
    bn_running_outputs(n, out, &d, c);
    *mu_out = d.mu;
    return QC_OK;
}

/* The scratch of the synchronized statistics (2C + 1 doubles: per-channel
 * sums and the count, summed over the ranks), in the plan's workspace: an
 * op allocates nothing per step (op.h). */
static size_t bn_workspace(const struct qc_node *n, const struct qc_tensor *const *in,
                           const struct qc_tensor *const *out, int threads)
{
    (void)n;
    (void)out;
    (void)threads;
    return (2 * (size_t)in[0]->shape.dims[1] + 1) * sizeof(double);
}

static double *bn_sync_scratch(const struct qc_op_ctx *ctx, int64_t c)
{
    size_t need = (2 * (size_t)c + 1) * sizeof(double);
    if (!ctx->workspace || ctx->workspace_size < need) {
        qc_log_error("%s: synchronized BatchNormalization needs %zu workspace bytes, got %zu",
                     ctx->label, need, ctx->workspace ? ctx->workspace_size : (size_t)0);
        return NULL;
    }
    return ctx->workspace;
}

/* Synchronized statistics (ctx->sync->batchnorm: a data-parallel job's SyncBatchNorm):
 * the same two passes as bn_batch_stats, each per-channel sum (and the
 * count m) summed over every rank before use, so that mu_B, s2_B and the
 * running statistics are those of the GLOBAL batch, identical on every rank:
 *   M = Σ_ranks m,  mu = Σ_ranks Σ x / M,  s2 = Σ_ranks Σ (x - mu)^2 / M. */
static enum qc_status bn_batch_stats_sync(const struct qc_bn_params *p, const struct qc_op_ctx *ctx,
                                          const struct qc_node *n,
                                          const struct qc_tensor *const *in,
                                          struct qc_tensor *const *out, float **mu_out)
{
    const float *x = qc_tensor_f32(in[0]);
    struct bn_stats_dst d;
    int64_t nb, c, inner;
    float *mu;
    double *sum, m, unbias;
    enum qc_status st;

    qc_bn_geometry(in[0], &nb, &c, &inner);
    st = bn_stats_dst(ctx, n, in, out, c, &d);
    if (st != QC_OK)
        return st;
    mu = d.mu;
    sum = bn_sync_scratch(ctx, c);
    if (!sum)
        return QC_ERR_INTERNAL;
    sum[c] = (double)(nb * inner);
#pragma omp parallel for num_threads(nthreads(ctx))                                                \
    schedule(static) if (c > 1 && nb * c * inner >= QC_PAR_MIN_STREAM)
    for (int64_t ch = 0; ch < c; ch++) {
        double sx = 0.0;
        for (int64_t b = 0; b < nb; b++)
            sx += row_sum(x + (b * c + ch) * inner, inner);
        sum[ch] = sx;
    }
    st = ctx->sync->sum(ctx->sync->arg, sum, c + 1);
    m = sum[c];
    for (int64_t ch = 0; st == QC_OK && ch < c; ch++)
        mu[ch] = (float)(sum[ch] / m);
#pragma omp parallel for num_threads(nthreads(ctx))                                                \
    schedule(static) if (st == QC_OK && c > 1 && nb * c * inner >= QC_PAR_MIN_STREAM)
    for (int64_t ch = 0; ch < c; ch++) {
        double sq = 0.0;
        for (int64_t b = 0; b < nb; b++)
            sq += row_sqdev(x + (b * c + ch) * inner, mu[ch], inner);
        sum[ch] = sq;
    }
    if (st == QC_OK)
        st = ctx->sync->sum(ctx->sync->arg, sum, c);
    unbias = m > 1 ? m / (m - 1) : 1.0;
    for (int64_t ch = 0; st == QC_OK && ch < c; ch++)
        bn_channel_stats(p, &d, ch, mu[ch], sum[ch] / m, unbias);
    if (st != QC_OK)
        return st;
    bn_running_outputs(n, out, &d, c);
    *mu_out = mu;
    return QC_OK;
}

static enum qc_status bn_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                     const struct qc_tensor *const *in,
                                     struct qc_tensor *const *out)
{
    const struct qc_bn_params *p = n->params;
    const float *x = qc_tensor_f32(in[0]), *scale = qc_tensor_f32(in[1]);
    const float *bias = qc_tensor_f32(in[2]), *mean = qc_tensor_f32(in[3]);
    const float *var = qc_tensor_f32(in[4]);
    float *y = qc_tensor_f32(out[0]);
    int64_t nb, c, inner;

    qc_bn_geometry(in[0], &nb, &c, &inner);
    if (ctx->training) {
        float *mu;
        enum qc_status st = ctx->sync && ctx->sync->batchnorm
                                ? bn_batch_stats_sync(p, ctx, n, in, out, &mu)
                                : bn_batch_stats(p, ctx, n, in, out, &mu);
        if (st != QC_OK)
            return st;
        bn_apply(p, true, mu, mu + c, scale, bias, x, y, nb, c, inner, nthreads(ctx));
        return QC_OK;
    }
    bn_apply(p, false, mean, var, scale, bias, x, y, nb, c, inner, nthreads(ctx));
    /* extra outputs: running mean, running var (and saved mean, saved var) */
    for (int i = 1; i < n->n_out; i++) {
        const float *src = (i % 2) ? mean : var;
        memcpy(out[i]->data, src, (size_t)c * sizeof(float));
    }
    return QC_OK;
}

/* Backward, per channel c with xh = (x - mu) * istd, sums over N and space:
 *   dB     += sum dy
 *   dscale += sum dy * xh
 *   training (mu = mu_B, istd = 1/sqrt(s2_B + eps), m values per channel):
 *     dx += scale * istd / m * (m * dy - sum dy - xh * sum(dy * xh))
 *   inference (mu, var = the running statistics, constants):
 *     dx += dy * scale * istd,  istd = 1/sqrt(var + eps)
 * Written per channel as dx += A * dy + K * (x - mu) + D with A = scale*istd,
 * K = -A * istd * sum(dy*xh) / m and D = -A * sum(dy) / m in training (K = D
 * = 0 in inference).  Parallel over channels; the running statistics get no
 * gradient. */
/* The training backward with synchronized statistics (ctx->sync->batchnorm): dscale
 * and dB take this rank's sums (the job's gradient all-reduce averages the
 * ranks'), dx the sums over every rank and the global count M:
 *   dx += scale * istd / M * (M * dy - Σ_ranks Σ dy - xh * Σ_ranks Σ dy * xh). */
static enum qc_status bn_backward_sync(const struct qc_op_ctx *ctx, const float *x,
                                       const float *scale, const float *dy, float *dx,
                                       float *dscale, float *dbias, int64_t nb, int64_t c,
                                       int64_t inner)
{
    const float *mu = qc_bn_saved_state(ctx, c), *istd;
    double *sum;
    enum qc_status st;
    if (!mu)
        return QC_ERR_INTERNAL;
    istd = mu + c;
    sum = bn_sync_scratch(ctx, c);
    if (!sum)
        return QC_ERR_INTERNAL;
    sum[2 * c] = (double)(nb * inner);
#pragma omp parallel for num_threads(nthreads(ctx))                                                \
    schedule(static) if (c > 1 && nb * c * inner >= QC_PAR_MIN_STREAM)
    for (int64_t ch = 0; ch < c; ch++) {
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t b = 0; b < nb; b++) {
            int64_t off = (b * c + ch) * inner;
            row_dsums(dy + off, x + off, mu[ch], inner, &sdy, &sdyx);
        }
        if (dscale)
            dscale[ch] += (float)(sdyx * istd[ch]);
        if (dbias)
            dbias[ch] += (float)sdy;
        sum[ch] = sdy;
        sum[c + ch] = sdyx;
    }
    st = dx ? ctx->sync->sum(ctx->sync->arg, sum, 2 * c + 1) : QC_OK;
#pragma omp parallel for num_threads(nthreads(ctx))                                                \
    schedule(static) if (dx && st == QC_OK && c > 1 && nb * c * inner >= QC_PAR_MIN_STREAM)
    for (int64_t ch = 0; ch < c; ch++) {
        double m = sum[2 * c];
        float is = istd[ch], mc = mu[ch], a = scale[ch] * is;
        float k = (float)(-(double)a * is * is * sum[c + ch] / m);
        float d = (float)(-(double)a * sum[ch] / m);
        if (!dx || st != QC_OK)
            continue;
        for (int64_t b = 0; b < nb; b++) {
            int64_t off = (b * c + ch) * inner;
            for (int64_t j = 0; j < inner; j++)
                dx[off + j] += a * dy[off + j] + k * (x[off + j] - mc) + d;
        }
    }
    return st;
}

static enum qc_status bn_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      const struct qc_tensor *const *out,
                                      const struct qc_tensor *const *dout,
                                      struct qc_tensor *const *din)
{
    const struct qc_bn_params *p = n->params;
    const float *x = qc_tensor_f32(in[0]), *scale = qc_tensor_f32(in[1]);
    const float *var = qc_tensor_f32(in[4]), *dy, *mu, *istd = NULL;
    float *dx, *dscale, *dbias;
    int64_t nb, c, inner, m;
    bool train = ctx->training;
    (void)out;

    if (!dout[0] || (!din[0] && !din[1] && !din[2]))
        return QC_OK;
    qc_bn_geometry(in[0], &nb, &c, &inner);
    m = nb * inner;
    dy = qc_tensor_f32(dout[0]);
    dx = din[0] ? qc_tensor_f32(din[0]) : NULL;
    dscale = din[1] ? qc_tensor_f32(din[1]) : NULL;
    dbias = din[2] ? qc_tensor_f32(din[2]) : NULL;
    if (train && ctx->sync && ctx->sync->batchnorm)
        return bn_backward_sync(ctx, x, scale, dy, dx, dscale, dbias, nb, c, inner);
    if (train) {
        const float *st = qc_bn_saved_state(ctx, c);
        if (!st)
            return QC_ERR_INTERNAL;
        mu = st;
        istd = st + c;
    } else {
        mu = qc_tensor_f32(in[3]);
    }
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) \
    if (c > 1 && nb * c * inner >= QC_PAR_MIN_STREAM)
    for (int64_t ch = 0; ch < c; ch++) {
        double sdy = 0.0, sdyx = 0.0;
        float is = train ? istd[ch] : 1.0f / sqrtf(var[ch] + p->epsilon);
        float mc = mu[ch], a, k, d;
        for (int64_t b = 0; b < nb; b++) {
            int64_t off = (b * c + ch) * inner;
            if (b + 1 < nb) {
                prefetch_row(dy + off + c * inner, inner);
                prefetch_row(x + off + c * inner, inner);
            }
            row_dsums(dy + off, x + off, mc, inner, &sdy, &sdyx);
        }
        /* sum dy * xh = istd * sum dy * (x - mu) */
        if (dscale)
            dscale[ch] += (float)(sdyx * is);
        if (dbias)
            dbias[ch] += (float)sdy;
        if (!dx)
            continue;
        a = scale[ch] * is;
        k = train ? (float)(-(double)a * is * is * sdyx / (double)m) : 0.0f;
        d = train ? (float)(-(double)a * sdy / (double)m) : 0.0f;
        for (int64_t b = 0; b < nb; b++) {
            int64_t off = (b * c + ch) * inner;
            const float *restrict dyr = dy + off, *restrict xr = x + off;
            float *restrict dxr = dx + off;
            if (b + 1 < nb)
                prefetch_row(dxr + c * inner, inner);
            for (int64_t j = 0; j < inner; j++)
                dxr[j] += a * dyr[j] + k * (xr[j] - mc) + d;
        }
    }
    return QC_OK;
}

/* ---- LRN ---- */

struct lrn_params {
    int64_t size;
    float   alpha, beta, bias;
};

static enum qc_status lrn_parse(struct qc_node *n, int64_t opset, const char *label)
{
    struct lrn_params *p;
    enum qc_status st = qc_op_params_new(n, sizeof(*p));
    (void)opset;
    if (st != QC_OK)
        return st;
    p = n->params;
    st = qc_attr_int(&n->attrs, label, "size", 0, &p->size);
    if (st == QC_OK)
        st = qc_attr_float(&n->attrs, label, "alpha", 1e-4f, &p->alpha);
    if (st == QC_OK)
        st = qc_attr_float(&n->attrs, label, "beta", 0.75f, &p->beta);
    if (st == QC_OK)
        st = qc_attr_float(&n->attrs, label, "bias", 1.0f, &p->bias);
    if (st != QC_OK)
        return st;
    if (p->size < 1) {
        qc_log_error("%s: LRN size=%lld, expected a positive value (required)", label,
                     (long long)p->size);
        return QC_ERR_ONNX;
    }
    return QC_OK;
}

static enum qc_status lrn_infer(const struct qc_node *n, const char *label,
                                const struct qc_tensor *const *in, struct qc_tensor *const *out)
{
    int64_t c;
    enum qc_status st = check_nc(label, in[0], &c);
    (void)n;
    if (st != QC_OK)
        return st;
    out[0]->dtype = QC_DTYPE_F32;
    out[0]->shape = in[0]->shape;
    return QC_OK;
}

/* The window of channel c is [c - lo, c + hi] with lo = floor((size-1)/2),
 * hi = ceil((size-1)/2); channel j is in the windows of [j - hi, j + lo]. */
static void lrn_offsets(const struct lrn_params *p, int64_t *lo, int64_t *hi)
{
    *lo = (p->size - 1) / 2;
    *hi = p->size - 1 - *lo;
}

/* The inner size (product of the dims after C). */
static int64_t lrn_inner(const struct qc_shape *s)
{
    int64_t inner = 1;
    for (int i = 2; i < s->ndim; i++)
        inner *= s->dims[i];
    return inner;
}

/* One float per element of X: s = bias + alpha / size * square_sum. */
static size_t lrn_saved(const struct qc_node *n, const struct qc_tensor *const *in,
                        const struct qc_tensor *const *out)
{
    (void)n;
    (void)out;
    return (size_t)qc_tensor_nelem(in[0]) * sizeof(float);
}

static enum qc_status lrn_forward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                      const struct qc_tensor *const *in,
                                      struct qc_tensor *const *out)
{
    const struct lrn_params *p = n->params;
    const struct qc_shape *s = &in[0]->shape;
    const float *x = qc_tensor_f32(in[0]);
    float *y = qc_tensor_f32(out[0]), *sv = NULL;
    int64_t nb = s->dims[0], c = s->dims[1], inner = lrn_inner(s), lo_off, hi_off;
    float k = p->alpha / (float)p->size;

    lrn_offsets(p, &lo_off, &hi_off);
    if (ctx->training && ctx->saved && ctx->saved_size >= lrn_saved(n, in, NULL))
        sv = ctx->saved;
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (nb * c * inner > 16384)
    for (int64_t r = 0; r < nb * c; r++) {
        int64_t b = r / c, ch = r % c;
        int64_t c0 = QC_MAX(0, ch - lo_off), c1 = QC_MIN(c - 1, ch + hi_off);
        const float *xb = x + b * c * inner;
        float *yr = y + r * inner;
        for (int64_t j = 0; j < inner; j++) {
            float sq = 0.0f, base;
            for (int64_t cc = c0; cc <= c1; cc++) {
                float v = xb[cc * inner + j];
                sq += v * v;
            }
            base = p->bias + k * sq;
            yr[j] = xb[ch * inner + j] / powf(base, p->beta);
            if (sv)
                sv[r * inner + j] = base;
        }
    }
    return QC_OK;
}

/* Backward, per position over the channels, with s_c the saved base
 * bias + (alpha/size) * sum_{c' in window(c)} x_c'^2 and y_c = x_c s_c^-beta:
 *   dx_j += dy_j s_j^-beta
 *           - (2 alpha beta / size) x_j * sum_{c : j in window(c)} dy_c x_c s_c^(-beta-1)
 * where dy_c x_c s_c^(-beta-1) = dy_c y_c / s_c, and j is in window(c) for c in
 * [j - hi, j + lo] clipped to [0, C).  Parallel over (n, j) rows; each adds
 * the window's terms to its row of dx. */
static enum qc_status lrn_backward_cpu(const struct qc_node *n, const struct qc_op_ctx *ctx,
                                       const struct qc_tensor *const *in,
                                       const struct qc_tensor *const *out,
                                       const struct qc_tensor *const *dout,
                                       struct qc_tensor *const *din)
{
    const struct lrn_params *p = n->params;
    const struct qc_shape *s = &in[0]->shape;
    int64_t nb = s->dims[0], c = s->dims[1], inner = lrn_inner(s), lo_off, hi_off;
    size_t need = (size_t)(nb * c * inner) * sizeof(float);
    const float *x, *y, *dy, *sv;
    float *dx, k2;

    if (!dout[0] || !din[0])
        return QC_OK;
    if (!ctx->saved || ctx->saved_size < need) {
        qc_log_error("%s: LRN needs %zu saved bytes, got %zu", ctx->label, need,
                     ctx->saved ? ctx->saved_size : (size_t)0);
        return QC_ERR_INTERNAL;
    }
    lrn_offsets(p, &lo_off, &hi_off);
    x = qc_tensor_f32(in[0]);
    y = qc_tensor_f32(out[0]);
    dy = qc_tensor_f32(dout[0]);
    dx = qc_tensor_f32(din[0]);
    sv = ctx->saved;
    k2 = 2.0f * p->alpha * p->beta / (float)p->size;
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static) if (nb * c * inner > 16384)
    for (int64_t r = 0; r < nb * c; r++) {
        int64_t b = r / c, ch = r % c, base = b * c * inner;
        int64_t c0 = QC_MAX(0, ch - hi_off), c1 = QC_MIN(c - 1, ch + lo_off);
        const float *restrict xr = x + r * inner, *restrict dyr = dy + r * inner;
        const float *restrict sr = sv + r * inner;
        float *restrict dxr = dx + r * inner;
        for (int64_t j = 0; j < inner; j++)
            dxr[j] += dyr[j] * powf(sr[j], -p->beta);
        for (int64_t cc = c0; cc <= c1; cc++) {
            int64_t off = base + cc * inner;
            const float *restrict dyc = dy + off, *restrict yc = y + off, *restrict sc = sv + off;
            for (int64_t j = 0; j < inner; j++)
                dxr[j] -= k2 * xr[j] * (dyc[j] * yc[j] / sc[j]);
        }
    }
    return QC_OK;
}

/* ---- definitions ---- */

const struct qc_op_def qc_op_batchnorm = {
    .n_in_min = 5,
    .n_in_max = 5,
    .n_out_min = 1,
    .n_out_max = 5,
    .fold = QC_FOLD_NEVER,
    .parse = bn_parse,
    .infer = bn_infer,
    .saved = bn_saved,
    .workspace = bn_workspace,
    .cpu = { .forward = bn_forward_cpu, .backward = bn_backward_cpu },
    /* X, scale, B, input_mean, input_var: scale and B train; mean and var are the
     * running statistics a training forward updates */
    .roles = { .bias = QC_SLOT(2),
               .trainable = QC_INPUT_BIT(1) | QC_INPUT_BIT(2),
               .running = QC_INPUT_BIT(3) | QC_INPUT_BIT(4),
               .cell = QC_CELL_BATCHNORM },
};

const struct qc_op_def qc_op_lrn = {
    .n_in_min = 1,
    .n_in_max = 1,
    .n_out_min = 1,
    .n_out_max = 1,
    .fold = QC_FOLD_NEVER,
    .parse = lrn_parse,
    .infer = lrn_infer,
    .saved = lrn_saved,
    .cpu = { .forward = lrn_forward_cpu, .backward = lrn_backward_cpu },
};
