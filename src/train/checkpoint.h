/*
 * checkpoint.h - the training state saved after an epoch or after a batch
 * (--checkpoint-every), so that --resume continues exactly where the run
 * stopped: epochs and batches done, seed, solver counters, the plan's state
 * array (parameters, quantizer α/steps and BatchNorm buffers), the optimizer
 * state, the best-validation weights, the Dropout generator, the epoch's
 * loss statistics so far and, when a solver is in the middle of an
 * IterationSize accumulation, the accumulated gradients.  The shuffle and the
 * random transformations are not stored: they are functions of (seed, epoch)
 * and, for the transformations, the image (per-image generators, data.h).
 * rng_data is kept in the format (version 2 unchanged) but written as zeros
 * and not read: a checkpoint of an earlier build still resumes, its data
 * draws then being the per-image ones.  One little-endian binary file:
 *
 *   "QCCKPT01" | u32 version | u32 n_groups | i64 epochs_done | u64 seed |
 *   i64 n_state | i64 n_opt | i32 best_epoch | f64 best_acc | u32 has_best |
 *   version >= 2:   i64 batches_done | i64 batch | i64 n_learn |
 *                   u64 rng_data[4] | u64 rng_drop[4] | f64 loss_sum |
 *                   i64 correct | i64 n_grads |
 *   version >= 3:   char valid_metric[32] (the --valid-metric name, NUL-padded) |
 *   n_groups x (i64 updates, i64 samples, i64 pass) |
 *   f32 state[n_state] | f32 opt[n_opt] | f32 best[n_state] if has_best |
 *   f32 grads[n_grads] |
 *   u32 crc32 of everything before it
 *
 * written atomically (fileio.h: a SIGKILL at any moment leaves the previous
 * checkpoint or the new one, never a mix).  Reading checks the magic, the
 * version (1, end-of-epoch only, and 2, without the metric name, are still
 * read), the sizes against the
 * current plan (a checkpoint of another model or recipe is refused) and the
 * CRC; any failure is one error line naming the file.
 */
#ifndef QATCONV_SRC_TRAIN_CHECKPOINT_H
#define QATCONV_SRC_TRAIN_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "util/qc.h"
#include "solver.h"

struct qc_checkpoint {
    int64_t                epochs_done;
    int64_t                batches_done;  /* of epoch epochs_done + 1; 0 at its start */
    int64_t                batch;         /* the run's batch size and learn images,   */
    int64_t                n_learn;       /* which fix the batches of an epoch        */
    uint64_t               seed;
    uint64_t rng_data[4]; /* unused (zeros): per-image data draws     */
    uint64_t               rng_drop[4];
    double                 loss_sum;      /* the epoch's loss sum and hits so far     */
    int64_t                correct;
    int32_t                best_epoch;
    double best_acc;       /* in the unit of valid_metric              */
    char valid_metric[32]; /* "Top1", "F1Score"...; "" before version 3 */
    int                    n_groups;
    struct qc_solver_step *steps;     /* n_groups                      */
    int64_t                n_state;
    float                 *state;     /* host, n_state                 */
    int64_t                n_opt;
    float                 *opt;       /* host, n_opt                   */
    bool                   has_best;
    float                 *best;      /* host, n_state (when has_best) */
    int64_t                n_grads;   /* 0, or the plan's trainable floats       */
    float                 *grads;     /* host, n_grads                 */
};

enum qc_status qc_checkpoint_write(const char *path, const struct qc_checkpoint *c);
/* Reads into c's buffers, whose sizes (n_groups, n_state, n_opt) must match
 * the file's; c->n_grads is the capacity of c->grads on entry (the plan's
 * trainable floats), the file's count (0 or that) on return.  Errors name
 * the file: QC_ERR_DATA. */
enum qc_status qc_checkpoint_read(const char *path, struct qc_checkpoint *c);

#endif
