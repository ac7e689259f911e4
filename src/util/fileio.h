/*
 * fileio.h - atomic file output shared by the ONNX writer and checkpoints.
 */
#ifndef QATCONV_SRC_FILEIO_H
#define QATCONV_SRC_FILEIO_H

#include <stddef.h>

#include "qc.h"

/* Writes len bytes to path atomically (temporary file, fsync, rename,
 * directory fsync): path holds its old content or the new one, whole, even
 * if the process is killed; see fileio.c for the temporary's name and the
 * test-only QATCONV_TEST_WRITE_PAUSE hook.  Errors name the path; QC_ERR_IO. */
enum qc_status qc_write_file_atomic(const char *path, const void *buf, size_t len);

/* The directory part of path ("." when there is none); free with qc_free. */
char *qc_path_dirname(const char *path);

#endif
