/*
 * api.h - what the files of src/api/ share: the handles behind the opaque
 * types of include/qatconv.h and the in-memory text builder of the text
 * results (info, template, keys, profile).
 */
#ifndef QATCONV_SRC_API_API_H
#define QATCONV_SRC_API_API_H

#include <stdbool.h>
#include <stdio.h>

#include "backend/backend.h"
#include "ir/graph.h"
#include "util/qc.h"

struct qc_model {
    struct qc_graph *g;
    /* the load dequantized the stored weights of a weight-only quantized
     * model into float parameters (the integer rewrite without a recipe
     * needs them kept: qc_load_options.keep_weight_levels) */
    bool weight_dq_folded;
    /* the load kept them (keep_weight_levels): a recipe cannot train it */
    bool weight_dq_kept;
};

struct qc_job {
    struct qc_job_options o;        /* device points into `device`          */
    char                 *device;
    struct qc_backend    *be;       /* opened by the first work that needs it */
    struct qc_comm *comm;           /* the data-parallel job's ranks (one
                                       without MPI or mpirun)                 */
};

/* The job's options (QC_JOB_OPTIONS_INIT's for a NULL job). */
const struct qc_job_options *qc_job_opts(const struct qc_job *job);

/* A string built with stdio (open_memstream). */
struct qc_text {
    FILE  *f;
    char  *buf;
    size_t len;
};
enum qc_status qc_text_open(struct qc_text *t);
/* Closes; on st == QC_OK hands the string to *text (free()), else frees it.
 * Returns st, or the failure to build the string. */
enum qc_status qc_text_close(struct qc_text *t, enum qc_status st, char **text);

#endif
