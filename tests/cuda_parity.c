/*
 * cuda_parity.c - CPU/CUDA parity: first the quantizer and solver kernels
 * (the CUDA backend's training kernels by id against the host functions of
 * src/backend/cpu_train.h),
 * then whole models (cuda_parity_model.c: forward, backward and 20 training
 * steps of LSQ and SAT fixtures, compared down to the trained weights;
 * QC_PARITY_KERNELS_ONLY=1 skips them).  The
 * same source is built against the real CUDA runtime (tests/cuda_parity, a
 * GPU needed) and against the CPU emulator of tests/cuda_emu
 * (tests/cuda_parity_emu, any machine).
 *
 * For arrays of several sizes (1, block-size neighbours, odd sizes, ~1e6) and
 * random inputs with values planted on rounding boundaries, each CUDA
 * function runs on the same inputs as its CPU twin and the outputs are
 * compared:
 *   - SAT activation and LSQ forward values, their input gradients and the
 *     SGD/Adam updates: bit-identical (same float formulas, no FMA);
 *   - SAT weights: the device tanh may differ from the host tanhf in the last
 *     bit, so values within 1e-5 of max|Q|, integer levels equal except at
 *     most 1 + n/1e5 elements that sit on a rounding boundary, each off by
 *     one level;
 *   - gradients of the learnable scalars (α, s; sums in another order) and
 *     SAT weight gradients: within 1e-4 relative;
 *   - the scalar reductions are deterministic: the same call twice gives the
 *     same bits.
 * The emulated build stops at 65537 elements (NMAX, set in Makefile.am): 257
 * blocks take every path of the kernels as 3907 do (grid-stride loops start past
 * 65535 blocks of 256, 16.7 M elements); on the emulator the ~1e6 arrays only
 * add time.  Prints one summary line per kernel family with the maximum
 * errors, and the first failing cases.  Exit status: 0 pass, 1 mismatch, 77 no CUDA device
 * (skipped), 99 a CUDA error.
 */
#include <config.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/backend_impl.h"
#include "backend/cuda_ops.h"
#include "cuda_parity.h"
#include "util/log.h"
#include "util/qc.h"
#include "quant/quant.h"
#include "util/rng.h"
#include "train/solver.h"

#ifndef NMAX
#define NMAX 1000003   /* the ~1e6 size */
#endif
#define MAX_DETAILS 20

/* Maximum errors and failures of one kernel family. */
struct family {
    const char *name;
    int         cases;
    int         failed;
    double      val_err;      /* forward values: max relative error        */
    int64_t     val_diff;     /* forward values not bit-identical           */
    int64_t     lvl_diff;     /* integer levels that differ                 */
    int64_t     lvl_total;
    double      grad_err;     /* input gradients: max relative error        */
    int64_t     grad_diff;    /* input gradients not bit-identical          */
    double      scal_err;     /* scalar gradient / state: max relative err  */
};

struct ctx {
    struct qc_backend *be;
    struct qc_rng      rng;
    int                details;
    /* host */
    float   *x, *dy, *yc, *yg, *gc, *gg, *g0, *sc, *sg;
    int32_t *kc, *kg;
    /* device */
    float   *dx, *ddy, *dout, *dgrad, *dst;
    int32_t *dk;
    float   *dscal;   /* [0] α or s, [1] dα or ds, [4..7] SAT state */
};

static float urand(struct ctx *c, float lo, float hi)
{
    return lo + (hi - lo) * qc_rng_uniform(&c->rng);
}

static void fill(struct ctx *c, float *a, int64_t n, float lo, float hi)
{
    for (int64_t i = 0; i < n; i++)
        a[i] = urand(c, lo, hi);
}

/* |a − b| relative to max(|b|, fl). */
static double rel(double a, double b, double fl)
{
    double d = fabs(b) > fl ? fabs(b) : fl;
    return fabs(a - b) / d;
}

static double max_abs(const float *a, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(a[i]) > m)
            m = fabs(a[i]);
    return m;
}

static void fail(struct ctx *c, struct family *f, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(struct ctx *c, struct family *f, const char *what, const char *fmt, ...)
{
    va_list ap;
    f->failed++;
    if (c->details++ < MAX_DETAILS) {
        printf("FAIL %s %s: ", f->name, what);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    }
}

static enum qc_status up(struct ctx *c, void *dst, const void *src, size_t nbytes)
{
    return qc_backend_upload(c->be, dst, src, nbytes);
}

static enum qc_status down(struct ctx *c, void *dst, const void *src, size_t nbytes)
{
    return qc_backend_download(c->be, dst, src, nbytes);
}

/* Bit-identical count and max relative error of a GPU array against the CPU one. */
static void compare(const float *g, const float *cpu, int64_t n, int64_t *ndiff, double *err)
{
    double fl = 1e-6 * max_abs(cpu, n) + 1e-30;
    for (int64_t i = 0; i < n; i++) {
        if (memcmp(&g[i], &cpu[i], sizeof(float)) != 0) {
            double e = rel(g[i], cpu[i], fl);
            (*ndiff)++;
            if (!(e <= *err))
                *err = e;
        }
    }
}

/* ---- SAT weights ------------------------------------------------------------------------ */

/* The weights of a SAT case: random, all zero (m = 0), or constant (var 0 of Q). */
enum wfill { W_RANDOM, W_ZERO, W_CONST };
static const char *const wfill_names[] = { "", " zero", " constant" };

static enum qc_status sat_weight_case(struct ctx *c, struct family *f,
                                      const struct qc_sat_wcfg *cfg, int64_t n, enum wfill wf)
{
    struct qc_sat_wstate stc, stg;
    enum qc_status st;
    char what[160];
    int64_t lvl = 0, vdiff = 0, gdiff = 0;
    double verr = 0.0, gerr = 0.0, serr;
    int maxdk = 0;

    snprintf(what, sizeof(what), "mode=%s R=%d quant=%d scaling=%d n=%lld%s",
             qc_sat_mode_name(cfg->mode), cfg->range, cfg->apply_quant, cfg->apply_scaling,
             (long long)n, wfill_names[wf]);
    if (wf == W_ZERO) {
        memset(c->x, 0, (size_t)n * sizeof(float));
    } else if (wf == W_CONST) {
        for (int64_t i = 0; i < n; i++)
            c->x[i] = -0.02f;
    } else {
        fill(c, c->x, n, -1.5f, 1.5f);
    }
    fill(c, c->dy, n, -1.0f, 1.0f);
    fill(c, c->g0, n, -0.1f, 0.1f);

    qc_sat_weight_forward(cfg, c->x, c->yc, n, 1, &stc);
    if (cfg->apply_quant)
        qc_sat_weight_image(cfg, c->x, c->kc, n, 1, &stc);
    memcpy(c->gc, c->g0, (size_t)n * sizeof(float));
    qc_sat_weight_backward(cfg, &stc, c->x, c->dy, c->gc, n, 1);

    size_t nb = (size_t)n * sizeof(float);
    struct qc_sat_wstate *dstate = (struct qc_sat_wstate *)(c->dscal + 4);
    if ((st = up(c, c->dx, c->x, nb)) || (st = up(c, c->ddy, c->dy, nb)) ||
        (st = up(c, c->dgrad, c->g0, nb)))
        return st;
    st = qc_backend_run(c->be, QC_TK_SAT_WEIGHT_FORWARD, &(struct qc_tk_sat_weight_forward){
                            .cfg = cfg, .w = c->dx, .q = c->dout,
                            .k = cfg->apply_quant ? c->dk : NULL, .n = n, .st = dstate });
    if (st == QC_OK)
        st = qc_backend_run(c->be, QC_TK_SAT_WEIGHT_BACKWARD,
                            &(struct qc_tk_sat_weight_backward){
                                .cfg = cfg, .st = dstate, .w = c->dx, .dq = c->ddy,
                                .dw = c->dgrad, .n = n });
    if (st || (st = down(c, c->yg, c->dout, nb)) || (st = down(c, c->gg, c->dgrad, nb)) ||
        (st = down(c, &stg, dstate, sizeof(stg))))
        return st;
    if (cfg->apply_quant && (st = down(c, c->kg, c->dk, (size_t)n * sizeof(int32_t))))
        return st;

    f->cases++;
    /* state */
    serr = rel(stg.m, stc.m, 1e-30);
    if (rel(stg.s, stc.s, 1e-30) > serr)
        serr = rel(stg.s, stc.s, 1e-30);
    if (rel(stg.scale, stc.scale, 1e-30) > serr)
        serr = rel(stg.scale, stc.scale, 1e-30);
    if (serr > f->scal_err)
        f->scal_err = serr;
    if (serr > 1e-5 || stg.div != stc.div) {
        snprintf(what + strlen(what), sizeof(what) - strlen(what), " div %d/%d", stg.div,
                 stc.div);
        fail(c, f, what, "state rel err %.3g (scale gpu %.9g)", serr, stg.scale);
    }

    /* levels, then values where the levels agree; a last-bit tanh difference is absolute
     * (amplified by cancellation near Q = 0), so the errors are relative to max|Q| */
    double fl = max_abs(c->yc, n) + 1e-30;
    for (int64_t i = 0; i < n; i++) {
        if (cfg->apply_quant && c->kg[i] != c->kc[i]) {
            int dk = abs(c->kg[i] - c->kc[i]);
            lvl++;
            if (dk > maxdk)
                maxdk = dk;
            continue;
        }
        if (memcmp(&c->yg[i], &c->yc[i], sizeof(float)) != 0) {
            double e = fabs((double)c->yg[i] - c->yc[i]) / fl;
            vdiff++;
            if (e > verr)
                verr = e;
        }
    }
    f->val_diff += vdiff;
    f->lvl_diff += lvl;
    f->lvl_total += cfg->apply_quant ? n : 0;
    if (verr > f->val_err)
        f->val_err = verr;
    int step = cfg->mode == QC_SAT_SYMMETRIC || cfg->mode == QC_SAT_ASYMMETRIC ? 1 : 2;
    if (cfg->range == 1)
        step = 2;
    if (verr > 1e-5)
        fail(c, f, what, "Q rel err %.3g (%lld differ)", verr, (long long)vdiff);
    if ((double)lvl > 1.0 + (double)n / 1e5 || maxdk > step)
        fail(c, f, what, "%lld levels differ (max |dk| %d)", (long long)lvl, maxdk);

    /* dW = dW0 + increment: relative to the larger of the two terms' sum and start */
    for (int64_t i = 0; i < n; i++) {
        if (memcmp(&c->gg[i], &c->gc[i], sizeof(float)) != 0) {
            double e = rel(c->gg[i], c->gc[i], fabs(c->g0[i]) + 1e-30);
            gdiff++;
            if (!(e <= gerr))
                gerr = e;
        }
    }
    f->grad_diff += gdiff;
    if (gerr > f->grad_err)
        f->grad_err = gerr;
    if (!(gerr <= 1e-4))
        fail(c, f, what, "dW rel err %.3g (%lld differ)", gerr, (long long)gdiff);
    return QC_OK;
}

/* ---- CG-PACT and LSQ -------------------------------------------------------------------- */

/* Random values in [lo, hi], one in 5 replaced by a grid point or a midpoint k·h, (k+½)·h,
 * k ∈ [kmin, kmax], or by 0 / ±a. */
static void fill_grid(struct ctx *c, int64_t n, float lo, float hi, float h, int kmin,
                      int kmax)
{
    fill(c, c->x, n, lo, hi);
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = qc_rng_next(&c->rng);
        int k = kmin + (int)((r >> 8) % (uint64_t)(kmax - kmin + 1));
        switch (r % 10) {
        case 0:
            c->x[i] = (float)k * h;
            break;
        case 1:
            c->x[i] = ((float)k + 0.5f) * h;
            break;
        case 2:
            c->x[i] = (r >> 40) & 1 ? 0.0f : -0.0f;
            break;
        case 3:
            c->x[i] = (float)((r >> 40) & 1 ? kmax : kmin) * h;
            break;
        default:
            break;
        }
    }
}

/* Runs the scalar-gradient check shared by CG-PACT and LSQ after the CPU and GPU ran:
 * y, dx bit-identical, the scalar within 1e-4. */
static void check_act(struct ctx *c, struct family *f, const char *what, int64_t n,
                      float scal_cpu, float scal_gpu)
{
    int64_t vdiff = 0, gdiff = 0;
    double verr = 0.0, gerr = 0.0, serr = rel(scal_gpu, scal_cpu, 1e-3);

    f->cases++;
    compare(c->yg, c->yc, n, &vdiff, &verr);
    compare(c->gg, c->gc, n, &gdiff, &gerr);
    f->val_diff += vdiff;
    f->grad_diff += gdiff;
    if (verr > f->val_err)
        f->val_err = verr;
    if (gerr > f->grad_err)
        f->grad_err = gerr;
    if (serr > f->scal_err)
        f->scal_err = serr;
    if (vdiff)
        fail(c, f, what, "%lld values differ (max rel %.3g)", (long long)vdiff, verr);
    if (gdiff)
        fail(c, f, what, "%lld dx differ (max rel %.3g)", (long long)gdiff, gerr);
    if (!(serr <= 1e-4))
        fail(c, f, what, "scalar gradient gpu %.9g cpu %.9g", scal_gpu, scal_cpu);
}

/* Runs forward + backward on the device: scal[0] the parameter, scal[1] its gradient
 * (starting at 0.5); `lsq` picks the kernels.  Results into yg, gg, *dscal. */
static enum qc_status run_gpu_act(struct ctx *c, bool lsq, float param, int range, int qn,
                                  int qp, double g, int64_t n, float *dscal)
{
    float scal[2] = { param, 0.5f };
    size_t nb = (size_t)n * sizeof(float);
    enum qc_status st;
    if ((st = up(c, c->dx, c->x, nb)) || (st = up(c, c->ddy, c->dy, nb)) ||
        (st = up(c, c->dgrad, c->g0, nb)) || (st = up(c, c->dscal, scal, sizeof(scal))))
        return st;
    if (lsq) {
        st = qc_backend_run(c->be, QC_TK_LSQ_FORWARD, &(struct qc_tk_lsq_forward){
                                .step = c->dscal, .qn = qn, .qp = qp, .x = c->dx,
                                .y = c->dout, .n = n });
        if (st == QC_OK)
            st = qc_backend_run(c->be, QC_TK_LSQ_BACKWARD, &(struct qc_tk_lsq_backward){
                                    .step = c->dscal, .qn = qn, .qp = qp, .g = g, .x = c->dx,
                                    .dy = c->ddy, .dx = c->dgrad, .n = n,
                                    .dstep = c->dscal + 1 });
    } else {
        st = qc_backend_run(c->be, QC_TK_SAT_ACT_FORWARD, &(struct qc_tk_sat_act_forward){
                                .alpha = c->dscal, .range = range, .x = c->dx, .y = c->dout,
                                .n = n });
        if (st == QC_OK)
            st = qc_backend_run(c->be, QC_TK_SAT_ACT_BACKWARD,
                                &(struct qc_tk_sat_act_backward){
                                    .alpha = c->dscal, .range = range, .x = c->dx,
                                    .dy = c->ddy, .dx = c->dgrad, .n = n,
                                    .dalpha = c->dscal + 1 });
    }
    if (st || (st = down(c, c->yg, c->dout, nb)) || (st = down(c, c->gg, c->dgrad, nb)) ||
        (st = down(c, scal, c->dscal, sizeof(scal))))
        return st;
    *dscal = scal[1];
    return QC_OK;
}

static enum qc_status sat_act_case(struct ctx *c, struct family *f, float alpha, int range,
                                   int64_t n)
{
    char what[96];
    float a = qc_sat_alpha_used(alpha), h = qc_sat_act_scale(alpha, range);
    float dac = 0.5f, dag;
    enum qc_status st;

    snprintf(what, sizeof(what), "alpha=%g R=%d n=%lld", alpha, range, (long long)n);
    fill_grid(c, n, -0.25f * a, 1.25f * a, h, -1, range + 1);
    fill(c, c->dy, n, -1.0f, 1.0f);
    fill(c, c->g0, n, -0.1f, 0.1f);
    qc_sat_act_forward(alpha, range, c->x, c->yc, n, 1);
    memcpy(c->gc, c->g0, (size_t)n * sizeof(float));
    qc_sat_act_backward(alpha, range, c->x, c->dy, c->gc, n, 1, &dac);
    if ((st = run_gpu_act(c, false, alpha, range, 0, 0, 0.0, n, &dag)))
        return st;
    check_act(c, f, what, n, dac, dag);
    return QC_OK;
}

static enum qc_status lsq_case(struct ctx *c, struct family *f, float step, int range,
                               bool is_signed, int64_t n)
{
    char what[96];
    int qn, qp;
    float s, dsc = 0.5f, dsg;
    double g;
    enum qc_status st;

    qc_lsq_levels(range, is_signed, &qn, &qp);
    s = qc_lsq_step_used(step);
    g = qc_lsq_grad_scale(n, qp);
    snprintf(what, sizeof(what), "step=%g R=%d %s n=%lld", step, range,
             is_signed ? "signed" : "unsigned", (long long)n);
    fill_grid(c, n, -((float)qn + 2.0f) * s, ((float)qp + 2.0f) * s, s, -qn - 1, qp + 1);
    fill(c, c->dy, n, -1.0f, 1.0f);
    fill(c, c->g0, n, -0.1f, 0.1f);
    qc_lsq_forward(step, qn, qp, c->x, c->yc, n, 1);
    memcpy(c->gc, c->g0, (size_t)n * sizeof(float));
    qc_lsq_backward(step, qn, qp, g, c->x, c->dy, c->gc, n, 1, &dsc);
    if ((st = run_gpu_act(c, true, step, range, qn, qp, g, n, &dsg)))
        return st;
    check_act(c, f, what, n, dsc, dsg);
    return QC_OK;
}

/*
 * Asymmetric LSQ (QAct.ZeroPoint) on [0, R] with the float zero point zf: forward values and
 * dx bit-identical, ds and dzf within 1e-4 (dzf NULL: z frozen, no write), and the min/max
 * initialisation (step and zf equal: min and max are exact in any order).  dscal holds
 * [s, ds, zf, dzf].
 */
static enum qc_status lsq_zp_case(struct ctx *c, struct family *f, float step, int range, float zf,
                                  bool learned, int64_t n)
{
    char what[112];
    int z = qc_lsq_zero_point(zf, 0, range);
    float s = qc_lsq_step_used(step), dsc = 0.5f, dzc = 0.25f, scal[4] = { step, 0.5f, zf, 0.25f };
    float initc[2] = { 0.0f, 0.0f }, initg[2];
    double g = qc_lsq_grad_scale(n, range), zerr;
    size_t nb = (size_t)n * sizeof(float);
    enum qc_status st;

    snprintf(what, sizeof(what), "zero point step=%g R=%d zf=%g %s n=%lld", step, range, zf,
             learned ? "learned" : "frozen", (long long)n);
    fill_grid(c, n, -((float)z + 2.0f) * s, ((float)(range - z) + 2.0f) * s, s, -z - 1,
              range - z + 1);
    fill(c, c->dy, n, -1.0f, 1.0f);
    fill(c, c->g0, n, -0.1f, 0.1f);
    qc_lsq_forward_zp(step, zf, 0, range, c->x, c->yc, n, 1);
    memcpy(c->gc, c->g0, nb);
    qc_lsq_backward_zp(step, zf, 0, range, g, c->x, c->dy, c->gc, n, 1, &dsc,
                       learned ? &dzc : NULL);
    qc_lsq_init_zero_point(c->x, n, 0, range, false, 1, &initc[0], &initc[1]);
    if ((st = up(c, c->dx, c->x, nb)) || (st = up(c, c->ddy, c->dy, nb)) ||
        (st = up(c, c->dgrad, c->g0, nb)) || (st = up(c, c->dscal, scal, sizeof(scal))))
        return st;
    st = qc_backend_run(c->be, QC_TK_LSQ_FORWARD,
                        &(struct qc_tk_lsq_forward){ .step = c->dscal,
                                                     .qn = 0,
                                                     .qp = range,
                                                     .x = c->dx,
                                                     .y = c->dout,
                                                     .n = n,
                                                     .zero_point = c->dscal + 2 });
    if (st == QC_OK)
        st = qc_backend_run(
            c->be, QC_TK_LSQ_BACKWARD,
            &(struct qc_tk_lsq_backward){ .step = c->dscal,
                                          .qn = 0,
                                          .qp = range,
                                          .g = g,
                                          .x = c->dx,
                                          .dy = c->ddy,
                                          .dx = c->dgrad,
                                          .n = n,
                                          .dstep = c->dscal + 1,
                                          .zero_point = c->dscal + 2,
                                          .dzero_point = learned ? c->dscal + 3 : NULL });
    if (st || (st = down(c, c->yg, c->dout, nb)) || (st = down(c, c->gg, c->dgrad, nb)) ||
        (st = down(c, scal, c->dscal, sizeof(scal))))
        return st;
    check_act(c, f, what, n, dsc, scal[1]);
    zerr = rel(scal[3], dzc, 1e-3);
    if (zerr > f->scal_err)
        f->scal_err = zerr;
    if (!(zerr <= 1e-4))
        fail(c, f, what, "dzf gpu %.9g cpu %.9g", scal[3], dzc);
    st = qc_backend_run(c->be, QC_TK_LSQ_INIT_STEP,
                        &(struct qc_tk_lsq_init_step){ .x = c->dx,
                                                       .n = n,
                                                       .qp = range,
                                                       .step = c->dscal,
                                                       .zero_point = c->dscal + 2,
                                                       .qn = 0 });
    if (st || (st = down(c, initg, c->dscal, sizeof(float))) ||
        (st = down(c, initg + 1, c->dscal + 2, sizeof(float))))
        return st;
    if (initg[0] != initc[0] || initg[1] != initc[1])
        fail(c, f, what, "init: step gpu %.9g cpu %.9g, zf gpu %g cpu %g", initg[0], initc[0],
             initg[1], initc[1]);
    return QC_OK;
}

/*
 * Per-channel quantizers (QWeight.PerChannel=1) on a layout [outer, C, inner]: outer 1 is
 * Conv and Gemm with transB, outer > 1 ConvTranspose, Gemm without transB and MatMul (the
 * channels interleaved): LSQ forward and backward with C steps (values and dx
 * bit-identical, each ds_c within 1e-4), the per-channel step init (within 1e-5), SAT
 * weights per channel (each channel's state within 1e-5, levels at most one boundary flip
 * per channel, dW within 1e-4).  Steps, their gradients and the SAT states live in c->dst.
 */
static enum qc_status channels_case(struct ctx *c, struct family *f, int64_t outer, int64_t inner)
{
    enum { C = 4 };
    struct qc_channels ch = { .nch = C, .inner = inner };
    int64_t n = outer * C * inner, vdiff = 0, gdiff = 0, lvl = 0;
    size_t nb = (size_t)n * sizeof(float);
    float steps[C] = { 0.013f, 0.05f, 0.2f, 1e-9f }, dsc[C] = { 0 }, dsg[C], host[2 * C];
    float initc[C], initg[C];
    struct qc_sat_wstate stc[C], stg[C];
    struct qc_sat_wcfg cfg = { .mode = QC_SAT_DEFAULT,
                               .range = 15,
                               .apply_quant = true,
                               .apply_scaling = true,
                               .fanout = 9 * C };
    struct qc_sat_wstate *dstate = (struct qc_sat_wstate *)(c->dst + 2 * C);
    double verr = 0.0, gerr = 0.0, serr = 0.0;
    char what[96];
    enum qc_status st;

    snprintf(what, sizeof(what), "per channel outer=%lld C=%d inner=%lld", (long long)outer, C,
             (long long)inner);
    fill_grid(c, n, -10.0f * 0.2f, 9.0f * 0.2f, 0.05f, -9, 8);
    fill(c, c->dy, n, -1.0f, 1.0f);
    fill(c, c->g0, n, -0.1f, 0.1f);
    /* LSQ on the CPU */
    qc_lsq_forward_ch(steps, ch, 8, 7, c->x, c->yc, n, 1);
    memcpy(c->gc, c->g0, nb);
    qc_lsq_backward_ch(steps, ch, 8, 7, 0.01, c->x, c->dy, c->gc, n, 1, dsc);
    qc_lsq_init_step_ch(c->x, ch, n, 7, 1, initc);
    /* and on the device */
    memcpy(host, steps, sizeof(steps));
    memset(host + C, 0, C * sizeof(float));
    if ((st = up(c, c->dx, c->x, nb)) || (st = up(c, c->ddy, c->dy, nb)) ||
        (st = up(c, c->dgrad, c->g0, nb)) || (st = up(c, c->dst, host, sizeof(host))))
        return st;
    st = qc_backend_run(
        c->be, QC_TK_LSQ_FORWARD,
        &(struct qc_tk_lsq_forward){
            .step = c->dst, .ch = ch, .qn = 8, .qp = 7, .x = c->dx, .y = c->dout, .n = n });
    if (st == QC_OK)
        st = qc_backend_run(c->be, QC_TK_LSQ_BACKWARD,
                            &(struct qc_tk_lsq_backward){ .step = c->dst,
                                                          .ch = ch,
                                                          .qn = 8,
                                                          .qp = 7,
                                                          .g = 0.01,
                                                          .x = c->dx,
                                                          .dy = c->ddy,
                                                          .dx = c->dgrad,
                                                          .n = n,
                                                          .dstep = c->dst + C });
    if (st || (st = down(c, c->yg, c->dout, nb)) || (st = down(c, c->gg, c->dgrad, nb)) ||
        (st = down(c, host, c->dst, sizeof(host))))
        return st;
    memcpy(dsg, host + C, sizeof(dsg));
    st = qc_backend_run(
        c->be, QC_TK_LSQ_INIT_STEP,
        &(struct qc_tk_lsq_init_step){ .x = c->dx, .ch = ch, .n = n, .qp = 7, .step = c->dst });
    if (st || (st = down(c, initg, c->dst, sizeof(initg))))
        return st;
    f->cases++;
    compare(c->yg, c->yc, n, &vdiff, &verr);
    compare(c->gg, c->gc, n, &gdiff, &gerr);
    f->val_diff += vdiff;
    f->grad_diff += gdiff;
    if (vdiff || gdiff)
        fail(c, f, what, "LSQ: %lld values, %lld dx differ", (long long)vdiff, (long long)gdiff);
    for (int k = 0; k < C; k++) {
        double e = rel(dsg[k], dsc[k], 1e-3), ei = rel(initg[k], initc[k], 1e-30);
        if (e > serr)
            serr = e;
        if (!(e <= 1e-4) || !(ei <= 1e-5))
            fail(c, f, what, "LSQ channel %d: ds gpu %.9g cpu %.9g, init gpu %.9g cpu %.9g", k,
                 dsg[k], dsc[k], initg[k], initc[k]);
    }

    /* SAT weights per channel */
    fill(c, c->x, n, -1.5f, 1.5f);
    for (int64_t i = 0; i < n; i++)
        c->x[i] *= (float)(1 + i / inner % C); /* each channel its own range */
    if (qc_sat_weight_run_ch(&cfg, ch, c->x, c->yc, c->kc, n, 1, stc) != QC_OK)
        return QC_ERR_NOMEM;
    memcpy(c->gc, c->g0, nb);
    qc_sat_weight_backward_ch(&cfg, ch, stc, c->x, c->dy, c->gc, n, 1);
    if ((st = up(c, c->dx, c->x, nb)) || (st = up(c, c->dgrad, c->g0, nb)))
        return st;
    st = qc_backend_run(
        c->be, QC_TK_SAT_WEIGHT_FORWARD,
        &(struct qc_tk_sat_weight_forward){
            .cfg = &cfg, .ch = ch, .w = c->dx, .q = c->dout, .k = c->dk, .n = n, .st = dstate });
    if (st == QC_OK)
        st = qc_backend_run(c->be, QC_TK_SAT_WEIGHT_BACKWARD,
                            &(struct qc_tk_sat_weight_backward){ .cfg = &cfg,
                                                                 .ch = ch,
                                                                 .st = dstate,
                                                                 .w = c->dx,
                                                                 .dq = c->ddy,
                                                                 .dw = c->dgrad,
                                                                 .n = n });
    if (st || (st = down(c, c->gg, c->dgrad, nb)) || (st = down(c, stg, dstate, sizeof(stg))) ||
        (st = down(c, c->kg, c->dk, (size_t)n * sizeof(int32_t))))
        return st;
    for (int k = 0; k < C; k++) {
        double e = rel(stg[k].m, stc[k].m, 1e-30);
        if (rel(stg[k].scale, stc[k].scale, 1e-30) > e)
            e = rel(stg[k].scale, stc[k].scale, 1e-30);
        if (e > serr)
            serr = e;
        if (!(e <= 1e-5))
            fail(c, f, what, "SAT channel %d: state rel err %.3g", k, e);
    }
    for (int64_t i = 0; i < n; i++)
        lvl += c->kg[i] != c->kc[i];
    f->lvl_diff += lvl;
    f->lvl_total += n;
    if (lvl > C)
        fail(c, f, what, "SAT: %lld levels differ", (long long)lvl);
    gerr = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double e = rel(c->gg[i], c->gc[i], fabs(c->g0[i]) + 1e-30);
        if (!(e <= gerr))
            gerr = e;
    }
    if (gerr > f->grad_err)
        f->grad_err = gerr;
    if (serr > f->scal_err)
        f->scal_err = serr;
    if (!(gerr <= 1e-4))
        fail(c, f, what, "SAT: dW rel err %.3g", gerr);

    return QC_OK;
}

/* The scalar reduction twice on the same inputs: the same bits. */
static enum qc_status determinism_case(struct ctx *c, struct family *f, int64_t n)
{
    float d1, d2;
    enum qc_status st;
    fill_grid(c, n, -0.5f, 2.0f, 1.0f / 15.0f, 0, 15);
    fill(c, c->dy, n, -1.0f, 1.0f);
    fill(c, c->g0, n, -0.1f, 0.1f);
    if ((st = run_gpu_act(c, false, 1.0f, 15, 0, 0, 0.0, n, &d1)) ||
        (st = run_gpu_act(c, false, 1.0f, 15, 0, 0, 0.0, n, &d2)))
        return st;
    f->cases++;
    if (memcmp(&d1, &d2, sizeof(float)) != 0)
        fail(c, f, "repeated reduction", "dalpha %.9g then %.9g", d1, d2);
    return QC_OK;
}

/* ---- solvers -------------------------------------------------------------------------- */

static enum qc_status solver_case(struct ctx *c, struct family *f, enum qc_solver_type type,
                                  bool decays, int64_t n)
{
    struct qc_solver_cfg cfg;
    struct qc_solver_step sst = { 0, 0, 0 };
    int per = qc_solver_state_per_elem(type);
    size_t nb = (size_t)n * sizeof(float), sb = nb * (size_t)per;
    char what[96];
    int64_t vdiff = 0, sdiff = 0;
    double verr = 0.0, serr = 0.0;
    enum qc_status st;

    qc_solver_cfg_default(&cfg, type);
    cfg.decay = type == QC_SOLVER_ADAM ? 1e-4 : 5e-4;
    cfg.momentum = 0.9;
    if (type == QC_SOLVER_SGD)
        cfg.lr = 0.05;
    snprintf(what, sizeof(what), "%s decays=%d n=%lld", qc_solver_type_name(type), decays,
             (long long)n);
    fill(c, c->yc, n, -1.0f, 1.0f);                 /* θ, CPU copy */
    memset(c->sc, 0, sb);
    if ((st = up(c, c->dout, c->yc, nb)) || (st = qc_backend_zero(c->be, c->dst, sb)))
        return st;
    for (int t = 0; t < 3; t++) {
        struct qc_solver_update u;
        fill(c, c->dy, n, -2.0f, 2.0f);              /* accumulated gradient */
        qc_solver_prepare(&cfg, &sst, 0.5, &u);
        qc_solver_apply(&u, c->yc, c->dy, c->sc, n, decays, 1);
        if ((st = up(c, c->ddy, c->dy, nb)) ||
            (st = qc_backend_run(c->be, QC_TK_SOLVER_APPLY, &(struct qc_tk_solver_apply){
                                     .u = &u, .theta = c->dout, .grad = c->ddy,
                                     .state = c->dst, .n = n, .decays = decays })))
            return st;
        qc_solver_advance(&sst, 64);
    }
    if ((st = down(c, c->yg, c->dout, nb)) || (st = down(c, c->sg, c->dst, sb)))
        return st;
    f->cases++;
    compare(c->yg, c->yc, n, &vdiff, &verr);
    compare(c->sg, c->sc, n * per, &sdiff, &serr);
    f->val_diff += vdiff;
    f->grad_diff += sdiff;
    if (verr > f->val_err)
        f->val_err = verr;
    if (serr > f->grad_err)
        f->grad_err = serr;
    if (vdiff || sdiff)
        fail(c, f, what, "%lld parameters, %lld state values differ", (long long)vdiff,
             (long long)sdiff);
    return QC_OK;
}

/* The α / s guard on the device against qc_sat_alpha_used. */
static enum qc_status clamp_case(struct ctx *c, struct family *f)
{
    float v[6] = { -1.0f, 0.0f, 1e-4f, QC_SAT_ALPHA_MIN, 0.25f, 3.0f }, r[6];
    enum qc_status st;
    if ((st = up(c, c->dout, v, sizeof(v))) ||
        (st = qc_backend_run(c->be, QC_TK_CLAMP_MIN, &(struct qc_tk_clamp_min){
                                 .p = c->dout, .lo = QC_SAT_ALPHA_MIN, .n = 6 })) ||
        (st = down(c, r, c->dout, sizeof(r))))
        return st;
    f->cases++;
    for (int i = 0; i < 6; i++)
        if (r[i] != qc_sat_alpha_used(v[i]))
            fail(c, f, "alpha guard", "clamp %g -> %g", v[i], r[i]);
    return QC_OK;
}

/* ---- driver --------------------------------------------------------------------------- */

static void report(const struct family *f)
{
    printf("%-11s %4d cases: values max rel err %.3g (%lld not bit-identical)", f->name,
           f->cases, f->val_err, (long long)f->val_diff);
    if (f->lvl_total)
        printf(", levels %lld of %lld differ", (long long)f->lvl_diff,
               (long long)f->lvl_total);
    printf(", gradients/state max rel err %.3g (%lld not bit-identical), scalars max rel "
           "err %.3g: %s\n", f->grad_err, (long long)f->grad_diff, f->scal_err,
           f->failed ? "FAIL" : "ok");
}

static enum qc_status run_all(struct ctx *c, struct family *fam)
{
    static const int64_t sizes[] = { 1, 2, 7, 255, 256, 257, 1000, 4099, 65537, NMAX };
    static const int wranges[] = { 1, 2, 15, 255 };
    enum qc_status st;

    for (size_t si = 0; si < QC_ARRAY_SIZE(sizes); si++) {
        int64_t n = sizes[si];
        if (n > NMAX)
            continue;
        for (int mode = 0; mode < QC_SAT_MODE_COUNT; mode++) {
            for (size_t ri = 0; ri < QC_ARRAY_SIZE(wranges); ri++) {
                for (int v = 0; v < 4; v++) {
                    struct qc_sat_wcfg cfg = {
                        .mode = (enum qc_sat_mode)mode, .range = wranges[ri],
                        .apply_quant = (v & 1) != 0, .apply_scaling = (v & 2) != 0,
                        .fanout = 3 * 3 * 16,
                    };
                    if ((st = sat_weight_case(c, &fam[0], &cfg, n, W_RANDOM)))
                        return st;
                    if (n <= 257 && (st = sat_weight_case(c, &fam[0], &cfg, n, W_ZERO)))
                        return st;
                    if (n <= 257 && (st = sat_weight_case(c, &fam[0], &cfg, n, W_CONST)))
                        return st;
                }
            }
        }
        static const float alphas[] = { 1e-5f, 0.37f, 6.0f };
        static const int aranges[] = { 1, 3, 15, 255 };
        for (size_t ai = 0; ai < QC_ARRAY_SIZE(alphas); ai++)
            for (size_t ri = 0; ri < QC_ARRAY_SIZE(aranges); ri++)
                if ((st = sat_act_case(c, &fam[1], alphas[ai], aranges[ri], n)))
                    return st;
        static const float steps[] = { 1e-9f, 0.013f, 0.5f };
        static const int lranges[] = { 1, 2, 15, 255 };
        for (size_t ti = 0; ti < QC_ARRAY_SIZE(steps); ti++)
            for (size_t ri = 0; ri < QC_ARRAY_SIZE(lranges); ri++)
                for (int sg = 0; sg < 2; sg++)
                    if ((st = lsq_case(c, &fam[2], steps[ti], lranges[ri], sg != 0, n)))
                        return st;
        static const int zranges[] = { 1, 15, 255 };
        for (size_t ri = 0; ri < QC_ARRAY_SIZE(zranges); ri++) {
            int r = zranges[ri];
            float zfs[3] = { (float)(r / 3) + 0.4f, -2.0f, (float)r + 0.5f };
            for (int zi = 0; zi < 3; zi++)
                if ((st = lsq_zp_case(c, &fam[6], ri == 1 ? 0.013f : 0.5f, r, zfs[zi], zi != 1, n)))
                    return st;
        }
        for (int ty = 0; ty < 2; ty++)
            for (int d = 0; d < 2; d++)
                if ((st = solver_case(c, &fam[3], ty ? QC_SOLVER_ADAM : QC_SOLVER_SGD, d != 0,
                                      n)))
                    return st;
    }
    if ((st = determinism_case(c, &fam[4], NMAX)) || (st = clamp_case(c, &fam[4])))
        return st;
    /* {outer, inner}: Conv layouts, then interleaved ones (ConvTranspose: outer = C_in;
     * Gemm without transB and MatMul: inner 1) */
    static const int64_t layouts[][2] = { { 1, 1 }, { 1, 9 }, { 1, 256 }, { 1, 257 }, { 1, 4096 },
                                          { 2, 9 }, { 3, 1 }, { 5, 64 },  { 300, 1 }, { 4, 257 } };
    for (size_t i = 0; i < QC_ARRAY_SIZE(layouts); i++)
        if ((st = channels_case(c, &fam[5], layouts[i][0], layouts[i][1])))
            return st;
    return qc_backend_sync(c->be);
}

static enum qc_status dalloc(struct ctx *c, size_t nbytes, void *out)
{
    return qc_backend_alloc(c->be, nbytes, (void **)out);
}

int main(void)
{
    struct family fam[7] = {
        { .name = "sat_weight" }, { .name = "sat_act" }, { .name = "lsq" },
        { .name = "solver" },     { .name = "misc" },    { .name = "channels" },
        { .name = "lsq_zp" },
    };
    struct ctx c;
    size_t nb = (size_t)NMAX * sizeof(float);
    enum qc_status st;
    int rc = 99, failed = 0;

    if (qc_cuda_device_count() <= 0) {
        printf("no CUDA device: skipped\n");
        return 77;
    }
    memset(&c, 0, sizeof(c));
    qc_rng_seed(&c.rng, 20240611);
    if (qc_backend_new_ops(&qc_backend_cuda_ops, 0, 1, &c.be) != QC_OK)
        return 99;

    c.x = qc_malloc(nb);
    c.dy = qc_malloc(nb);
    c.yc = qc_malloc(nb);
    c.yg = qc_malloc(nb);
    c.gc = qc_malloc(nb);
    c.gg = qc_malloc(nb);
    c.g0 = qc_malloc(nb);
    c.sc = qc_malloc(2 * nb);
    c.sg = qc_malloc(2 * nb);
    c.kc = qc_malloc((size_t)NMAX * sizeof(int32_t));
    c.kg = qc_malloc((size_t)NMAX * sizeof(int32_t));
    if (!c.x || !c.dy || !c.yc || !c.yg || !c.gc || !c.gg || !c.g0 || !c.sc || !c.sg ||
        !c.kc || !c.kg) {
        qc_log_error("cuda_parity: out of host memory");
        goto out;
    }
    if (dalloc(&c, nb, &c.dx) || dalloc(&c, nb, &c.ddy) || dalloc(&c, nb, &c.dout) ||
        dalloc(&c, nb, &c.dgrad) || dalloc(&c, 2 * nb, &c.dst) ||
        dalloc(&c, (size_t)NMAX * sizeof(int32_t), &c.dk) ||
        dalloc(&c, 16 * sizeof(float), &c.dscal))
        goto out;

    st = run_all(&c, fam);
    if (st != QC_OK) {
        qc_log_error("cuda_parity: a CUDA call failed (status %d)", (int)st);
        goto out;
    }
    for (size_t i = 0; i < QC_ARRAY_SIZE(fam); i++) {
        report(&fam[i]);
        failed += fam[i].failed;
    }
    if (!getenv("QC_PARITY_KERNELS_ONLY"))
        failed += qc_parity_models(c.be, 1);
    printf("cuda_parity: %s\n", failed ? "FAIL" : "PASS");
    rc = failed ? 1 : 0;

out:
    if (c.be) {
        void *dev[] = { c.dx, c.ddy, c.dout, c.dgrad, c.dst, c.dk, c.dscal };
        for (size_t i = 0; i < QC_ARRAY_SIZE(dev); i++)
            if (dev[i])
                qc_backend_release(c.be, dev[i]);
        qc_backend_free(c.be);
    }
    qc_free(c.x);
    qc_free(c.dy);
    qc_free(c.yc);
    qc_free(c.yg);
    qc_free(c.gc);
    qc_free(c.gg);
    qc_free(c.g0);
    qc_free(c.sc);
    qc_free(c.sg);
    qc_free(c.kc);
    qc_free(c.kg);
    return rc;
}
