#!/usr/bin/env python3
"""gen_node_tests.py - writes the ONNX backend node test cases that qatconv can run.

Usage:
    python3 tests/gen_node_tests.py OUTDIR [--ops-def src/ops/ops.def] [--no-verify] [-v]
                                           [--max-opset 23]

Takes the node test cases shipped in the PyPI onnx package
(onnx.backend.test.case.node.collect_testcases) and keeps a case only when
  - every node (also inside the "_expanded" function bodies) is a default-domain op listed in
    src/ops/ops.def, with no graph-valued attribute,
  - every graph input/output and every inferred intermediate value is a tensor of a type qatconv
    holds (float32/64, [u]int8/16/32/64, bool, [u]int4), and so is every data array (cases whose
    types an op does not support are run by qatconv anyway and reported as skipped, with the
    reason, when it refuses them),
  - the model's default-domain opset is at most --max-opset (qatconv loads 7..23), or every op
    in it has the same signature (attributes, inputs, outputs) at --max-opset as at the model's
    opset (opsets 24/25 mostly added tensor types), or uses only attributes the op has at
    --max-opset (Cast cases, which leave Cast-25's round_mode unset): such a model is relabelled
    to --max-opset
    and, like every case, verified in ONNX Runtime at that opset.
Each kept case is written in the backend-test layout:
    OUTDIR/<case>/model.onnx
    OUTDIR/<case>/test_data_set_<N>/input_<K>.pb, output_<K>.pb   (TensorProto, named)
and OUTDIR/LIST lists the case names, one per line.  Unless --no-verify, each model is also
checked with onnx.checker (full_check) and run in ONNX Runtime against the expected outputs;
cases that ORT cannot run or disagrees on are dropped.  Nothing is dropped silently:
OUTDIR/DROPPED names every case of the onnx package that was not written, one per line as
"<case> <reason>" (sorted, after one "# onnx ... onnxruntime ... numpy ..." line), and
tests/test_ops.c compares it with the checked-in tests/node_tests_dropped.expect, so a case
that a new onnx or onnxruntime drops (or keeps) fails the test until that list is updated.
-v also prints each drop as it happens.
"""
import argparse
import os
import re
import shutil
import sys
import warnings

import numpy as np

# TensorProto codes qatconv holds: FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, BOOL, DOUBLE,
# UINT32, UINT64, UINT4, INT4
OK_ELEM = (1, 2, 3, 4, 5, 6, 7, 9, 11, 12, 13, 21, 22)
OK_DTYPES = (np.float32, np.float64, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64,
             np.uint32, np.uint64, np.bool_)
OK_DTYPE_NAMES = ("int4", "uint4")     # ml_dtypes types (numpy has none)


# Cases ONNX Runtime refuses to run although the spec allows them and qatconv supports them;
# they are kept with the ONNX package's own (numpy reference) outputs as the oracle.
ORT_REFUSES = {
    # per-output-channel w_zero_point: "Non per-tensor quantization is not supported now."
    "test_convinteger_with_padding": "Non per-tensor quantization is not supported",
}


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


def node_fits(node, hi, lo):
    """True when node, written for opset hi, uses only attributes and input/output slots that
    op's schema at opset lo has (e.g. Cast-25 test cases, which do not set Cast-25's new
    round_mode attribute).  The types are then checked by ONNX Runtime at opset lo."""
    import onnx
    b = onnx.defs.get_schema(node.op_type, lo)
    if any(a.name not in b.attributes for a in node.attribute):
        return False
    a = onnx.defs.get_schema(node.op_type, hi)
    return ([i.name for i in a.inputs] == [i.name for i in b.inputs] and
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
                if not (same_signature(n.op_type, imp.version, max_opset) or
                        node_fits(n, imp.version, max_opset)):
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
            # and the IR version of that opset's release (IR 14 came with opset 25)
            m.ir_version = min(m.ir_version, onnx.helper.find_min_ir_version_for(
                [onnx.helper.make_opsetid("", max_opset)]))
    for inputs, outputs in case.data_sets:
        for a in list(inputs) + list(outputs):
            if isinstance(a, onnx.TensorProto):
                if a.data_type not in OK_ELEM:
                    return "data dtype"
            elif not isinstance(a, (np.ndarray, np.generic)) or (
                    a.dtype.type not in OK_DTYPES and a.dtype.name not in OK_DTYPE_NAMES):
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
    names = [i.name for i in case.model.graph.input]
    for inputs, outputs in case.data_sets:
        model, feeds, outputs = ort_view(case.model, names, inputs, outputs)
        sess = ort.InferenceSession(model.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
        got = sess.run(None, feeds)
        for k, (g, e) in enumerate(zip(got, outputs)):
            np.testing.assert_allclose(g, e, rtol=max(case.rtol, 1e-5), atol=max(case.atol, 1e-6))
            e = np.asarray(e)
            if e.dtype.kind == "f" and e.size:
                rel = np.max(np.abs(g - e)) / max(np.max(np.abs(e)), 1e-30)
                if rel > 1e-5:
                    replace_reference(d, case, k, g)


def as_array(a):
    from onnx import numpy_helper
    return numpy_helper.to_array(a) if hasattr(a, "data_type") else np.asarray(a)


def is_4bit(a):
    return getattr(a, "data_type", None) in (21, 22) or np.asarray(a).dtype.name in OK_DTYPE_NAMES


def ort_view(model, names, inputs, outputs):
    """The model, feeds and expected outputs to run in ONNX Runtime, whose Python API takes and
    returns no int4/uint4 arrays: 4-bit inputs become initializers, 4-bit outputs are Cast to
    int8/uint8 (their expected values likewise)."""
    import onnx
    from onnx import helper, numpy_helper
    if not any(is_4bit(a) for a in list(inputs) + list(outputs)):
        return model, {n: as_array(a) for n, a in zip(names, inputs)}, [as_array(e) for e in outputs]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    feeds = {}
    for n, a in zip(names, inputs):
        if is_4bit(a):
            t = a if hasattr(a, "data_type") else numpy_helper.from_array(np.asarray(a))
            t = onnx.TensorProto.FromString(t.SerializeToString())
            t.name = n
            m.graph.initializer.append(t)
            for i, vi in enumerate(m.graph.input):
                if vi.name == n:
                    del m.graph.input[i]
                    break
        else:
            feeds[n] = as_array(a)
    want = []
    for k, e in enumerate(outputs):
        o = m.graph.output[k]
        if is_4bit(e):
            to = 3 if o.type.tensor_type.elem_type == 22 else 2
            m.graph.node.append(helper.make_node("Cast", [o.name], [o.name + "_8"], to=to))
            o.name = o.name + "_8"
            o.type.tensor_type.elem_type = to
            e = as_array(e).astype(np.int8 if to == 3 else np.uint8)
        want.append(as_array(e))
    return m, feeds, want


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
                f.write(to_pb(a, vi.name).SerializeToString())
        for k, (vi, a) in enumerate(zip(g.output, outputs)):
            with open(os.path.join(td, "output_%d.pb" % k), "wb") as f:
                f.write(to_pb(a, vi.name).SerializeToString())


def to_pb(a, name):
    """A data array (numpy, or a TensorProto as the Cast cases give) as a named TensorProto."""
    import onnx
    from onnx import numpy_helper
    if hasattr(a, "data_type"):
        t = onnx.TensorProto.FromString(a.SerializeToString())
        t.name = name
        return t
    return numpy_helper.from_array(np.asarray(a), name)


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
    dropped = []
    seen = set()
    for case in sorted(cases, key=lambda c: c.name):
        if case.kind != "node":
            dropped.append((case.name, "kind %s" % case.kind))
            continue
        if case.name in seen:
            dropped.append((case.name, "duplicate case name (the first one is used)"))
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
                    msg = str(e).strip()
                    if case.name in ORT_REFUSES and ORT_REFUSES[case.name] in msg:
                        print("keep %s: ONNX Runtime refuses it (%s); oracle: the ONNX "
                              "reference outputs" % (case.name, ORT_REFUSES[case.name]))
                    else:
                        why = "ORT/checker: %s" % msg.splitlines()[0][:160]
                        shutil.rmtree(d)
        if why is None:
            kept.append(case.name)
        else:
            dropped.append((case.name, why))
            if args.verbose:
                print("drop %s: %s" % (case.name, why))
    with open(os.path.join(args.outdir, "LIST"), "w") as f:
        for name in kept:
            f.write(name + "\n")
    write_dropped(os.path.join(args.outdir, "DROPPED"), dropped, args.verify)
    print("gen_node_tests: %d cases written to %s (%d dropped, listed in DROPPED)" %
          (len(kept), args.outdir, len(dropped)))
    return 0


def write_dropped(path, dropped, verified):
    """One "<case> <reason>" line per dropped case, sorted, after a line naming the oracle
    versions (the list depends on them, not on the machine).  A reason is kept to one line of
    at most 160 characters with runs of white space folded."""
    import onnx
    try:
        import onnxruntime
        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = "none"
    with open(path, "w") as f:
        f.write("# onnx %s onnxruntime %s numpy %s%s\n" %
                (onnx.__version__, ort_version, np.__version__,
                 "" if verified else " (--no-verify)"))
        for name, why in sorted(dropped):
            f.write("%s %s\n" % (name, " ".join(str(why).split())[:160]))


if __name__ == "__main__":
    sys.exit(main())
