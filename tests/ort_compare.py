#!/usr/bin/env python3
"""ort_compare.py A.onnx B.onnx: B must be A written back by qatconv.
ort_compare.py --list FILE: the same for every line "NAME A.onnx B.onnx" of FILE, in one
process (importing onnx and onnxruntime once), printing "ok NAME: ..." or "FAIL NAME: ..."
per line and exiting 1 when any pair fails.

Checks B with onnx.checker (full_check), compares ir_version, opset imports,
producer, graph name, metadata, node names/op types/attributes, initializer
values, graph input/output names and types, then runs both in ONNX Runtime
(one thread) on the same random inputs (batch 2 for a symbolic batch axis)
and requires bit-identical outputs."""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def run(path, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def attr_key(at):
    """An attribute as comparable data: tensors by name, type and values (the
    writer may store typed fields as raw_data)."""
    v = onnx.helper.get_attribute_value(at)
    if isinstance(v, onnx.TensorProto):
        arr = numpy_helper.to_array(v)
        v = (v.name, v.data_type, tuple(v.dims), arr.tobytes())
    elif isinstance(v, list):
        v = tuple(v)
    return (at.name, at.type, repr(v))


def compare(a_path, b_path):
    """Raises AssertionError (or an onnx/onnxruntime error) where B is not A written
    back; returns the summary line."""
    a, b = onnx.load(a_path), onnx.load(b_path)
    onnx.checker.check_model(b, full_check=True)
    assert a.ir_version == b.ir_version, "ir_version"
    assert [(o.domain, o.version) for o in a.opset_import] == \
        [(o.domain, o.version) for o in b.opset_import], "opset_import"
    assert (a.producer_name, a.producer_version, a.model_version, a.domain) == \
        (b.producer_name, b.producer_version, b.model_version, b.domain), "producer"
    assert a.graph.name == b.graph.name, "graph name"
    assert [(p.key, p.value) for p in a.metadata_props] == \
        [(p.key, p.value) for p in b.metadata_props], "metadata_props"
    assert [i.name for i in a.graph.input] == [i.name for i in b.graph.input], "inputs"
    assert [o.name for o in a.graph.output] == [o.name for o in b.graph.output], "outputs"
    for x, y in zip(a.graph.input, b.graph.input):
        assert x.type == y.type, f"input type {x.name}"
    assert len(a.graph.node) == len(b.graph.node), "node count"
    na = sorted((n.name, n.op_type, n.domain, tuple(n.input), tuple(n.output),
                 tuple(sorted(attr_key(at) for at in n.attribute))) for n in a.graph.node)
    nb = sorted((n.name, n.op_type, n.domain, tuple(n.input), tuple(n.output),
                 tuple(sorted(attr_key(at) for at in n.attribute))) for n in b.graph.node)
    assert na == nb, "nodes differ"
    ia = {t.name: numpy_helper.to_array(t) for t in a.graph.initializer}
    ib = {t.name: numpy_helper.to_array(t) for t in b.graph.initializer}
    assert ia.keys() == ib.keys(), "initializer names"
    for k in ia:
        assert ia[k].dtype == ib[k].dtype and np.array_equal(ia[k], ib[k]), f"initializer {k}"

    rng = np.random.default_rng(0)
    init_names = set(ia)
    feeds = {}
    for i in a.graph.input:
        if i.name in init_names:
            continue
        dims = [d.dim_value if d.dim_value > 0 else 2 for d in i.type.tensor_type.shape.dim]
        elem = onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
        feeds[i.name] = rng.standard_normal(dims).astype(elem)
    ra, rb = run(a_path, feeds), run(b_path, feeds)
    for k, (x, y) in enumerate(zip(ra, rb)):
        assert x.dtype == y.dtype and x.shape == y.shape, f"output {k} type/shape"
        assert np.array_equal(x, y, equal_nan=True), f"output {k} differs"
    return f"identical ({len(ra)} outputs, {len(b.graph.node)} nodes)"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--list":
        failed = 0
        with open(sys.argv[2]) as f:
            pairs = [line.split() for line in f if line.strip()]
        for name, a_path, b_path in pairs:
            try:
                print(f"ok {name}: {compare(a_path, b_path)}", flush=True)
            except Exception as e:  # noqa: BLE001 - any failure is this pair's FAIL line
                msg = " ".join(str(e).split())[:300] or type(e).__name__
                print(f"FAIL {name}: {type(e).__name__}: {msg}", flush=True)
                failed += 1
        sys.exit(1 if failed else 0)
    if len(sys.argv) != 3:
        sys.exit("usage: ort_compare.py A.onnx B.onnx | --list FILE")
    print(compare(sys.argv[1], sys.argv[2]))


if __name__ == "__main__":
    main()
