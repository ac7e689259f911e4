/*
 * tensor_pb.h - internal helpers of onnx/: conversion between protobuf-c
 * TensorProto messages and struct qc_tensor, and the unfinalized model
 * reader shared by load.c and the tests.  Only the onnx/ sources and
 * tests/test_onnx_io.c include this header (it exposes Onnx__* types).
 *
 * Tensors are written as raw_data in little-endian order, which is the host
 * order on every platform qatconv supports (checked at compile time).
 */
#ifndef QATCONV_ONNX_TENSOR_PB_H
#define QATCONV_ONNX_TENSOR_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"

#include "ir/graph.h"
#include "util/qc.h"
#include "ir/tensor.h"

/* Converts tp into a new owned tensor (free with qc_tensor_free).  Data comes
 * from raw_data, the typed field that the ONNX spec assigns to the element
 * type, or an external file (data_location = EXTERNAL) resolved against
 * base_dir (NULL: external data is an error).  `path` names the model file in
 * messages.  A size mismatch or bad external reference is QC_ERR_ONNX, an
 * element type qatconv cannot hold is QC_ERR_UNSUPPORTED; both name the
 * tensor. */
enum qc_status qc_tensor_from_pb(const Onnx__TensorProto *tp, const char *path,
                                 const char *base_dir, struct qc_tensor **out);

/* Fills *tp (initialised here) with t as raw_data.  tp BORROWS name, t's dims
 * and t's data: t must outlive tp, and tp must not be freed with the
 * protobuf-c free functions.  A 4-bit tensor is packed, and a float32 tensor
 * with a half-precision file_dtype narrowed, into `packed`
 * (qc_tensor_pb_nbytes(t) bytes, owned by the caller, borrowed by tp; see
 * qc_tensor_pb_needs_buffer); other tensors ignore it (may be NULL). */
void qc_tensor_to_pb(const struct qc_tensor *t, const char *name, uint8_t *packed,
                     Onnx__TensorProto *tp);
/* Whether qc_tensor_to_pb needs the `packed` buffer for t. */
bool qc_tensor_pb_needs_buffer(const struct qc_tensor *t);
/* Bytes of t's raw_data in an ONNX file (ceil(n/2) for int4/uint4, 2n for
 * half precision). */
size_t qc_tensor_pb_nbytes(const struct qc_tensor *t);
/* Packs a 4-bit tensor two elements per byte, first in the low nibble. */
void qc_tensor_pack4(const struct qc_tensor *t, uint8_t *dst);

/* Parses a serialized ModelProto into a new graph without calling
 * qc_graph_finalize (qc_onnx_load_buffer = this + finalize). */
enum qc_status qc_onnx_parse(const void *buf, size_t len, const char *path,
                             const char *base_dir, struct qc_graph **out);

/* Reads a whole file into a new buffer (qc_free).  Errors are logged as
 * "<path>: ..." and returned as QC_ERR_ONNX (input files). */
enum qc_status qc_onnx_read_file(const char *path, void **buf, size_t *len);

#endif
