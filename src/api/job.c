/*
 * job.c - struct qc_job: where the work runs (device, threads, memory
 * budget, TF32).  The backend opens at the first work that needs the device
 * (so that model and recipe errors come before device errors) and stays
 * open for the next; its figures (threads, memory peak) are read here.
 */
#include <config.h>

#include <string.h>

#include "api.h"
#include "dist/comm.h"

static const struct qc_job_options default_opts = QC_JOB_OPTIONS_INIT;


const struct qc_job_options *qc_job_opts(const struct qc_job *job)
{
    return job ? &job->o : &default_opts;
}

enum qc_status qc_job_new(const struct qc_job_options *o, struct qc_job **out)
{
    struct qc_job *job;
    *out = NULL;
    job = qc_calloc(1, sizeof(*job));
    if (!job)
        return QC_ERR_NOMEM;
    job->o = o ? *o : default_opts;
    job->device = qc_strdup(job->o.device ? job->o.device : "cpu");
    if (!job->device) {
        qc_free(job);
        return QC_ERR_NOMEM;
    }
    job->o.device = job->device;
    {
        enum qc_status st = qc_comm_new(&job->comm);
        if (st != QC_OK) {
            qc_free(job->device);
            qc_free(job);
            return st;
        }
    }
    *out = job;
    return QC_OK;
}

enum qc_status qc_job_set_device(struct qc_job *job, const char *device)
{
    char *copy;
    if (job->be)
        return QC_ERR_INVAL;
    copy = qc_strdup(device);
    if (!copy)
        return QC_ERR_NOMEM;
    qc_free(job->device);
    job->device = copy;
    job->o.device = copy;
    return QC_OK;
}

void qc_job_free(struct qc_job *job)
{
    if (!job)
        return;
    qc_backend_free(job->be);
    qc_comm_free(job->comm);
    qc_free(job->device);
    qc_free(job);
}

int qc_job_threads(const struct qc_job *job)
{
    return job && job->be ? qc_backend_threads(job->be) : 0;
}

bool qc_job_host_memory(const struct qc_job *job)
{
    return !job || !job->be || qc_backend_host_memory(job->be);
}

const char *qc_job_backend_name(const struct qc_job *job)
{
    return job && job->be ? qc_backend_name(job->be) : "none";
}

int qc_job_device(const struct qc_job *job)
{
    return job && job->be ? qc_backend_device(job->be) : 0;
}

size_t qc_job_memory_peak(const struct qc_job *job)
{
    return job && job->be ? qc_backend_mem_peak(job->be) : 0;
}

int qc_job_rank(const struct qc_job *job)
{
    return job ? qc_comm_rank(job->comm) : 0;
}

int qc_job_ranks(const struct qc_job *job)
{
    return job ? qc_comm_size(job->comm) : 1;
}

void qc_job_abort(struct qc_job *job, int code)
{
    if (job)
        qc_comm_abort(job->comm, code);
}
