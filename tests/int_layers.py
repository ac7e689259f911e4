#!/usr/bin/env python3
"""int_layers.py - ONNX Runtime reference for every integer tensor of a model.

    int_layers.py [--input X.pb] MODEL.onnx N OUTDIR
                                           write the reference
    int_layers.py --verify [-n N] OUTDIR...
                                           recompute each (on the first N images) and compare

Writes OUTDIR/model.onnx: MODEL with every integer tensor computed inside the
graph added as a graph output (types from shape inference), OUTDIR/input_0.pb:
the first N Fashion-MNIST test images scaled to [0, 1] (with --input, the first
N images of the tensor in X.pb instead: any input shape), in the model's input
type (float16 for a float16 model), and
OUTDIR/output_<i>.pb: what ONNX Runtime (CPU, default session options)
computes for each output.  tests/run_model then runs the same model in
qatconv and compares every output exactly.  A model whose input has a fixed
batch b runs N/b times on b images (N a multiple of b); outputs that carry
the batch (dim 0 = b) are concatenated, as tests/run_model does.

Memory: every integer tensor of N images at once takes gigabytes on a 224x224
model (VGG-19: 13 GB for 8 images).  The write mode first runs one image and
sizes the runs from what it returned: when all N images fit BUDGET bytes of
outputs it runs them at once as above; else it runs them a few at a time
(chunks of a multiple of the fixed batch, if any), compares each chunk under
both option sets, appends it to OUTDIR/output_<i>.pb (TensorProto fields
written in SerializeToString's order, the raw data streamed) and frees it.
An output carries the batch when its dim 0 is the number of images at 1 and
at 2 images (a fixed batch: at b); one that does not (a Shape of the input,
say) comes from a run on all N images that asks ONNX Runtime for those
outputs only.  The same tensors, images and exact comparisons as one run.

Both modes also run the model with session.x64quantprecision=1 (ONNX
Runtime's option that avoids its saturating int16 pairwise sums of uint8 x
int8 products on x86 CPUs without VNNI) and require every integer to be equal
under both option sets.  --verify recomputes on the CPU it runs on (the test
runs it under qemu-x86_64 -cpu Haswell, an AVX2 CPU without AVX-512 or VNNI)
and requires the stored reference exactly; a difference prints the tensor and
its first differing element.
"""
import gzip
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper, shape_inference

DATA = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
INTS = {TensorProto.UINT8, TensorProto.INT8, TensorProto.INT16, TensorProto.UINT16,
        TensorProto.INT32, TensorProto.INT64, TensorProto.UINT32, TensorProto.UINT64}
OPTION_SETS = {"default": {}, "x64quantprecision=1": {"session.x64quantprecision": "1"}}
BUDGET = int(os.environ.get("QC_INT_LAYERS_BUDGET", 256 << 20))   # bytes of outputs per run


def session(path, config):
    so = ort.SessionOptions()
    for k, v in config.items():
        so.add_session_config_entry(k, v)
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def run(path, x, config, sess=None):
    sess = sess or session(path, config)
    names = [o.name for o in sess.get_outputs()]
    inp = sess.get_inputs()[0]
    b = inp.shape[0] if inp.shape and isinstance(inp.shape[0], int) else 0
    if b < 1 or len(x) == b or len(x) % b:
        return names, sess.run(None, {inp.name: x})
    # a fixed batch: len(x) / b runs, the outputs that carry the batch concatenated
    runs = [sess.run(None, {inp.name: x[i:i + b]}) for i in range(0, len(x), b)]
    outs = []
    for k in range(len(names)):
        parts = [np.asarray(r[k]) for r in runs]
        outs.append(np.concatenate(parts) if parts[0].ndim and parts[0].shape[0] == b
                    else parts[-1])
    return names, outs


def compare(names, ref, got, what):
    """Number of differing integer tensors, each reported."""
    bad = 0
    for name, r, g in zip(names, ref, got):
        r, g = np.asarray(r), np.asarray(g)
        if r.dtype.kind not in "iu":
            continue
        if r.shape != g.shape or not np.array_equal(r, g):
            bad += 1
            if r.shape != g.shape:
                print("int_layers: %s: %s: shape %s vs %s" % (what, name, r.shape, g.shape))
                continue
            idx = np.argwhere(r != g)
            first = tuple(int(i) for i in idx[0])
            print("int_layers: %s: %s: %d of %d elements differ, first at %s: %d vs %d"
                  % (what, name, len(idx), r.size, first, int(r[first]), int(g[first])))
    return bad


def check_options(path, x, names, ref):
    """Every other option set must give the reference's integers."""
    bad = 0
    for label, config in OPTION_SETS.items():
        if config:
            _, got = run(path, x, config)
            bad += compare(names, ref, got, label)
    return bad


def write(path, n, out, input_pb=None):
    model = onnx.load(path)
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    have = {o.name for o in model.graph.output}
    inits = {t.name for t in model.graph.initializer}
    added = 0
    for vi in inferred.graph.value_info:
        if vi.name in have or vi.name in inits or vi.type.tensor_type.elem_type not in INTS:
            continue
        model.graph.output.append(vi)
        added += 1
    os.makedirs(out, exist_ok=True)
    mpath = os.path.join(out, "model.onnx")
    onnx.save(model, mpath)
    if input_pb:
        x = load_pb(input_pb)[:n]
    else:
        with gzip.open(os.environ.get("QC_TEST_IMAGES", DATA)) as f:
            raw = f.read()
        x = (np.frombuffer(raw[16:], np.uint8).reshape(-1, 1, 28, 28)[:n].astype(np.float32)
             / 255.0)
    # in the model's input type (a float16 model reads float16 images)
    elem = next(i for i in model.graph.input
                if i.name not in inits).type.tensor_type.elem_type
    x = x.astype(helper.tensor_dtype_to_np_dtype(elem))
    with open(os.path.join(out, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x).SerializeToString())
    step = chunk_size(mpath, x)
    if step >= len(x):
        names, res = run(mpath, x, {})
        for i, r in enumerate(res):
            with open(os.path.join(out, "output_%d.pb" % i), "wb") as f:
                f.write(numpy_helper.from_array(np.asarray(r)).SerializeToString())
        bad = check_options(mpath, x, names, res)
    else:
        bad = write_chunked(mpath, x, step, out)
    print("int_layers: %s: %d integer tensors + %d outputs on %d images (onnxruntime %s), "
          "equal under %s" % (path, added, len(have), n, ort.__version__,
                              " and ".join(OPTION_SETS)))
    return bad


def fixed_batch(sess, n):
    """The input's fixed dim 0 when the model runs n images in several passes of it, else 0."""
    shape = sess.get_inputs()[0].shape
    b = shape[0] if shape and isinstance(shape[0], int) else 0
    return b if b >= 1 and n != b and n % b == 0 else 0


def chunk_size(path, x):
    """Images per run so that one run's outputs take at most BUDGET bytes (a multiple of
    a fixed batch); len(x) when all of them fit."""
    sess = session(path, {})
    b = fixed_batch(sess, len(x)) or 1
    if len(x) <= b:
        return len(x)
    _, res = run(path, x[:b], {}, sess)
    per_run = sum(np.asarray(r).nbytes for r in res)
    del res
    return max(1, BUDGET // max(per_run, 1)) * b


def carries_batch(path, x, b):
    """For each output: whether its dim 0 is the number of images (at b and at 2b
    images; a fixed batch b: at b)."""
    sess = session(path, {})
    _, one = run(path, x[:b], {}, sess)
    flags = [r.ndim > 0 and r.shape[0] == b for r in map(np.asarray, one)]
    del one
    if not fixed_batch(sess, len(x)):
        _, two = run(path, x[:2 * b], {}, sess)
        flags = [f and r.ndim > 0 and r.shape[0] == 2 * b for f, r in zip(flags, two)]
    return flags


def pb_header(dtype, shape):
    """The TensorProto bytes before raw_data (fields 1 and 2, as SerializeToString
    orders them), then raw_data's tag and length: append the raw bytes to complete it."""
    t = TensorProto()
    t.dims.extend(shape)
    t.data_type = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    head, v = bytearray(t.SerializeToString() + b"\x4a"), n
    while True:
        head.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(head)


def write_chunked(path, x, step, out):
    """The reference of x in runs of step images (see the top of the file); the number
    of differing tensors."""
    b = fixed_batch(session(path, {}), len(x))
    flags = carries_batch(path, x, b or 1)
    sessions = {label: session(path, config) for label, config in OPTION_SETS.items()}
    names = [o.name for o in sessions["default"].get_outputs()]
    bad, shapes = 0, [None] * len(names)
    raws = [os.path.join(out, "output_%d.raw" % i) for i in range(len(names))]
    for i in range(len(names)):
        open(raws[i], "wb").close()
    for k in range(0, len(x), step):
        _, ref = run(path, x[k:k + step], {}, sessions["default"])
        for label, sess in sessions.items():
            if label != "default":
                _, got = run(path, x[k:k + step], {}, sess)
                bad += compare(names, ref, got, "%s, images %d.." % (label, k))
                del got
        for i, r in enumerate(ref):
            # a fixed batch's other outputs are the last pass's, as run() has them
            if flags[i] or (b and k + step >= len(x)):
                r = np.ascontiguousarray(r)
                shapes[i] = (r.dtype, ((len(x),) + r.shape[1:]) if flags[i] else r.shape)
                with open(raws[i], "ab" if flags[i] else "wb") as f:
                    f.write(r.tobytes())
        del ref
    rest = [names[i] for i in range(len(names)) if not flags[i]]
    if rest and not b:
        res = {}
        for label, sess in sessions.items():
            outs = sess.run(rest, {sess.get_inputs()[0].name: x})
            if label == "default":
                res = dict(zip(rest, outs))
            else:
                bad += compare(rest, [res[n] for n in rest], outs, label)
        for i in range(len(names)):
            if not flags[i]:
                r = np.ascontiguousarray(res[names[i]])
                shapes[i] = (r.dtype, r.shape)
                with open(raws[i], "wb") as f:
                    f.write(r.tobytes())
    for i in range(len(names)):
        with open(os.path.join(out, "output_%d.pb" % i), "wb") as f, open(raws[i], "rb") as g:
            f.write(pb_header(*shapes[i]))
            shutil.copyfileobj(g, f, 1 << 24)
        os.remove(raws[i])
    return bad


def load_pb(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def verify(out, n):
    mpath = os.path.join(out, "model.onnx")
    x = load_pb(os.path.join(out, "input_0.pb"))
    n_all = len(x)
    x = x[:n]
    names, got = run(mpath, x, {})
    ref = [load_pb(os.path.join(out, "output_%d.pb" % i)) for i in range(len(names))]
    # tensors along the batch axis are cut to the first N images
    ref = [r[:n] if r.ndim and r.shape[0] == n_all else r for r in ref]
    bad = compare(names, ref, got, "default") + check_options(mpath, x, names, ref)
    n_int = sum(np.asarray(r).dtype.kind in "iu" for r in ref)
    print("int_layers: verify %s: %d integer tensors on %d images, %s" %
          (out, n_int, len(x), "all equal" if not bad else "%d differ" % bad))
    return bad


def main():
    args = sys.argv[1:]
    if args[:1] == ["--verify"]:
        n = None
        if args[1:2] == ["-n"] and len(args) > 2:
            n = int(args[2])
            args = args[2:]
        if len(args) < 2:
            sys.exit(__doc__)
        bad = sum(verify(d, n) for d in args[1:])
    elif args[:1] == ["--input"] and len(args) == 5:
        bad = write(args[2], int(args[3]), args[4], args[1])
    elif len(args) == 3:
        bad = write(args[0], int(args[1]), args[2])
    else:
        sys.exit(__doc__)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
