/*
 * plan.c - a finalized graph prepared for one batch size (see plan.h).
 *
 * Storage: one struct qc_tensor per graph value (initializers are views of
 * the graph's data; everything else gets a backend buffer at plan time),
 * plus private tensors for outputs a node writes under an empty name.
 * Shape subgraphs are evaluated here, on the host, as soon as their inputs
 * are known, so infer hooks downstream see their values as constants.
 *
 * Memory: building infers every node first and allocates nothing large
 * (folds with big outputs wait, PLAN_NODE_DEFERRED); then the plan's total
 * (inputs, activations, folded constants, device copies, the workspace and,
 * for training, state, gradients, saved tensors and quantizer buffers) is
 * checked against the backend's budget (qc_backend_mem_limit: --max-memory
 * or the memory available), and only then is anything allocated.  A plan
 * over budget fails with one line naming its total and largest buffers.
 */
#include <config.h>

#include "plan.h"
#include "plan_impl.h"

/* One tensor of a plan (an activation at the planned batch size, a folded
 * constant) may take at most this much memory. */
#define QC_PLAN_MAX_TENSOR_BYTES ((size_t)4 << 30)

/* Folds are evaluated during inference (their values may be shapes that
 * later nodes need) when their outputs take at most QC_PLAN_TINY_FOLD_BYTES,
 * or at most QC_PLAN_EAGER_FOLD_BYTES while all such folds together stay
 * within QC_PLAN_EAGER_FOLD_TOTAL; larger ones wait for the memory check, so
 * a model cannot make the planner itself fill the memory. */
#define QC_PLAN_TINY_FOLD_BYTES  ((uint64_t)1 << 10)
#define QC_PLAN_EAGER_FOLD_BYTES ((uint64_t)1 << 20)
#define QC_PLAN_EAGER_FOLD_TOTAL ((uint64_t)256 << 20)

#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "ops/op.h"

static bool value_is_param(const struct qc_value *v)
{
    return v->init && v->init->dtype == QC_DTYPE_F32;
}

/* The folding rule: node n is evaluated once at plan time (on the CPU) when
 * its op always folds, or when it has inputs, all constants (is_const[v]),
 * none of them a float initializer (a parameter). */
static bool node_folds(const struct qc_graph *g, const struct qc_node *n, const bool *is_const)
{
    const struct qc_op_def *d = qc_op_get((enum qc_op_kind)n->kind);
    bool all_const = n->n_in > 0, has_param = false;
    if (d->fold == QC_FOLD_ALWAYS)
        return true;
    for (int j = 0; j < n->n_in; j++) {
        if (n->in[j] < 0)
            continue;
        all_const = all_const && is_const[n->in[j]];
        has_param = has_param || value_is_param(&g->values[n->in[j]]);
    }
    return d->fold == QC_FOLD_CONST_INPUTS && all_const && !has_param;
}

/* Builds "<model>: <Op> '<label>'" for messages. */
const char *qc_plan_node_where(const struct qc_graph *g, const struct qc_node *n, char *buf,
                               size_t len)
{
    snprintf(buf, len, "%s: %s '%s'", g->path, n->op_type, qc_node_label(g, n));
    return buf;
}

/* Dim 0 of a runtime input is the batch axis when it is symbolic. */
static bool batch_axis_symbolic(const struct qc_value *v)
{
    return v->dim_param[0] != NULL || v->shape.dims[0] <= 0;
}

/* Picks the batch size: the requested one when some runtime input has a
 * symbolic dim 0 (*symbolic), else the fixed dim 0 of the first runtime
 * input. */
static enum qc_status choose_batch(const struct qc_graph *g, int64_t want, int64_t *batch,
                                   bool *symbolic_out)
{
    int64_t fixed = -1;
    bool symbolic = false;
    for (int i = 0; i < g->n_inputs; i++) {
        const struct qc_value *v = &g->values[g->inputs[i]];
        if (v->init)
            continue;
        if (!v->has_shape) {
            qc_log_error("%s: graph input '%s' has no declared shape", g->path, v->name);
            return QC_ERR_UNSUPPORTED;
        }
        if (v->shape.ndim < 1)
            continue;
        if (batch_axis_symbolic(v))
            symbolic = true;
        else if (fixed < 0)
            fixed = v->shape.dims[0];
    }
    *batch = symbolic || fixed < 0 ? want : fixed;
    *symbolic_out = symbolic || fixed < 0;
    return QC_OK;
}

static enum qc_status alloc_value(struct qc_plan *p, int v, bool host)
{
    struct qc_tensor *t = &p->vals[v];
    size_t nbytes = qc_tensor_nbytes(t);
    enum qc_status st;
    if (host) {
        t->data = qc_calloc(1, nbytes ? nbytes : 1);
        if (!t->data)
            return QC_ERR_NOMEM;
        p->on_host[v] = true;
        p->owned[v] = true;
        return QC_OK;
    }
    st = qc_backend_alloc(p->be, nbytes, &t->data);
    p->owned[v] = st == QC_OK;
    return st;
}

static enum qc_status setup_inputs(struct qc_plan *p)
{
    const struct qc_graph *g = p->g;
    p->inputs = qc_calloc((size_t)g->n_inputs + 1, sizeof(int));
    if (!p->inputs)
        return QC_ERR_NOMEM;
    for (int i = 0; i < g->n_inputs; i++) {
        int vi = g->inputs[i];
        const struct qc_value *v = &g->values[vi];
        struct qc_tensor *t = &p->vals[vi];
        if (v->init)
            continue;
        if (!qc_dtype_supported(v->dtype)) {
            qc_log_error("%s: graph input '%s' has unsupported type %s", g->path, v->name,
                         qc_dtype_name(v->dtype));
            return QC_ERR_UNSUPPORTED;
        }
        t->dtype = v->dtype;
        t->shape = v->shape;
        if (t->shape.ndim > 0 && batch_axis_symbolic(v))
            t->shape.dims[0] = p->batch;
        for (int d = 1; d < t->shape.ndim; d++) {
            if (t->shape.dims[d] <= 0) {
                qc_log_error("%s: graph input '%s': dimension %d is not fixed ('%s'); "
                             "qatconv needs concrete sizes except the batch axis", g->path,
                             v->name, d, v->dim_param[d] ? v->dim_param[d] : "?");
                return QC_ERR_UNSUPPORTED;
            }
        }
        p->inputs[p->n_inputs++] = vi;   /* allocated by alloc_plan */
    }
    return QC_OK;
}

static bool is_anon(const struct qc_plan *p, const struct qc_tensor *t)
{
    return t >= p->anon && t < p->anon + p->n_anon;
}

/* Whether fold node n (outputs of `bytes`) is evaluated now: see
 * QC_PLAN_EAGER_FOLD_BYTES.  A fold that reads a deferred value waits too,
 * except Shape and Constant, which read no input data. */
static bool fold_now(const struct qc_plan *p, const struct qc_node *n, uint64_t bytes)
{
    if (qc_op_get((enum qc_op_kind)n->kind)->fold != QC_FOLD_ALWAYS) {
        for (int j = 0; j < n->n_in; j++) {
            int prod = n->in[j] >= 0 ? p->g->values[n->in[j]].producer : -1;
            if (prod >= 0 && p->node_state[prod] == PLAN_NODE_DEFERRED)
                return false;
        }
    }
    if (bytes <= QC_PLAN_TINY_FOLD_BYTES)
        return true;
    return bytes <= QC_PLAN_EAGER_FOLD_BYTES &&
           p->eager_fold_bytes + bytes <= QC_PLAN_EAGER_FOLD_TOTAL;
}

/* Evaluates fold node ni on the CPU into new host buffers. */
static enum qc_status fold_node(struct qc_plan *p, int ni, struct qc_tensor **in,
                                struct qc_tensor **out)
{
    const struct qc_graph *g = p->g;
    const struct qc_node *n = &g->nodes[ni];
    char where[512];
    struct qc_op_ctx ctx = {
        .be = NULL, .workspace = NULL, .workspace_size = 0, .threads = 1,
        .opset = g->opset, .training = false, .label = where,
    };
    qc_plan_node_where(g, n, where, sizeof(where));
    for (int j = 0; j < n->n_out; j++) {
        struct qc_tensor *t = out[j];
        size_t nbytes = qc_tensor_nbytes(t);
        if (is_anon(p, t)) {
            t->data = qc_calloc(1, nbytes ? nbytes : 1);
            if (!t->data)
                return QC_ERR_NOMEM;
            t->owns = true;
        } else {
            enum qc_status st = alloc_value(p, n->out[j], true);
            if (st != QC_OK)
                return st;
        }
    }
    return qc_op_get((enum qc_op_kind)n->kind)->cpu.forward(n, &ctx,
                                                            (const struct qc_tensor *const *)in,
                                                            out);
}

/* Infers one node's outputs and schedules it as a step, or folds it: at
 * once, or deferred (see QC_PLAN_EAGER_FOLD_BYTES).  Allocates only the
 * outputs of folds evaluated at once. */
static enum qc_status plan_node(struct qc_plan *p, int ni, struct qc_tensor **ptrs,
                                struct qc_tensor *anon, int *n_anon)
{
    const struct qc_graph *g = p->g;
    const struct qc_node *n = &g->nodes[ni];
    const struct qc_op_def *d = qc_op_get((enum qc_op_kind)n->kind);
    struct qc_tensor infer_in[64];
    const struct qc_tensor *in_views[64];
    struct qc_tensor **in = ptrs;
    struct qc_tensor **out = ptrs + n->n_in;
    bool fold;
    uint64_t out_bytes = 0;
    char where[512];
    enum qc_status st;

    qc_plan_node_where(g, n, where, sizeof(where));
    if (n->n_in > (int)QC_ARRAY_SIZE(infer_in)) {
        qc_log_error("%s: %d inputs, at most %d supported", where, n->n_in,
                     (int)QC_ARRAY_SIZE(infer_in));
        return QC_ERR_UNSUPPORTED;
    }
    for (int j = 0; j < n->n_in; j++) {
        int v = n->in[j];
        in[j] = v >= 0 ? &p->vals[v] : NULL;
        in_views[j] = NULL;
        if (v < 0)
            continue;
        /* infer sees data only for constants */
        infer_in[j] = p->vals[v];
        if (!p->is_const[v])
            infer_in[j].data = NULL;
        in_views[j] = &infer_in[j];
    }
    for (int j = 0; j < n->n_out; j++) {
        int v = n->out[j];
        if (v >= 0 && g->values[v].name[0]) {
            out[j] = &p->vals[v];
        } else {
            out[j] = &anon[(*n_anon)++];
        }
        memset(out[j], 0, sizeof(*out[j]));
    }
    st = d->infer(n, where, in_views, out);
    if (st != QC_OK)
        return st;
    fold = node_folds(g, n, p->is_const);
    for (int j = 0; j < n->n_out; j++) {
        struct qc_tensor *t = out[j];
        size_t nbytes;
        /* a garbled model can infer negative dims or an element count past int64 */
        int64_t ne = 1;
        for (int k = 0; k < t->shape.ndim; k++) {
            int64_t dk = t->shape.dims[k];
            if (dk < 0 || (dk > 0 && ne > ((int64_t)1 << 40) / dk)) {
                qc_log_error("%s: output %d has an invalid or too large shape", where, j);
                return QC_ERR_SHAPE;
            }
            ne = dk ? ne * dk : ne;
        }
        nbytes = qc_tensor_nbytes(t);
        if (nbytes > QC_PLAN_MAX_TENSOR_BYTES) {
            /* far beyond any CNN activation (ResNet-18 at 224x224, batch 128: 0.4 GB);
             * a model declaring such a tensor is garbled or not for this tool, and
             * allocating it would only end in swapping or the OOM killer */
            char sb[128];
            qc_log_error("%s: output %d %s needs %.1f GiB, more than the %d GiB one tensor may "
                         "take", where, j, qc_shape_str(&t->shape, sb, sizeof(sb)),
                         (double)nbytes / (1u << 30), (int)(QC_PLAN_MAX_TENSOR_BYTES >> 30));
            return QC_ERR_SHAPE;
        }
        if (!qc_dtype_supported(t->dtype)) {
            qc_log_error("%s: output %d has unsupported type %s", where, j,
                         qc_dtype_name(t->dtype));
            return QC_ERR_UNSUPPORTED;
        }
        out_bytes += nbytes;
        if (!is_anon(p, t))
            p->is_const[n->out[j]] = fold;
    }
    if (fold) {
        if (!fold_now(p, n, out_bytes)) {
            p->node_state[ni] = PLAN_NODE_DEFERRED;
            return QC_OK;
        }
        p->node_state[ni] = PLAN_NODE_FOLDED;
        p->eager_fold_bytes += out_bytes;
        return fold_node(p, ni, in, out);
    }
    {
        struct plan_step *s = &p->steps[p->n_steps++];
        p->node_state[ni] = PLAN_NODE_STEP;
        s->node = ni;
        s->in = in;
        s->out = out;
        s->k = qc_backend_kernel(p->be, (enum qc_op_kind)n->kind);
        if (p->training && d->saved)
            s->saved_size = d->saved(n, (const struct qc_tensor *const *)in,
                                     (const struct qc_tensor *const *)out);
        if (s->k && (s->k->workspace || d->workspace)) {
            qc_workspace_fn wf = s->k->workspace ? s->k->workspace : d->workspace;
            size_t ws = wf(n, (const struct qc_tensor *const *)in,
                           (const struct qc_tensor *const *)out, qc_backend_threads(p->be));
            if (ws > p->ws_size)
                p->ws_size = ws;
        }
    }
    return QC_OK;
}

/* Gives a step's outputs their backend buffers (host memory for unnamed
 * outputs on a host backend). */
static enum qc_status alloc_step_outputs(struct qc_plan *p, const struct qc_node *n,
                                         struct qc_tensor **out)
{
    for (int j = 0; j < n->n_out; j++) {
        struct qc_tensor *t = out[j];
        size_t nbytes = qc_tensor_nbytes(t);
        enum qc_status st;
        if (!is_anon(p, t)) {
            st = alloc_value(p, n->out[j], false);
        } else if (qc_backend_host_memory(p->be)) {
            t->data = qc_calloc(1, nbytes ? nbytes : 1);
            st = t->data ? QC_OK : QC_ERR_NOMEM;
            t->owns = t->data != NULL;
        } else {
            st = qc_backend_alloc(p->be, nbytes, &t->data);
            p->anon_dev[t - p->anon] = st == QC_OK;
        }
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

/* After the memory check: the runtime inputs, every step's outputs and the
 * deferred folds (evaluated in graph order, so their inputs are ready). */
static enum qc_status alloc_plan(struct qc_plan *p)
{
    const struct qc_graph *g = p->g;
    struct qc_tensor **ptrs = p->ptrs;
    enum qc_status st = QC_OK;
    for (int i = 0; i < p->n_inputs && st == QC_OK; i++)
        st = alloc_value(p, p->inputs[i], false);
    for (int i = 0; i < g->n_nodes && st == QC_OK; i++) {
        const struct qc_node *n = &g->nodes[i];
        struct qc_tensor **in = ptrs, **out = ptrs + n->n_in;
        ptrs += n->n_in + n->n_out;
        if (p->node_state[i] == PLAN_NODE_STEP)
            st = alloc_step_outputs(p, n, out);
        else if (p->node_state[i] == PLAN_NODE_DEFERRED)
            st = fold_node(p, i, in, out);
    }
    return st;
}

/* Whether step input v is a float constant that a device backend reads from
 * a device copy (upload_constants): a folded value or an initializer the
 * plan did not move into its training state. */
static bool const_needs_copy(const struct qc_plan *p, int v)
{
    const struct qc_value *val = &p->g->values[v];
    if (!p->is_const[v] || p->vals[v].dtype != QC_DTYPE_F32)
        return false;
    return p->on_host[v] || val->producer >= 0 ||
           (val->init && p->vals[v].data == val->init->data);
}

void qc_plan_mem_add(struct plan_mem *m, uint64_t bytes, const char *name, const char *suffix)
{
    int k = PLAN_MEM_TOP;
    m->total = m->total + bytes < m->total ? UINT64_MAX : m->total + bytes;
    while (k > 0 && bytes > m->top[k - 1].bytes)
        k--;
    if (k == PLAN_MEM_TOP)
        return;
    memmove(&m->top[k + 1], &m->top[k], (size_t)(PLAN_MEM_TOP - 1 - k) * sizeof(m->top[0]));
    m->top[k].bytes = bytes;
    if (name)
        snprintf(m->top[k].what, sizeof(m->top[k].what), "'%.60s'%s", name, suffix);
    else
        snprintf(m->top[k].what, sizeof(m->top[k].what), "%s", suffix);
}

/* What an inference plan holds: inputs, every node output (folded ones
 * too), device copies of constants and the workspace. */
static enum qc_status count_plan_mem(const struct qc_plan *p, struct plan_mem *m)
{
    const struct qc_graph *g = p->g;
    struct qc_tensor **ptrs = p->ptrs;
    for (int i = 0; i < p->n_inputs; i++)
        qc_plan_mem_add(m, qc_tensor_nbytes(&p->vals[p->inputs[i]]),
                        g->values[p->inputs[i]].name, "");
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        struct qc_tensor **out = ptrs + n->n_in;
        ptrs += n->n_in + n->n_out;
        for (int j = 0; j < n->n_out; j++) {
            if (is_anon(p, out[j]))
                qc_plan_mem_add(m, qc_tensor_nbytes(out[j]), qc_node_label(g, n), " output");
            else
                qc_plan_mem_add(m, qc_tensor_nbytes(out[j]), g->values[n->out[j]].name, "");
        }
    }
    if (!qc_backend_host_memory(p->be)) {
        bool *seen = qc_calloc((size_t)p->n_values + 1, sizeof(bool));
        if (!seen)
            return QC_ERR_NOMEM;
        for (int i = 0; i < p->n_steps; i++) {
            const struct qc_node *n = &g->nodes[p->steps[i].node];
            for (int j = 0; j < n->n_in; j++) {
                int v = n->in[j];
                if (v < 0 || seen[v] || !const_needs_copy(p, v))
                    continue;
                seen[v] = true;
                qc_plan_mem_add(m, qc_tensor_nbytes(&p->vals[v]), g->values[v].name,
                                " (device copy)");
            }
        }
        qc_free(seen);
    }
    qc_plan_mem_add(m, p->fused_bytes, NULL, "folded BatchNormalization weights");
    qc_plan_mem_add(m, p->ws_size, NULL, "workspace");
    return QC_OK;
}

/* Three significant digits: "612 KiB", "13.2 GiB", "1.07 GiB". */
static const char *bytes_str(uint64_t b, char *buf, size_t len)
{
    static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    double v = (double)b / 1024.0;
    int u = 0;
    if (b < 1024) {
        snprintf(buf, len, "%llu bytes", (unsigned long long)b);
        return buf;
    }
    while (v >= 1024.0 && u < (int)QC_ARRAY_SIZE(unit) - 1) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, len, "%.*f %s", v >= 100.0 ? 0 : v >= 10.0 ? 1 : 2, v, unit[u]);
    return buf;
}

/* The plan's total against the backend's budget, before anything large is
 * allocated; over it, one line: the total, the budget and its source, the
 * largest buffers, and what to change. */
static enum qc_status check_memory(const struct qc_plan *p, bool batch_free)
{
    struct plan_mem m;
    const char *why = "";
    uint64_t limit = qc_backend_mem_limit(p->be, &why);
    char total[32], lim[32], largest[3 * (96 + 40)];
    size_t pos = 0;
    enum qc_status st;

    if (!limit)
        return QC_OK;
    memset(&m, 0, sizeof(m));
    st = count_plan_mem(p, &m);
    if (st != QC_OK)
        return st;
    if (p->training)
        qc_plan_mem_train(p, &m);
    if (m.total <= limit)
        return QC_OK;
    largest[0] = '\0';
    for (int k = 0; k < PLAN_MEM_TOP && m.top[k].bytes; k++) {
        char b[32];
        int w = snprintf(largest + pos, sizeof(largest) - pos, "%s%s %s", k ? ", " : "",
                         m.top[k].what, bytes_str(m.top[k].bytes, b, sizeof(b)));
        if (w > 0)
            pos = QC_MIN(pos + (size_t)w, sizeof(largest) - 1);
    }
    qc_log_error("%s: the %splan needs %s at batch %lld (limit %s: %s); largest: %s; %s",
                 p->g->path, p->training ? "training " : "", bytes_str(m.total, total,
                 sizeof(total)), (long long)p->batch, bytes_str(limit, lim, sizeof(lim)), why,
                 largest, batch_free && p->batch > 1 ? "lower --batch or raise --max-memory"
                                                     : "raise --max-memory");
    return QC_ERR_SHAPE;
}

/* Device backends: the float constants a step reads (initializers of an
 * inference plan, folded values) get one device copy each, and the steps read
 * that; integer constants (shapes, axes, pads) stay on the host, where the
 * kernels read them. */
static enum qc_status upload_constants(struct qc_plan *p)
{
    const struct qc_graph *g = p->g;
    if (qc_backend_host_memory(p->be))
        return QC_OK;
    p->dconst = qc_calloc((size_t)p->n_values + 1, sizeof(*p->dconst));
    if (!p->dconst)
        return QC_ERR_NOMEM;
    for (int i = 0; i < p->n_steps; i++) {
        struct plan_step *s = &p->steps[i];
        const struct qc_node *n = &g->nodes[s->node];
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            struct qc_tensor *d;
            const struct qc_tensor *h;
            enum qc_status st;
            /* not a parameter in the training state: that is on the device already */
            if (v < 0 || !const_needs_copy(p, v))
                continue;
            h = &p->vals[v];
            d = &p->dconst[v];
            if (!d->data) {
                *d = *h;
                d->owns = false;
                d->data = NULL;
                st = qc_backend_alloc(p->be, qc_tensor_nbytes(h), &d->data);
                if (st == QC_OK)
                    st = qc_backend_upload(p->be, d->data, h->data, qc_tensor_nbytes(h));
                if (st != QC_OK)
                    return st;
            }
            s->in[j] = d;
        }
    }
    return QC_OK;
}

bool qc_plan_backend_can_run(const struct qc_graph *g, const struct qc_backend *be)
{
    /* plan_node's folding, on constness alone: folded nodes run on the CPU */
    bool *cst = qc_calloc((size_t)g->n_values + 1, sizeof(bool));
    bool ok = true;
    if (!cst)
        return false;
    for (int v = 0; v < g->n_values; v++)
        cst[v] = g->values[v].init != NULL;
    for (int i = 0; i < g->n_nodes && ok; i++) {
        const struct qc_node *n = &g->nodes[i];
        if (node_folds(g, n, cst)) {
            for (int j = 0; j < n->n_out; j++)
                if (n->out[j] >= 0)
                    cst[n->out[j]] = true;
            continue;
        }
        ok = qc_backend_kernel(be, (enum qc_op_kind)n->kind) != NULL;
    }
    qc_free(cst);
    return ok;
}

/* All nodes the backend cannot run, in one message. */
static enum qc_status check_kernels(const struct qc_plan *p)
{
    char msg[2048];
    size_t pos = 0;
    int bad = 0;
    msg[0] = '\0';
    for (int i = 0; i < p->n_steps; i++) {
        const struct qc_node *n = &p->g->nodes[p->steps[i].node];
        if (p->steps[i].k)
            continue;
        if (pos < sizeof(msg)) {
            int w = snprintf(msg + pos, sizeof(msg) - pos, "%s'%s' (%s)", bad ? ", " : "",
                             qc_node_label(p->g, n), n->op_type);
            if (w > 0)
                pos += (size_t)w;
        }
        bad++;
    }
    if (bad) {
        qc_log_error("%s: the %s backend cannot run %d node%s: %s", p->g->path,
                     qc_backend_name(p->be), bad, bad > 1 ? "s" : "", msg);
        return QC_ERR_UNSUPPORTED;
    }
    return QC_OK;
}

static enum qc_status plan_build(const struct qc_graph *g, struct qc_backend *be, int64_t batch,
                                 bool training, const struct qc_quant_spec *specs, int n_specs,
                                 bool fuse, struct qc_plan **out);

enum qc_status qc_plan_new(const struct qc_graph *g, struct qc_backend *be, int64_t batch,
                           struct qc_plan **out)
{
    return plan_build(g, be, batch, false, NULL, 0, false, out);
}

enum qc_status qc_plan_new_inference(const struct qc_graph *g, struct qc_backend *be, int64_t batch,
                                     struct qc_plan **out)
{
    return plan_build(g, be, batch, false, NULL, 0, true, out);
}

enum qc_status qc_plan_build(const struct qc_graph *g, struct qc_backend *be, int64_t batch,
                             bool training, const struct qc_quant_spec *specs, int n_specs,
                             struct qc_plan **out)
{
    return plan_build(g, be, batch, training, specs, n_specs, false, out);
}

/* fuse: an inference plan whose Conv steps absorb what follows them
 * (plan_fuse.c). */
static enum qc_status plan_build(const struct qc_graph *g, struct qc_backend *be, int64_t batch,
                                 bool training, const struct qc_quant_spec *specs, int n_specs,
                                 bool fuse, struct qc_plan **out)
{
    struct qc_plan *p;
    enum qc_status st = QC_ERR_NOMEM;
    size_t n_ptrs = 0, n_slots = 0;
    bool batch_free = true;

    *out = NULL;
    if (batch < 1) {
        qc_log_error("batch size %lld must be at least 1", (long long)batch);
        return QC_ERR_INVAL;
    }
    p = qc_calloc(1, sizeof(*p));
    if (!p)
        return QC_ERR_NOMEM;
    p->g = g;
    p->be = be;
    p->training = training;
    p->logits = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        n_ptrs += (size_t)(g->nodes[i].n_in + g->nodes[i].n_out);
        n_slots += (size_t)g->nodes[i].n_out;
    }
    p->n_values = g->n_values;
    p->vals = qc_calloc((size_t)g->n_values + 1, sizeof(*p->vals));
    p->owned = qc_calloc((size_t)g->n_values + 1, sizeof(bool));
    p->is_const = qc_calloc((size_t)g->n_values + 1, sizeof(bool));
    p->on_host = qc_calloc((size_t)g->n_values + 1, sizeof(bool));
    p->anon = qc_calloc(n_slots + 1, sizeof(*p->anon));
    p->anon_dev = qc_calloc(n_slots + 1, sizeof(bool));
    p->ptrs = qc_calloc(n_ptrs + 1, sizeof(*p->ptrs));
    p->steps = qc_calloc((size_t)g->n_nodes + 1, sizeof(*p->steps));
    p->node_state = qc_calloc((size_t)g->n_nodes + 1, 1);
    if (!p->vals || !p->owned || !p->is_const || !p->on_host || !p->anon || !p->anon_dev ||
        !p->ptrs || !p->steps || !p->node_state)
        goto out;

    st = choose_batch(g, batch, &p->batch, &batch_free);
    if (st != QC_OK)
        goto out;
    for (int v = 0; v < g->n_values; v++) {
        const struct qc_value *val = &g->values[v];
        if (!val->init)
            continue;
        p->vals[v] = *val->init;
        p->vals[v].owns = false;
        p->is_const[v] = true;
    }
    if (training) {
        if (n_specs > 0) {
            p->quants = qc_calloc((size_t)n_specs, sizeof(*p->quants));
            if (!p->quants) {
                st = QC_ERR_NOMEM;
                goto out;
            }
            for (int i = 0; i < n_specs; i++)
                p->quants[i].spec = specs[i];
            p->n_quants = n_specs;
        }
        st = qc_plan_bind_params(p);
        if (st != QC_OK)
            goto out;
    }
    st = setup_inputs(p);
    if (st != QC_OK)
        goto out;
    {
        struct qc_tensor **ptrs = p->ptrs;
        for (int i = 0; i < g->n_nodes; i++) {
            st = plan_node(p, i, ptrs, p->anon, &p->n_anon);
            if (st != QC_OK)
                goto out;
            ptrs += g->nodes[i].n_in + g->nodes[i].n_out;
        }
    }
    st = check_kernels(p);
    if (st == QC_OK && fuse && !training)
        st = qc_plan_fuse(p);
    if (st == QC_OK && training)
        st = qc_plan_prepare_backward(p);
    if (st == QC_OK)
        st = check_memory(p, batch_free);
    if (st == QC_OK)
        st = alloc_plan(p);
    if (st == QC_OK)
        st = upload_constants(p);
    if (st != QC_OK)
        goto out;
    if (p->ws_size) {
        st = qc_backend_alloc(be, p->ws_size, &p->workspace);
        if (st != QC_OK)
            goto out;
    }
    if (training) {
        st = qc_plan_setup_backward(p);
        if (st != QC_OK)
            goto out;
    }
    *out = p;
    return QC_OK;
out:
    qc_plan_free(p);
    return st;
}

void qc_plan_free(struct qc_plan *p)
{
    if (!p)
        return;
    qc_plan_free_train(p);
    for (int i = 0; p->steps && i < p->n_steps; i++)
        qc_plan_fused_free(&p->steps[i]);
    if (p->vals) {
        for (int v = 0; v < p->n_values; v++) {
            if (!p->owned[v] || !p->vals[v].data)
                continue;
            if (p->on_host[v])
                qc_free(p->vals[v].data);
            else
                qc_backend_release(p->be, p->vals[v].data);
        }
    }
    if (p->anon)
        for (int i = 0; i < p->n_anon; i++) {
            if (p->anon_dev && p->anon_dev[i])
                qc_backend_release(p->be, p->anon[i].data);
            else
                qc_free(p->anon[i].data);
        }
    if (p->dconst)
        for (int v = 0; v < p->n_values; v++)
            if (p->dconst[v].data)
                qc_backend_release(p->be, p->dconst[v].data);
    qc_free(p->dconst);
    qc_free(p->anon_dev);
    if (p->workspace)
        qc_backend_release(p->be, p->workspace);
    qc_free(p->vals);
    qc_free(p->owned);
    qc_free(p->is_const);
    qc_free(p->on_host);
    qc_free(p->anon);
    qc_free(p->ptrs);
    qc_free(p->steps);
    qc_free(p->node_state);
    qc_free(p->inputs);
    qc_free(p->step_secs);
    qc_free(p);
}

int64_t qc_plan_batch(const struct qc_plan *p)
{
    return p->batch;
}

int qc_plan_n_inputs(const struct qc_plan *p)
{
    return p->n_inputs;
}

struct qc_tensor *qc_plan_input(struct qc_plan *p, int i)
{
    return &p->vals[p->inputs[i]];
}

int qc_plan_n_outputs(const struct qc_plan *p)
{
    return p->g->n_outputs;
}

struct qc_tensor *qc_plan_output(struct qc_plan *p, int i)
{
    return &p->vals[p->g->outputs[i]];
}

struct qc_tensor *qc_plan_value(struct qc_plan *p, int v)
{
    if (v < 0 || v >= p->n_values || !p->vals[v].data)
        return NULL;
    return &p->vals[v];
}

bool qc_plan_value_is_const(const struct qc_plan *p, int v)
{
    return v >= 0 && v < p->n_values && p->is_const[v];
}

enum qc_status qc_plan_profile(struct qc_plan *p)
{
    if (p->step_secs)
        return QC_OK;
    p->step_secs = qc_calloc((size_t)p->n_steps + 1, sizeof(double));
    return p->step_secs ? QC_OK : QC_ERR_NOMEM;
}

/* Sums step times by op type, largest first. */
void qc_plan_profile_print(const struct qc_plan *p, FILE *f)
{
    double by_op[QC_OP_COUNT] = { 0 }, total = 0.0;
    int count[QC_OP_COUNT] = { 0 };
    if (!p->step_secs || p->n_runs == 0)
        return;
    for (int i = 0; i < p->n_steps; i++) {
        int k = p->g->nodes[p->steps[i].node].kind;
        by_op[k] += p->step_secs[i];
        count[k]++;
        total += p->step_secs[i];
    }
    fprintf(f, "profile: %lld forward passes, %.3f ms each\n", (long long)p->n_runs,
            1e3 * total / (double)p->n_runs);
    for (;;) {
        int best = -1;
        for (int k = 0; k < QC_OP_COUNT; k++)
            if (count[k] && (best < 0 || by_op[k] > by_op[best]))
                best = k;
        if (best < 0)
            break;
        fprintf(f, "profile: %-20s %3d nodes %8.3f ms/pass %5.1f%%\n",
                qc_op_name((enum qc_op_kind)best), count[best],
                1e3 * by_op[best] / (double)p->n_runs,
                total > 0 ? 100.0 * by_op[best] / total : 0.0);
        count[best] = 0;
    }
}

enum qc_status qc_plan_forward(struct qc_plan *p)
{
    return qc_plan_forward_mode(p, false, NULL);
}

enum qc_status qc_plan_forward_mode(struct qc_plan *p, bool training, struct qc_rng *rng)
{
    if (training && !p->training) {
        qc_log_error("%s: training forward on a plan built for inference", p->g->path);
        return QC_ERR_INTERNAL;
    }
    if (p->step_secs)
        p->n_runs++;
    if (p->n_quants) {
        enum qc_status qst = qc_plan_quant_weights_forward(p);
        if (qst != QC_OK)
            return qst;
    }
    for (int i = 0; i < p->n_steps; i++) {
        const struct plan_step *s = &p->steps[i];
        const struct qc_node *n = &p->g->nodes[s->node];
        char where[512];
        struct qc_op_ctx ctx = {
            .be = p->be, .workspace = p->workspace, .workspace_size = p->ws_size,
            .saved = s->saved, .saved_size = s->saved_size, .rng = rng,
            .threads = qc_backend_threads(p->be), .opset = p->g->opset, .training = training,
            .label = NULL,
        };
        enum qc_status st;
        double t0 = p->step_secs ? qc_now() : 0.0;
        ctx.sync = p->sync; /* a data-parallel job's sums (plan.h) */
        ctx.label = qc_plan_node_where(p->g, n, where, sizeof(where));
        if (s->fused)
            st = qc_plan_fused_forward(p, s, &ctx);
        else
            st = s->k->forward(n, &ctx, (const struct qc_tensor *const *)s->in, s->out);
        if (st != QC_OK)
            return st;
        if (p->n_quants) {
            st = qc_plan_quant_acts_forward(p, i, training);
            if (st != QC_OK)
                return st;
        }
        if (p->step_secs) {
            st = qc_backend_sync(p->be);
            if (st != QC_OK)
                return st;
            p->step_secs[i] += qc_now() - t0;
        }
    }
    return QC_OK;
}
