/*
 * cuda_parity.h - the model half of tests/cuda_parity (cuda_parity_model.c).
 */
#ifndef QATCONV_TESTS_CUDA_PARITY_H
#define QATCONV_TESTS_CUDA_PARITY_H

#include "backend/backend.h"

/* CPU (`threads` threads) against `gpu` on the fixture models: forward,
 * backward and 20 training steps (accuracy, loss and the trained weights),
 * on Fashion-MNIST or, where it is not installed, the synthetic dataset.
 * Prints one line per check; returns the number of failed checks. */
int qc_parity_models(struct qc_backend *gpu, int threads);

#endif
