/*
 * onnx_io.h - reading and writing ONNX files.  The only interface between
 * protobuf-c (onnx/onnx.pb-c.h, generated at build time from the system's
 * onnx.proto) and the rest of qatconv, which sees struct qc_graph only.
 *
 * Supported: IR versions 3-13, default-domain opsets 7-23; initializers in
 * raw_data or typed fields (float_data, int64_data, int32_data, double_data,
 * uint64_data; int4/uint4 packed two per byte in raw_data or one packed byte
 * per int32_data entry, unpacked to one byte per element), and external data (data_location = EXTERNAL, paths relative to
 * the model's directory, offset/length honoured).  Names, doc strings,
 * producer, model version, opset imports, metadata_props, declared graph
 * input/output types with symbolic dims are kept and written back.
 */
#ifndef QATCONV_ONNX_ONNX_IO_H
#define QATCONV_ONNX_ONNX_IO_H

#include <stddef.h>

#include "ir/graph.h"
#include "util/qc.h"
#include "ir/tensor.h"

/* Reads and finalizes (qc_graph_finalize) a model.  Every error line names
 * the file.  A missing, unreadable, truncated or garbled file is QC_ERR_ONNX
 * (an input error: exit 2); unsupported IR/opset versions, dtypes and ops are
 * QC_ERR_UNSUPPORTED (all unsupported nodes listed in one line). */
enum qc_status qc_onnx_load(const char *path, struct qc_graph **out);

/* Reads and parses a model without finalizing it (the import layer checks
 * what it refuses first, src/import/import.h); errors as qc_onnx_load's. */
enum qc_status qc_onnx_parse_file(const char *path, struct qc_graph **out);

/* Same from memory; path is used for messages and base_dir for external
 * data (may be NULL: external data is then an error). */
enum qc_status qc_onnx_load_buffer(const void *buf, size_t len, const char *path,
                                   const char *base_dir, struct qc_graph **out);

/* Writes g to path atomically: a temporary file in the same directory,
 * fsync, rename.  On any failure the temporary is removed and path is left
 * untouched.  All tensors are written inline (raw_data). */
enum qc_status qc_onnx_save(const struct qc_graph *g, const char *path);

/* Reads a serialized TensorProto (ONNX test-data .pb file).  *name receives a
 * copy of its name (may be ""; free with qc_free) if name is non-NULL. */
enum qc_status qc_onnx_load_tensor(const char *path, struct qc_tensor **out, char **name);

#endif
