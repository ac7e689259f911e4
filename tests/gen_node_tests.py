#!/usr/bin/env python3
"""gen_node_tests.py - writes the ONNX backend node test cases that qatconv can run.

Usage:
    python3 tests/gen_node_tests.py OUTDIR [--ops-def src/ops/ops.def] [--no-verify] [-v]
                                           [--max-opset 23]

Takes the node test cases shipped in the PyPI onnx package
(onnx.backend.test.case.node.collect_testcases) and keeps a case only when
  - every node (also inside the "_expanded" function bodies) is a default-domain op listed in
    src/ops/ops.def, with no graph-valued attribute,
  - every graph input/output and every inferred intermediate value is a float32 or int64 tensor,
    and every data array is float32 or int64,
  - the model's default-domain opset is at most --max-opset (qatconv loads 7..23), or every op
    in it has the same signature (attributes, inputs, outputs) at --max-opset as at the model's
    opset (opsets 24/25 mostly added tensor types): such a model is relabelled to --max-opset
    and, like every case, verified in ONNX Runtime at that opset.
Each kept case is written in the backend-test layout:
    OUTDIR/<case>/model.onnx
    OUTDIR/<case>/test_data_set_<N>/input_<K>.pb, output_<K>.pb   (TensorProto, named)
and OUTDIR/LIST lists the case names, one per line.  Unless --no-verify, each model is also
checked with onnx.checker (full_check) and run in ONNX Runtime against the expected outputs;
cases that ORT cannot run or disagrees on are dropped (-v says why).
"""
import argparse
import os
import re
import shutil
import sys
import warnings

import numpy as np

OK_ELEM = (1, 7)              # TensorProto.FLOAT, TensorProto.INT64
OK_DTYPES = (np.float32, np.int64)


def supported_ops(path):
    with open(path) as f:
        return set(re.findall(r'^\s*QC_OP\(\s*\w+\s*,\s*"(\w+)"', f.read(), re.M))


def value_ok(vi):
    t = vi.type
    return t.HasField("tensor_type") and t.tensor_type.elem_type in OK_ELEM


def same_signature(op, hi, lo):
    """True when op's schema at opset hi has the same attributes, inputs and outputs as at lo
    (later versions that only add tensor types, e.g. int4/float8 at opsets 24/25)."""
    import onnx
    a = onnx.defs.get_schema(op, hi)
    b = onnx.defs.get_schema(op, lo)
    if a.since_version == b.since_version:
        return True
    return (sorted(a.attributes) == sorted(b.attributes) and
            [i.name for i in a.inputs] == [i.name for i in b.inputs] and
            [o.name for o in a.outputs] == [o.name for o in b.outputs])


def case_ok(case, ops, max_opset):
    """Returns None when the case is usable, else a short reason.  A case above max_opset whose
    ops all keep their signature down to max_opset is relabelled to max_opset (in place)."""
    import onnx
    m = case.model
    for n in m.graph.node:
        if n.domain not in ("", "ai.onnx"):
            return "domain " + n.domain
        if n.op_type not in ops:
            return "op " + n.op_type
        for a in n.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                return "subgraph attribute"
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type not in OK_ELEM:
                return "tensor attribute dtype"
    for imp in m.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > max_opset:
            for n in m.graph.node:
                if not same_signature(n.op_type, imp.version, max_opset):
                    return "opset %d (%s changed)" % (imp.version, n.op_type)
    for t in m.graph.initializer:
        if t.data_type not in OK_ELEM:
            return "initializer dtype"
    for vi in list(m.graph.input) + list(m.graph.output):
        if not value_ok(vi):
            return "io type"
    try:
        inferred = onnx.shape_inference.infer_shapes(m)
        for vi in inferred.graph.value_info:
            if not value_ok(vi):
                return "intermediate type"
    except Exception as e:  # a case shape inference rejects is not one we want either
        return "shape inference: %s" % e
    for imp in m.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > max_opset:
            imp.version = max_opset
    for inputs, outputs in case.data_sets:
        for a in list(inputs) + list(outputs):
            if not isinstance(a, (np.ndarray, np.generic)) or a.dtype.type not in OK_DTYPES:
                return "data dtype"
        if len(inputs) != len(m.graph.input) or len(outputs) != len(m.graph.output):
            return "data count"
    return None


def verify(case, d):
    """Checker + ONNX Runtime run against the expected outputs (case tolerances).

    Some cases store hand-written expected values rounded to a few decimals
    (e.g. averagepool_2d_ceil_last_window_starts_on_pad: 4 decimals).  When
    ONNX Runtime agrees with such a reference within the case's tolerance but
    not within 1e-5 relative, the reference is too coarse for qatconv's 1e-4
    check: ONNX Runtime's output (an independent oracle too) is stored as the
    expected output instead, and the case is named in REFERENCE_FROM_ORT."""
    import onnx
    import onnxruntime as ort
    onnx.checker.check_model(onnx.load(os.path.join(d, "model.onnx")), full_check=True)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(d, "model.onnx"), so,
                                providers=["CPUExecutionProvider"])
    names = [i.name for i in case.model.graph.input]
    for inputs, outputs in case.data_sets:
        got = sess.run(None, {n: np.asarray(a) for n, a in zip(names, inputs)})
        for k, (g, e) in enumerate(zip(got, outputs)):
            np.testing.assert_allclose(g, e, rtol=max(case.rtol, 1e-5), atol=max(case.atol, 1e-6))
            e = np.asarray(e)
            if e.dtype.kind == "f" and e.size:
                rel = np.max(np.abs(g - e)) / max(np.max(np.abs(e)), 1e-30)
                if rel > 1e-5:
                    replace_reference(d, case, k, g)


def replace_reference(d, case, k, got):
    from onnx import numpy_helper
    name = case.model.graph.output[k].name
    with open(os.path.join(d, "test_data_set_0", "output_%d.pb" % k), "wb") as f:
        f.write(numpy_helper.from_array(np.asarray(got), name).SerializeToString())
    with open(os.path.join(os.path.dirname(d), "REFERENCE_FROM_ORT"), "a") as f:
        f.write("%s output %d\n" % (case.name, k))


def write_case(case, d):
    from onnx import numpy_helper
    os.makedirs(d)
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(case.model.SerializeToString())
    g = case.model.graph
    for i, (inputs, outputs) in enumerate(case.data_sets):
        td = os.path.join(d, "test_data_set_%d" % i)
        os.makedirs(td)
        for k, (vi, a) in enumerate(zip(g.input, inputs)):
            with open(os.path.join(td, "input_%d.pb" % k), "wb") as f:
                f.write(numpy_helper.from_array(np.asarray(a), vi.name).SerializeToString())
        for k, (vi, a) in enumerate(zip(g.output, outputs)):
            with open(os.path.join(td, "output_%d.pb" % k), "wb") as f:
                f.write(numpy_helper.from_array(np.asarray(a), vi.name).SerializeToString())


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--ops-def", default=os.path.join(here, "..", "src", "ops", "ops.def"))
    ap.add_argument("--max-opset", type=int, default=23)
    ap.add_argument("--no-verify", dest="verify", action="store_false",
                    help="skip the onnx.checker + ONNX Runtime check (on by default)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print why cases are dropped")
    args = ap.parse_args()

    ops = supported_ops(args.ops_def)
    if not ops:
        print("gen_node_tests: no ops found in %s" % args.ops_def, file=sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from onnx.backend.test.case import node
        cases = node.collect_testcases(None)

    if os.path.isdir(args.outdir):
        for name in os.listdir(args.outdir):
            p = os.path.join(args.outdir, name)
            if name.startswith("test_") and os.path.isdir(p):
                shutil.rmtree(p)
    os.makedirs(args.outdir, exist_ok=True)

    kept = []
    dropped = 0
    seen = set()
    for case in sorted(cases, key=lambda c: c.name):
        if case.kind != "node" or case.name in seen:
            continue
        seen.add(case.name)
        why = case_ok(case, ops, args.max_opset)
        if why is None:
            d = os.path.join(args.outdir, case.name)
            write_case(case, d)
            if args.verify:
                try:
                    verify(case, d)
                except Exception as e:
                    why = "ORT/checker: %s" % str(e).strip().splitlines()[0][:160]
                    shutil.rmtree(d)
        if why is None:
            kept.append(case.name)
        else:
            dropped += 1
            if args.verbose:
                print("drop %s: %s" % (case.name, why))
    with open(os.path.join(args.outdir, "LIST"), "w") as f:
        for name in kept:
            f.write(name + "\n")
    print("gen_node_tests: %d cases written to %s (%d dropped)" % (len(kept), args.outdir, dropped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
