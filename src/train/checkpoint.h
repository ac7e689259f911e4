/*
 * checkpoint.h - the training state saved at the end of an epoch, so that
 * --resume continues exactly: epochs done, seed, solver counters, the plan's
 * state array (parameters and BatchNorm buffers), the optimizer state, and
 * the best-validation weights.  One little-endian binary file:
 *
 *   "QCCKPT01" | u32 version | u32 n_groups | i64 epochs_done | u64 seed |
 *   i64 n_state | i64 n_opt | i32 best_epoch | f64 best_acc | u32 has_best |
 *   n_groups x (i64 updates, i64 samples, i64 pass) |
 *   f32 state[n_state] | f32 opt[n_opt] | f32 best[n_state] if has_best |
 *   u32 crc32 of everything before it
 *
 * written atomically (fileio.h).  Reading checks the magic, the version, the
 * sizes against the current plan (a checkpoint of another model or recipe is
 * refused) and the CRC.
 */
#ifndef QATCONV_SRC_TRAIN_CHECKPOINT_H
#define QATCONV_SRC_TRAIN_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "../qc.h"
#include "solver.h"

struct qc_checkpoint {
    int64_t                epochs_done;
    uint64_t               seed;
    int32_t                best_epoch;
    double                 best_acc;
    int                    n_groups;
    struct qc_solver_step *steps;     /* n_groups                      */
    int64_t                n_state;
    float                 *state;     /* host, n_state                 */
    int64_t                n_opt;
    float                 *opt;       /* host, n_opt                   */
    bool                   has_best;
    float                 *best;      /* host, n_state (when has_best) */
};

enum qc_status qc_checkpoint_write(const char *path, const struct qc_checkpoint *c);
/* Reads into c's buffers, whose sizes (n_groups, n_state, n_opt) must match
 * the file's.  Errors name the file: QC_ERR_DATA. */
enum qc_status qc_checkpoint_read(const char *path, struct qc_checkpoint *c);

#endif
