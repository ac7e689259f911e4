/*
 * plan_train.c - what a training plan adds to an inference plan: the flat
 * state array of parameters and buffers, gradient storage, saved tensors,
 * and the backward walk (see plan.h, "training").
 *
 * Which initializers are parameters is decided per consuming op and input
 * slot (param_role) by the op roles (qc_op_input_role, ops/op.h): weights
 * and biases of Conv, ConvTranspose, Gemm and MatMul, BatchNorm scale and
 * bias; BatchNorm running mean and variance are buffers (kept in the state
 * array, updated by the training forward, never given a gradient); an Add
 * whose other input comes from a weighted layer holds a bias.  Every other
 * float initializer stays a constant.
 *
 * Gradient flow: a value needs a gradient when it is a trainable parameter
 * or the output of a step with such an input; a step runs backward when one
 * of its outputs lies on a path to the logits.  Steps after the logits (a
 * final Softmax) run forward only.
 *
 * Zeroing: backwards accumulate into their input gradients.  Without
 * quantizers, an activation's gradient is zeroed by qc_plan_backward right
 * before the first step that accumulates into it (the consumer with the
 * highest step index), where the zeroed lines are still in cache for that
 * step; qc_plan_zero_act_grads zeroes only the rest (the logits' gradient,
 * which the loss writes, and gradients no step writes).  With quantizers
 * everything is zeroed up front.
 */
#include <config.h>

#include <stdio.h>
#include <math.h>
#include <string.h>

#include "util/log.h"
#include "plan.h"
#include "plan_impl.h"

enum param_role { ROLE_NONE, ROLE_TRAINABLE, ROLE_BUFFER };

static bool produced_by_linear(const struct qc_graph *g, int v)
{
    int prod = v >= 0 ? g->values[v].producer : -1;
    return qc_op_is_weighted(prod >= 0 ? g->nodes[prod].kind : -1);
}

static enum param_role param_role(const struct qc_graph *g, const struct qc_node *n, int slot)
{
    switch (qc_op_input_role(n->kind, slot)) {
    case QC_INPUT_TRAINABLE:
        return ROLE_TRAINABLE;
    case QC_INPUT_RUNNING:
        return ROLE_BUFFER;
    default:
        return n->kind == QC_OP_ADD && n->n_in == 2 && produced_by_linear(g, n->in[1 - slot])
                   ? ROLE_TRAINABLE : ROLE_NONE;
    }
}

/* Learnable parameters of a weight quantizer: one per channel (1 per tensor). */
static int64_t quant_nparams(const struct qc_quant_spec *sp)
{
    return sp->ch.nch > 1 ? sp->ch.nch : 1;
}

/* The parameter slot of an LSQ activation quantizer with a zero point holds [s, zf]. */
static bool has_zero_point(const struct qc_quant_spec *sp)
{
    return !sp->weight && sp->method == QC_QM_LSQ && sp->zero_point != QC_ZP_NONE;
}

/* One trainable scalar (α or s) per quantizer that has one, a vector of
 * steps s_c for a per-channel LSQ weight quantizer, [s, zf] for an asymmetric LSQ
 * activation (zf: the float zero point, trained by QActSolver like s; with
 * ZeroPoint=Calibrated it gets no gradient); SAT weights have none.
 * A quantized weight must be a trainable parameter. */
static int64_t add_quant_slots(struct qc_plan *p, const enum param_role *role, int64_t off)
{
    for (int i = 0; i < p->n_quants; i++) {
        struct plan_quant *q = &p->quants[i];
        struct qc_param_slot *s;
        q->slot = -1;
        q->pslot = -1;
        if (q->spec.weight && role[q->spec.value] != ROLE_TRAINABLE)
            continue;   /* reported by init_quants */
        if (q->spec.weight && q->spec.method == QC_QM_SAT)
            continue;
        q->pslot = p->n_slots;
        s = &p->slots[p->n_slots++];
        s->value = -1;
        s->node = q->spec.node;
        s->n = q->spec.weight ? quant_nparams(&q->spec) : has_zero_point(&q->spec) ? 2 : 1;
        s->offset = off;
        off += s->n;
        s->trainable = true;
        s->quant = i;
    }
    return off;
}

/* Sets the n steps at param (backend memory) to s. */
static enum qc_status upload_steps(struct qc_plan *p, float *param, int64_t n, float s)
{
    float *host = qc_malloc((size_t)n * sizeof(float));
    enum qc_status st;
    if (!host)
        return QC_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++)
        host[i] = s;
    st = qc_backend_upload(p->be, param, host, (size_t)n * sizeof(float));
    qc_free(host);
    return st;
}

/* Links weight quantizers to their slots, allocates Q(W) (which the ops then
 * read instead of W), and sets the initial α / s. */
static enum qc_status init_quants(struct qc_plan *p)
{
    const struct qc_graph *g = p->g;
    for (int i = 0; i < p->n_quants; i++) {
        struct plan_quant *q = &p->quants[i];
        const struct qc_node *n = &g->nodes[q->spec.node];
        float *param = q->pslot >= 0 ? p->state + p->slots[q->pslot].offset : NULL;
        enum qc_status st;
        qc_lsq_levels(q->spec.range, q->spec.is_signed, &q->qn, &q->qp);
        if (!q->spec.weight) {
            float v[2] = { q->spec.method == QC_QM_SAT ? q->spec.alpha : q->spec.step, 0.0f };
            q->init_pending = q->spec.method == QC_QM_LSQ &&
                              (q->spec.step_init || has_zero_point(&q->spec));
            st = qc_backend_upload(p->be, param, v, (size_t)p->slots[q->pslot].n * sizeof(float));
            if (st != QC_OK)
                return st;
            continue;
        }
        for (int k = 0; k < p->n_slots; k++)
            if (p->slots[k].value == q->spec.value && p->slots[k].trainable)
                q->slot = k;
        if (q->slot < 0) {
            qc_log_error("%s: %s '%s': its weight '%s' is not a trainable parameter and cannot "
                         "be quantized", g->path, n->op_type, qc_node_label(g, n),
                         g->values[q->spec.value].name);
            return QC_ERR_UNSUPPORTED;
        }
        st = qc_backend_alloc(p->be, (size_t)p->slots[q->slot].n * sizeof(float),
                              (void **)&q->q);
        if (st == QC_OK && q->spec.method == QC_QM_SAT)
            st = qc_backend_alloc(p->be, (size_t)quant_nparams(&q->spec) * sizeof(*q->sat_st),
                                  (void **)&q->sat_st);
        if (st != QC_OK)
            return st;
        p->vals[q->spec.value].data = q->q;
        if (q->spec.method == QC_QM_LSQ) {
            st = q->spec.step_init ? qc_backend_run(p->be, QC_TK_LSQ_INIT_STEP,
                                                    &(struct qc_tk_lsq_init_step){
                                                        .x = p->state + p->slots[q->slot].offset,
                                                        .ch = q->spec.ch,
                                                        .n = p->slots[q->slot].n,
                                                        .qp = q->qp,
                                                        .step = param })
                                   : upload_steps(p, param, quant_nparams(&q->spec), q->spec.step);
            if (st != QC_OK)
                return st;
        }
    }
    return QC_OK;
}

/* Collects the slots (trainable first, then buffers, each in node order),
 * allocates the state array and points the plan's tensors into it. */
enum qc_status qc_plan_bind_params(struct qc_plan *p)
{
    const struct qc_graph *g = p->g;
    enum param_role *role = qc_calloc((size_t)g->n_values + 1, sizeof(*role));
    int *first = qc_calloc((size_t)g->n_values + 1, sizeof(int));
    enum qc_status st = QC_ERR_NOMEM;
    int64_t off = 0;

    if (!role || !first)
        goto out;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct qc_node *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            enum param_role r;
            if (v < 0 || !g->values[v].init || g->values[v].init->dtype != QC_DTYPE_F32)
                continue;
            r = param_role(g, n, j);
            if (r == ROLE_NONE || role[v] == ROLE_TRAINABLE)
                continue;
            if (role[v] == ROLE_NONE)
                first[v] = i;
            role[v] = r;
        }
    }
    p->slots = qc_calloc((size_t)(g->n_values + p->n_quants) + 1, sizeof(*p->slots));
    if (!p->slots)
        goto out;
    for (int pass = 0; pass < 2; pass++) {
        enum param_role want = pass == 0 ? ROLE_TRAINABLE : ROLE_BUFFER;
        for (int v = 0; v < g->n_values; v++) {
            struct qc_param_slot *s;
            if (role[v] != want)
                continue;
            s = &p->slots[p->n_slots++];
            s->value = v;
            s->node = first[v];
            s->offset = off;
            s->n = qc_tensor_nelem(g->values[v].init);
            s->trainable = want == ROLE_TRAINABLE;
            s->quant = -1;
            off += s->n;
        }
        if (pass == 0)
            off = add_quant_slots(p, role, off);
        if (pass == 0)
            p->n_trainable = off;
    }
    p->n_state = off;
    st = qc_backend_alloc(p->be, (size_t)(off ? off : 1) * sizeof(float), (void **)&p->state);
    if (st != QC_OK)
        goto out;
    for (int i = 0; i < p->n_slots; i++) {
        const struct qc_param_slot *s = &p->slots[i];
        float *dst = p->state + s->offset;
        if (s->value < 0)
            continue;   /* quantizer parameters: init_quants */
        st = qc_backend_upload(p->be, dst, g->values[s->value].init->data,
                               (size_t)s->n * sizeof(float));
        if (st != QC_OK)
            goto out;
        if (s->value >= 0)
            p->vals[s->value].data = dst;
    }
    st = init_quants(p);
out:
    qc_free(role);
    qc_free(first);
    return st;
}

/* The logits: output 0, or the input of a final Softmax/LogSoftmax. */
static enum qc_status find_logits(struct qc_plan *p)
{
    const struct qc_graph *g = p->g;
    int v = g->outputs[0];
    int prod = g->values[v].producer;
    const struct qc_tensor *t;
    char s[128];
    if (prod >= 0 && (g->nodes[prod].kind == QC_OP_SOFTMAX ||
                      g->nodes[prod].kind == QC_OP_LOG_SOFTMAX))
        v = g->nodes[prod].in[0];
    t = &p->vals[v];
    if (t->dtype != QC_DTYPE_F32 || !qc_shape_is_scores(&t->shape, p->batch)) {
        qc_log_error("%s: training needs class scores [batch, classes] at the first output; "
                     "'%s' is %s", g->path, g->values[v].name,
                     qc_shape_str(&t->shape, s, sizeof(s)));
        return QC_ERR_UNSUPPORTED;
    }
    p->logits = v;
    return QC_OK;
}

/* Marks which steps run backward; every step that must but cannot is
 * reported in one line. */
static enum qc_status mark_backward(struct qc_plan *p, bool *needs, bool *relevant)
{
    const struct qc_graph *g = p->g;
    char msg[2048];
    size_t pos = 0;
    int bad = 0;

    for (int i = 0; i < p->n_slots; i++)
        if (p->slots[i].value >= 0)
            needs[p->slots[i].value] = p->slots[i].trainable;
    for (int i = 0; i < p->n_steps; i++) {
        const struct qc_node *n = &g->nodes[p->steps[i].node];
        bool any = false;
        for (int j = 0; j < n->n_in; j++)
            any = any || (n->in[j] >= 0 && needs[n->in[j]]);
        for (int j = 0; j < n->n_out && any; j++)
            if (n->out[j] >= 0 && p->steps[i].out[j]->dtype == QC_DTYPE_F32)
                needs[n->out[j]] = true;
    }
    relevant[p->logits] = true;
    msg[0] = '\0';
    for (int i = p->n_steps - 1; i >= 0; i--) {
        struct plan_step *s = &p->steps[i];
        const struct qc_node *n = &g->nodes[s->node];
        bool out_rel = false, in_need = false;
        for (int j = 0; j < n->n_out; j++)
            out_rel = out_rel || (n->out[j] >= 0 && s->out[j] == &p->vals[n->out[j]] &&
                                  relevant[n->out[j]]);
        for (int j = 0; j < n->n_in; j++)
            in_need = in_need || (n->in[j] >= 0 && needs[n->in[j]]);
        if (!out_rel || !in_need)
            continue;
        s->backward = true;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0 && needs[n->in[j]])
                relevant[n->in[j]] = true;
        if (!s->k->backward) {
            if (pos < sizeof(msg)) {
                int w = snprintf(msg + pos, sizeof(msg) - pos, "%s'%s' (%s)", bad ? ", " : "",
                                 qc_node_label(g, n), n->op_type);
                if (w > 0)
                    pos += (size_t)w;
            }
            bad++;
        }
    }
    if (bad) {
        qc_log_error("%s: cannot train through %d node%s without a backward on %s: %s", g->path,
                     bad, bad > 1 ? "s" : "", qc_backend_name(p->be), msg);
        return QC_ERR_UNSUPPORTED;
    }
    return QC_OK;
}

/* Wires the quantizers into the steps: ops read Q(W) and write their
 * gradient into dq; a quantized activation's producer writes `pre` and gets
 * its gradient from `gpre`. */
static enum qc_status attach_quants(struct qc_plan *p)
{
    const struct qc_graph *g = p->g;
    int64_t total = 0, off = 0;
    enum qc_status st;

    for (int i = 0; i < p->n_quants; i++)
        total += qc_tensor_nelem(&p->vals[p->quants[i].spec.value]);
    st = qc_backend_alloc(p->be, (size_t)(total ? total : 1) * sizeof(float),
                          (void **)&p->quant_grads);
    if (st != QC_OK)
        return st;
    p->n_quant_grads = total;
    for (int i = 0; i < p->n_quants; i++) {
        struct plan_quant *q = &p->quants[i];
        int v = q->spec.value;
        const struct qc_tensor *t = &p->vals[v];
        float *grad = p->quant_grads + off;
        off += qc_tensor_nelem(t);
        q->step = -1;
        if (q->spec.weight) {
            q->dq = *t;
            q->dq.data = grad;
            for (int k = 0; k < p->n_steps; k++) {
                const struct qc_node *n = &g->nodes[p->steps[k].node];
                for (int j = 0; p->steps[k].din && j < n->n_in; j++)
                    if (n->in[j] == v && p->steps[k].din[j])
                        p->steps[k].din[j] = &q->dq;
            }
            continue;
        }
        for (int k = 0; k < p->n_steps && q->step < 0; k++)
            if (p->steps[k].node == q->spec.node)
                q->step = k;
        if (q->step < 0) {
            qc_log_error("%s: '%s' is computed at plan time (a constant) and cannot be quantized",
                         g->path, g->values[v].name);
            return QC_ERR_UNSUPPORTED;
        }
        q->pre = *t;
        q->pre.owns = false;
        st = qc_backend_alloc(p->be, qc_tensor_nbytes(t), &q->pre.data);
        if (st != QC_OK)
            return st;
        q->gpre = *t;
        q->gpre.data = grad;
        {
            struct plan_step *s = &p->steps[q->step];
            const struct qc_node *n = &g->nodes[s->node];
            for (int j = 0; j < n->n_out; j++) {
                if (n->out[j] != v)
                    continue;
                s->out[j] = &q->pre;
                if (s->dout)
                    s->dout[j] = p->gvals && p->gvals[v].data ? &q->gpre : NULL;
            }
        }
    }
    return QC_OK;
}

enum qc_status qc_plan_prepare_backward(struct qc_plan *p)
{
    const struct qc_graph *g = p->g;
    bool *needs = qc_calloc((size_t)g->n_values + 1, sizeof(bool));
    bool *relevant = qc_calloc((size_t)g->n_values + 1, sizeof(bool));
    enum qc_status st = QC_ERR_NOMEM;

    p->has_grad = qc_calloc((size_t)g->n_values + 1, sizeof(bool));
    if (!needs || !relevant || !p->has_grad)
        goto out;
    st = find_logits(p);
    if (st != QC_OK)
        goto out;
    st = mark_backward(p, needs, relevant);
    if (st != QC_OK)
        goto out;
    p->n_act_grads = 0;
    for (int v = 0; v < g->n_values; v++) {
        p->has_grad[v] = needs[v] && relevant[v] && !g->values[v].init;
        if (p->has_grad[v])
            p->n_act_grads += qc_tensor_nelem(&p->vals[v]);
    }
    p->saved_total = 0;
    for (int i = 0; i < p->n_steps; i++)
        p->saved_total += (p->steps[i].saved_size + 63) & ~(size_t)63;
    p->n_quant_grads = 0;
    for (int i = 0; i < p->n_quants; i++)
        p->n_quant_grads += qc_tensor_nelem(&p->vals[p->quants[i].spec.value]);
out:
    qc_free(needs);
    qc_free(relevant);
    return st;
}

void qc_plan_mem_train(const struct qc_plan *p, struct plan_mem *m)
{
    const struct qc_graph *g = p->g;
    qc_plan_mem_add(m, (uint64_t)p->n_state * sizeof(float), NULL, "parameters");
    qc_plan_mem_add(m, (uint64_t)p->n_trainable * sizeof(float), NULL, "parameter gradients");
    for (int v = 0; v < g->n_values; v++)
        if (p->has_grad[v])
            qc_plan_mem_add(m, (uint64_t)qc_tensor_nelem(&p->vals[v]) * sizeof(float),
                            g->values[v].name, " gradient");
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].saved_size)
            qc_plan_mem_add(m, (p->steps[i].saved_size + 63) & ~(size_t)63,
                            qc_node_label(g, &g->nodes[p->steps[i].node]), " saved");
    for (int i = 0; i < p->n_quants; i++) {
        const struct plan_quant *q = &p->quants[i];
        const char *name = g->values[q->spec.value].name;
        if (q->spec.weight)
            qc_plan_mem_add(m, (uint64_t)p->slots[q->slot].n * sizeof(float), name,
                            " quantized");
        else
            qc_plan_mem_add(m, qc_tensor_nbytes(&p->vals[q->spec.value]), name,
                            " before its quantizer");
    }
    qc_plan_mem_add(m, (uint64_t)p->n_quant_grads * sizeof(float), NULL, "quantizer gradients");
}

enum qc_status qc_plan_setup_backward(struct qc_plan *p)
{
    const struct qc_graph *g = p->g;
    enum qc_status st;
    size_t n_ptrs = 0, off;
    int64_t act = 0;

    /* gradient tensors: parameters into p->grads, activations into act_grads */
    p->gvals = qc_calloc((size_t)g->n_values + 1, sizeof(*p->gvals));
    if (!p->gvals)
        return QC_ERR_NOMEM;
    for (int v = 0; v < g->n_values; v++) {
        p->gvals[v].dtype = QC_DTYPE_F32;
        p->gvals[v].shape = p->vals[v].shape;
    }
    st = qc_backend_alloc(p->be, (size_t)(p->n_act_grads ? p->n_act_grads : 1) * sizeof(float),
                          (void **)&p->act_grads);
    if (st != QC_OK)
        return st;
    st = qc_backend_alloc(p->be, (size_t)(p->n_trainable ? p->n_trainable : 1) * sizeof(float),
                          (void **)&p->grads);
    if (st != QC_OK)
        return st;
    for (int i = 0; i < p->n_slots; i++)
        if (p->slots[i].trainable && p->slots[i].value >= 0)
            p->gvals[p->slots[i].value].data = p->grads + p->slots[i].offset;
    for (int v = 0; v < g->n_values; v++) {
        if (!p->has_grad[v])
            continue;
        p->gvals[v].data = p->act_grads + act;
        act += qc_tensor_nelem(&p->vals[v]);
    }

    /* din/dout pointers of the backward steps */
    for (int i = 0; i < p->n_steps; i++) {
        const struct qc_node *n = &g->nodes[p->steps[i].node];
        if (p->steps[i].backward)
            n_ptrs += (size_t)(n->n_in + n->n_out);
    }
    p->gptrs = qc_calloc(n_ptrs + 1, sizeof(*p->gptrs));
    if (!p->gptrs)
        return QC_ERR_NOMEM;
    n_ptrs = 0;
    for (int i = 0; i < p->n_steps; i++) {
        struct plan_step *s = &p->steps[i];
        const struct qc_node *n = &g->nodes[s->node];
        if (!s->backward)
            continue;
        s->din = p->gptrs + n_ptrs;
        s->dout = s->din + n->n_in;
        n_ptrs += (size_t)(n->n_in + n->n_out);
        for (int j = 0; j < n->n_in; j++) {
            int v = n->in[j];
            s->din[j] = v >= 0 && p->gvals[v].data ? &p->gvals[v] : NULL;
        }
        for (int j = 0; j < n->n_out; j++) {
            int v = n->out[j];
            s->dout[j] = v >= 0 && s->out[j] == &p->vals[v] && p->gvals[v].data
                             ? &p->gvals[v] : NULL;
        }
    }
    st = qc_backend_alloc(p->be, p->saved_total ? p->saved_total : 64, &p->saved_mem);
    if (st != QC_OK)
        return st;
    off = 0;
    for (int i = 0; i < p->n_steps; i++) {
        struct plan_step *s = &p->steps[i];
        if (!s->saved_size)
            continue;
        s->saved = (char *)p->saved_mem + off;
        off += (s->saved_size + 63) & ~(size_t)63;
    }
    return attach_quants(p);
}

void qc_plan_free_train(struct qc_plan *p)
{
    if (p->state)
        qc_backend_release(p->be, p->state);
    if (p->grads)
        qc_backend_release(p->be, p->grads);
    if (p->act_grads)
        qc_backend_release(p->be, p->act_grads);
    if (p->saved_mem)
        qc_backend_release(p->be, p->saved_mem);
    for (int i = 0; i < p->n_quants; i++) {
        if (p->quants[i].q)
            qc_backend_release(p->be, p->quants[i].q);
        if (p->quants[i].sat_st)
            qc_backend_release(p->be, p->quants[i].sat_st);
        if (p->quants[i].pre.data)
            qc_backend_release(p->be, p->quants[i].pre.data);
    }
    if (p->quant_grads)
        qc_backend_release(p->be, p->quant_grads);
    qc_free(p->quants);
    qc_free(p->slot_ready);
    qc_free(p->quant_ready);
    qc_free(p->slots);
    qc_free(p->gvals);
    qc_free(p->gptrs);
    qc_free(p->has_grad);
}

enum qc_status qc_plan_new_train(const struct qc_graph *g, struct qc_backend *be,
                                 int64_t batch, const struct qc_quant_spec *specs, int n_specs,
                                 struct qc_plan **out)
{
    return qc_plan_build(g, be, batch, true, specs, n_specs, out);
}

int qc_plan_logits(const struct qc_plan *p)
{
    return p->logits;
}

struct qc_tensor *qc_plan_grad(struct qc_plan *p, int v)
{
    if (!p->gvals || v < 0 || v >= p->n_values || !p->gvals[v].data)
        return NULL;
    return &p->gvals[v];
}

float *qc_plan_state(struct qc_plan *p)
{
    return p->state;
}

int64_t qc_plan_n_state(const struct qc_plan *p)
{
    return p->n_state;
}

int64_t qc_plan_n_trainable(const struct qc_plan *p)
{
    return p->n_trainable;
}

float *qc_plan_param_grads(struct qc_plan *p)
{
    return p->grads;
}

int qc_plan_n_slots(const struct qc_plan *p)
{
    return p->n_slots;
}

const struct qc_param_slot *qc_plan_slot(const struct qc_plan *p, int i)
{
    return &p->slots[i];
}

/* Whether activation gradients are zeroed step by step (file comment). */
static bool lazy_zero(const struct qc_plan *p)
{
    return p->n_quants == 0;
}

/* The highest step index whose backward accumulates into gradient t (the
 * first to run), or -1 when none does. */
static int first_writer(const struct qc_plan *p, const struct qc_tensor *t)
{
    for (int i = p->n_steps - 1; i >= 0; i--) {
        const struct plan_step *s = &p->steps[i];
        if (!s->backward)
            continue;
        for (int j = 0; j < p->g->nodes[s->node].n_in; j++)
            if (s->din[j] == t)
                return i;
    }
    return -1;
}

/* Whether gradient t is an activation's that step `step` zeroes before its
 * backward: its first writer, not the logits' (written by the loss). */
static bool zeroed_at(const struct qc_plan *p, const struct qc_tensor *t, int step)
{
    const float *d = t->data;
    if (d < p->act_grads || d >= p->act_grads + p->n_act_grads)
        return false;
    if (t == &p->gvals[p->logits])
        return false;
    return first_writer(p, t) == step;
}

enum qc_status qc_plan_zero_act_grads(struct qc_plan *p)
{
    enum qc_status st = QC_OK;
    if (lazy_zero(p)) {
        for (int v = 0; v < p->g->n_values && st == QC_OK; v++) {
            const struct qc_tensor *t = &p->gvals[v];
            const float *d = t->data;
            if (!d || d < p->act_grads || d >= p->act_grads + p->n_act_grads)
                continue;
            if (v != p->logits && first_writer(p, t) >= 0)
                continue;
            st = qc_backend_zero(p->be, t->data, qc_tensor_nbytes(t));
        }
    } else {
        st = qc_backend_zero(p->be, p->act_grads, (size_t)p->n_act_grads * sizeof(float));
    }
    if (st == QC_OK && p->n_quant_grads)
        st = qc_backend_zero(p->be, p->quant_grads, (size_t)p->n_quant_grads * sizeof(float));
    return st;
}

enum qc_status qc_plan_zero_param_grads(struct qc_plan *p)
{
    return qc_backend_zero(p->be, p->grads, (size_t)p->n_trainable * sizeof(float));
}

/* ---- the grad-ready hook (plan.h) ---------------------------------------------------------- */

/* slot_ready[i] = min(slot_ready[i], step) for every trainable slot that
 * overlaps the floats [off, off + n) of p->grads. */
static void ready_no_later(struct qc_plan *p, int64_t off, int64_t n, int step)
{
    for (int i = 0; i < p->n_slots; i++) {
        const struct qc_param_slot *sl = &p->slots[i];
        if (sl->trainable && sl->offset < off + n && off < sl->offset + sl->n &&
            p->slot_ready[i] > step)
            p->slot_ready[i] = step;
    }
}

/* The floats of p->grads a gradient tensor covers, or false when it lies
 * elsewhere (an activation gradient, a quantized weight's dQ).  Compared as
 * addresses: device pointers too. */
static bool in_param_grads(const struct qc_plan *p, const struct qc_tensor *t, int64_t *off)
{
    uintptr_t d = (uintptr_t)t->data, g0 = (uintptr_t)p->grads;
    uintptr_t g1 = g0 + (uintptr_t)p->n_trainable * sizeof(float);
    if (!t->data || d < g0 || d >= g1)
        return false;
    *off = (int64_t)((d - g0) / sizeof(float));
    return true;
}

/* The smallest step whose backward writes into weight quantizer q's dQ (its
 * last writer in the reverse walk), or -1 when none does. */
static int dq_final_step(const struct qc_plan *p, const struct plan_quant *q)
{
    uintptr_t d0 = (uintptr_t)q->dq.data;
    uintptr_t d1 = d0 + (uintptr_t)qc_tensor_nelem(&q->dq) * sizeof(float);
    for (int i = 0; q->dq.data && i < p->n_steps; i++) {
        const struct plan_step *s = &p->steps[i];
        for (int j = 0; s->backward && j < p->g->nodes[s->node].n_in; j++) {
            uintptr_t d = s->din[j] ? (uintptr_t)s->din[j]->data : 0;
            if (d >= d0 && d < d1)
                return i;
        }
    }
    return -1;
}

/* Where each slot's gradient becomes final in qc_plan_backward's walk from
 * step n_steps-1 down to 0: the smallest step whose backward writes it (din
 * into p->grads), or whose activation quantizer's α / s it is; a slot nothing
 * writes: -1, after the walk.  A weight quantizer's backward (dQ to dW and
 * its α / s) then runs right after the last step writing its dQ, instead of
 * after the walk (the same operations; the quantizers are independent of
 * each other), and its slots are final there (or after any later direct
 * writer of W).  Without the hook nothing of this is computed or changed. */
enum qc_status qc_plan_set_grad_ready(struct qc_plan *p, qc_grad_ready_fn fn, void *arg)
{
    p->grad_ready = fn;
    p->grad_ready_arg = arg;
    if (!fn || p->slot_ready || !p->training)
        return QC_OK;
    p->slot_ready = qc_malloc((size_t)(p->n_slots ? p->n_slots : 1) * sizeof(int));
    p->quant_ready = qc_malloc((size_t)(p->n_quants ? p->n_quants : 1) * sizeof(int));
    if (!p->slot_ready || !p->quant_ready) {
        qc_free(p->slot_ready);
        qc_free(p->quant_ready);
        p->slot_ready = NULL;
        p->quant_ready = NULL;
        return QC_ERR_NOMEM;
    }
    for (int i = 0; i < p->n_slots; i++)
        p->slot_ready[i] = p->slots[i].trainable ? p->n_steps : -2;
    for (int i = 0; i < p->n_steps; i++) {
        const struct plan_step *s = &p->steps[i];
        if (!s->backward)
            continue;
        for (int j = 0; j < p->g->nodes[s->node].n_in; j++) {
            int64_t off;
            if (s->din[j] && in_param_grads(p, s->din[j], &off))
                ready_no_later(p, off, qc_tensor_nelem(s->din[j]), i);
        }
    }
    for (int i = 0; i < p->n_quants; i++) {
        const struct plan_quant *q = &p->quants[i];
        if (!q->spec.weight && q->pslot >= 0)
            ready_no_later(p, p->slots[q->pslot].offset, p->slots[q->pslot].n, q->step);
    }
    for (int i = 0; i < p->n_slots; i++)
        if (p->slot_ready[i] == p->n_steps)
            p->slot_ready[i] = p->n_steps + 1; /* no direct writer (yet) */
    for (int i = 0; i < p->n_quants; i++) {
        const struct plan_quant *q = &p->quants[i];
        p->quant_ready[i] = q->spec.weight ? dq_final_step(p, q) : -1;
        if (!q->spec.weight)
            continue;
        /* W: final at the earlier of its quantizer's backward and its direct
         * writers; -1 (after the walk) is the latest of all */
        if (p->quant_ready[i] < 0 || p->slot_ready[q->slot] == p->n_steps + 1)
            p->slot_ready[q->slot] = p->quant_ready[i] < 0 ? -1 : p->quant_ready[i];
        else
            p->slot_ready[q->slot] = QC_MIN(p->slot_ready[q->slot], p->quant_ready[i]);
        if (q->pslot >= 0)
            p->slot_ready[q->pslot] = p->quant_ready[i];
    }
    for (int i = 0; i < p->n_slots; i++)
        if (p->slot_ready[i] > p->n_steps)
            p->slot_ready[i] = -1;
    return QC_OK;
}

/* Calls the grad-ready hook for the slots final after backward iteration
 * `step` (-1: after the walk). */
static enum qc_status report_ready(struct qc_plan *p, int step)
{
    for (int i = 0; p->grad_ready && p->slot_ready && i < p->n_slots; i++) {
        enum qc_status st;
        if (p->slot_ready[i] != step || p->slots[i].n == 0)
            continue;
        st = p->grad_ready(p->grad_ready_arg, p->slots[i].offset, p->slots[i].n);
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

enum qc_status qc_plan_backward(struct qc_plan *p)
{
    enum qc_status st;
    for (int i = p->n_steps - 1; i >= 0; i--) {
        const struct plan_step *s = &p->steps[i];
        const struct qc_node *n = &p->g->nodes[s->node];
        char where[512];
        struct qc_op_ctx ctx = {
            .be = p->be,
            .workspace = p->workspace,
            .workspace_size = p->ws_size,
            .saved = s->saved,
            .saved_size = s->saved_size,
            .rng = NULL,
            .threads = qc_backend_threads(p->be),
            .opset = p->g->opset,
            .training = true,
            .label = NULL,
        };
        ctx.sync = p->sync; /* a data-parallel job's sums (plan.h) */
        if (p->n_quants) {
            st = qc_plan_quant_acts_backward(p, i);
            if (st != QC_OK)
                return st;
        }
        if (!s->backward) {
            st = report_ready(p, i); /* an activation quantizer's α / s */
            if (st != QC_OK)
                return st;
            continue;
        }
        for (int j = 0; lazy_zero(p) && j < n->n_in; j++) {
            bool again = false;
            if (!s->din[j])
                continue;
            for (int k = 0; k < j; k++)
                again = again || s->din[k] == s->din[j];
            if (again || !zeroed_at(p, s->din[j], i))
                continue;
            st = qc_backend_zero(p->be, s->din[j]->data, qc_tensor_nbytes(s->din[j]));
            if (st != QC_OK)
                return st;
        }
        ctx.label = qc_plan_node_where(p->g, n, where, sizeof(where));
        st = s->k->backward(n, &ctx, (const struct qc_tensor *const *)s->in,
                            (const struct qc_tensor *const *)s->out,
                            (const struct qc_tensor *const *)s->dout, s->din);
        if (st == QC_OK && p->quant_ready)
            st = qc_plan_quant_weights_backward(p, i);
        if (st == QC_OK)
            st = report_ready(p, i);
        if (st != QC_OK)
            return st;
    }
    st = p->n_quants ? qc_plan_quant_weights_backward(p, -1) : QC_OK;
    return st == QC_OK ? report_ready(p, -1) : st;
}

enum qc_status qc_plan_store_params(struct qc_plan *p, struct qc_graph *g)
{
    QC_ASSERT(g == p->g);
    for (int i = 0; i < p->n_slots; i++) {
        const struct qc_param_slot *s = &p->slots[i];
        enum qc_status st;
        if (s->value < 0)
            continue;   /* quantizer parameters live in the export, not the graph */
        st = qc_backend_download(p->be, g->values[s->value].init->data,
                                 p->state + s->offset, (size_t)s->n * sizeof(float));
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

/* ---- quantizers: the backend's training arithmetic on its own memory ---- */

static float *quant_param(struct qc_plan *p, const struct plan_quant *q)
{
    return q->pslot >= 0 ? p->state + p->slots[q->pslot].offset : NULL;
}

static float *quant_param_grad(struct qc_plan *p, const struct plan_quant *q)
{
    return q->pslot >= 0 ? p->grads + p->slots[q->pslot].offset : NULL;
}

enum qc_status qc_plan_quant_weights_forward(struct qc_plan *p)
{
    for (int i = 0; i < p->n_quants; i++) {
        struct plan_quant *q = &p->quants[i];
        const struct qc_param_slot *s;
        enum qc_status st;
        if (!q->spec.weight)
            continue;
        s = &p->slots[q->slot];
        if (q->spec.method == QC_QM_SAT)
            st = qc_backend_run(p->be, QC_TK_SAT_WEIGHT_FORWARD,
                                &(struct qc_tk_sat_weight_forward){ .cfg = &q->spec.sat,
                                                                    .ch = q->spec.ch,
                                                                    .w = p->state + s->offset,
                                                                    .q = q->q,
                                                                    .n = s->n,
                                                                    .st = q->sat_st });
        else
            st = qc_backend_run(p->be, QC_TK_LSQ_FORWARD,
                                &(struct qc_tk_lsq_forward){ .step = quant_param(p, q),
                                                             .ch = q->spec.ch,
                                                             .qn = q->qn,
                                                             .qp = q->qp,
                                                             .x = p->state + s->offset,
                                                             .y = q->q,
                                                             .n = s->n });
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

/* Data parallelism (p->sync): a data-initialised LSQ activation quantizer
 * takes the step of the GLOBAL batch, before this layer quantizes with it:
 * s0 = 2·mean|x|/√Qp is linear in mean|x|, so the rank's step weighted by its
 * element count n_r, s0 = Σ_r n_r·s0_r / Σ_r n_r, is the global one (unless
 * the minimum step clamps); an asymmetric quantizer's zero point (from
 * min/max) is averaged the same way, which only approximates it. */
static enum qc_status global_init(struct qc_plan *p, float *param, int64_t n, bool zp)
{
    float v[2] = { 0.0f, 0.0f };
    double buf[3];
    int k = zp ? 2 : 1;
    enum qc_status st = qc_backend_download(p->be, v, param, (size_t)k * sizeof(float));
    if (st != QC_OK)
        return st;
    buf[0] = (double)v[0] * (double)n;
    buf[1] = (double)v[1] * (double)n;
    buf[2] = (double)n;
    st = p->sync->sum(p->sync->arg, buf, 3);
    if (st != QC_OK)
        return st;
    v[0] = (float)(buf[0] / buf[2]);
    v[1] = zp ? rintf((float)(buf[1] / buf[2])) : 0.0f;
    return qc_backend_upload(p->be, param, v, (size_t)k * sizeof(float));
}

enum qc_status qc_plan_quant_acts_forward(struct qc_plan *p, int step, bool training)
{
    for (int i = 0; i < p->n_quants; i++) {
        struct plan_quant *q = &p->quants[i];
        const float *x;
        float *y, *param;
        int64_t n;
        enum qc_status st;
        if (q->spec.weight || q->step != step)
            continue;
        x = qc_tensor_f32(&q->pre);
        y = qc_tensor_f32(&p->vals[q->spec.value]);
        n = qc_tensor_nelem(&q->pre);
        param = quant_param(p, q);
        (void)training;   /* the first forward initializes, whatever its mode */
        if (q->init_pending) { /* a zero point: s (unless StepSize) and zf from min/max */
            bool zp = has_zero_point(&q->spec);
            st = qc_backend_run(p->be, QC_TK_LSQ_INIT_STEP,
                                &(struct qc_tk_lsq_init_step){ .x = x,
                                                               .n = n,
                                                               .qp = q->qp,
                                                               .step = param,
                                                               .zero_point = zp ? param + 1 : NULL,
                                                               .qn = q->qn,
                                                               .keep_step = !q->spec.step_init });
            if (st == QC_OK && p->sync)
                st = global_init(p, param, n, zp);
            if (st != QC_OK)
                return st;
            q->init_pending = false;
        }
        if (q->spec.method == QC_QM_SAT)
            st = qc_backend_run(p->be, QC_TK_SAT_ACT_FORWARD, &(struct qc_tk_sat_act_forward){
                                    .alpha = param, .range = q->spec.range, .x = x, .y = y,
                                    .n = n });
        else
            st = qc_backend_run(p->be, QC_TK_LSQ_FORWARD,
                                &(struct qc_tk_lsq_forward){
                                    .step = param,
                                    .qn = q->qn,
                                    .qp = q->qp,
                                    .x = x,
                                    .y = y,
                                    .n = n,
                                    .zero_point = has_zero_point(&q->spec) ? param + 1 : NULL });
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

enum qc_status qc_plan_quant_acts_backward(struct qc_plan *p, int step)
{
    for (int i = 0; i < p->n_quants; i++) {
        struct plan_quant *q = &p->quants[i];
        const struct qc_tensor *gy;
        int64_t n;
        enum qc_status st;
        if (q->spec.weight || q->step != step || !p->gvals)
            continue;
        gy = &p->gvals[q->spec.value];
        if (!gy->data)
            continue;
        n = qc_tensor_nelem(&q->pre);
        if (q->spec.method == QC_QM_SAT)
            st = qc_backend_run(p->be, QC_TK_SAT_ACT_BACKWARD,
                                &(struct qc_tk_sat_act_backward){
                                    .alpha = quant_param(p, q), .range = q->spec.range,
                                    .x = qc_tensor_f32(&q->pre), .dy = qc_tensor_f32(gy),
                                    .dx = qc_tensor_f32(&q->gpre), .n = n,
                                    .dalpha = quant_param_grad(p, q) });
        else /* g = 1/sqrt(N·Qp), N = elements per sample, for s and zf alike */
            st = qc_backend_run(
                p->be, QC_TK_LSQ_BACKWARD,
                &(struct qc_tk_lsq_backward){
                    .step = quant_param(p, q),
                    .qn = q->qn,
                    .qp = q->qp,
                    .g = qc_lsq_grad_scale(n / QC_MAX(p->batch, 1), q->qp),
                    .x = qc_tensor_f32(&q->pre),
                    .dy = qc_tensor_f32(gy),
                    .dx = qc_tensor_f32(&q->gpre),
                    .n = n,
                    .dstep = quant_param_grad(p, q),
                    .zero_point = has_zero_point(&q->spec) ? quant_param(p, q) + 1 : NULL,
                    .dzero_point = q->spec.zero_point == QC_ZP_LEARNED ? quant_param_grad(p, q) + 1
                                                                       : NULL });
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

enum qc_status qc_plan_quant_weights_backward(struct qc_plan *p, int step)
{
    for (int i = 0; i < p->n_quants; i++) {
        struct plan_quant *q = &p->quants[i];
        const struct qc_param_slot *s;
        enum qc_status st;
        if (!q->spec.weight || (p->quant_ready ? p->quant_ready[i] : -1) != step)
            continue;
        s = &p->slots[q->slot];
        if (q->spec.method == QC_QM_SAT)
            st = qc_backend_run(p->be, QC_TK_SAT_WEIGHT_BACKWARD,
                                &(struct qc_tk_sat_weight_backward){ .cfg = &q->spec.sat,
                                                                     .ch = q->spec.ch,
                                                                     .st = q->sat_st,
                                                                     .w = p->state + s->offset,
                                                                     .dq = qc_tensor_f32(&q->dq),
                                                                     .dw = p->grads + s->offset,
                                                                     .n = s->n });
        else
            /* g_c = 1/sqrt(N_c·Qp), N_c = elements of channel c (of W per tensor) */
            st = qc_backend_run(p->be, QC_TK_LSQ_BACKWARD,
                                &(struct qc_tk_lsq_backward){
                                    .step = quant_param(p, q),
                                    .ch = q->spec.ch,
                                    .qn = q->qn,
                                    .qp = q->qp,
                                    .g = qc_lsq_grad_scale(s->n / quant_nparams(&q->spec), q->qp),
                                    .x = p->state + s->offset,
                                    .dy = qc_tensor_f32(&q->dq),
                                    .dx = p->grads + s->offset,
                                    .n = s->n,
                                    .dstep = quant_param_grad(p, q) });
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

enum qc_status qc_plan_clamp_quant_params(struct qc_plan *p)
{
    for (int i = 0; i < p->n_quants; i++) {
        struct plan_quant *q = &p->quants[i];
        float *param = quant_param(p, q);
        enum qc_status st;
        if (!param)
            continue;
        /* the guards of qc_sat_alpha_clamp and qc_lsq_step_clamp */
        st = qc_backend_run(
            p->be, QC_TK_CLAMP_MIN,
            &(struct qc_tk_clamp_min){ .p = param,
                                       /* the steps, not a zero point */
                                       .n = has_zero_point(&q->spec) ? 1 : p->slots[q->pslot].n,
                                       .lo = q->spec.method == QC_QM_SAT ? QC_SAT_ALPHA_MIN
                                                                         : QC_LSQ_STEP_MIN });
        if (st != QC_OK)
            return st;
    }
    return QC_OK;
}

void qc_plan_set_sync(struct qc_plan *p, const struct qc_op_sync *sync)
{
    p->sync = sync;
}

void qc_plan_quant_init_done(struct qc_plan *p)
{
    for (int i = 0; i < p->n_quants; i++)
        p->quants[i].init_pending = false;
}

int qc_plan_n_quants(const struct qc_plan *p)
{
    return p->n_quants;
}

const struct qc_quant_spec *qc_plan_quant_spec(const struct qc_plan *p, int i)
{
    return &p->quants[i].spec;
}

enum qc_status qc_plan_quant_info(const struct qc_plan *p, int i,
                                  struct qc_plan_quant_info *info)
{
    const struct plan_quant *q = &p->quants[i];
    struct qc_sat_wstate ws;
    enum qc_status st = QC_OK;
    memset(info, 0, sizeof(*info));
    memset(&ws, 0, sizeof(ws));
    info->spec = &q->spec;
    if (q->pslot >= 0)
        st = qc_backend_download(p->be, &info->param, p->state + p->slots[q->pslot].offset,
                                 sizeof(float));
    if (st == QC_OK && q->sat_st)
        st = qc_backend_download(p->be, &ws, q->sat_st, sizeof(ws));
    if (st == QC_OK && has_zero_point(&q->spec)) {
        float zf;
        st = qc_backend_download(p->be, &zf, p->state + p->slots[q->pslot].offset + 1,
                                 sizeof(float));
        info->zero_point = qc_lsq_zero_point(zf, q->qn, q->qp);
    }
    info->sat_m = ws.m;
    info->sat_s = ws.s;
    info->sat_scale = ws.scale;
    info->q = q->q;
    info->params = q->pslot >= 0 ? p->state + p->slots[q->pslot].offset : NULL;
    info->n_params = q->pslot >= 0 ? p->slots[q->pslot].n : 0;
    return st;
}

enum qc_status qc_plan_quant_params(const struct qc_plan *p, int i, float *out)
{
    const struct plan_quant *q = &p->quants[i];
    if (q->pslot < 0)
        return QC_OK;
    return qc_backend_download(p->be, out, p->state + p->slots[q->pslot].offset,
                               (size_t)p->slots[q->pslot].n * sizeof(float));
}
