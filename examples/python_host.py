#!/usr/bin/env python3
"""Run an irc model from Python with the standard library only (ctypes).

    python3 examples/python_host.py BUILD_DIR WEIGHTS.safetensors ID [ID ...]

Loads BUILD_DIR/libirc_model.so (symbols irc_<name>_*, the prefix read from
BUILD_DIR/manifest.json), reads the safetensors file itself, fills every
parameter through the library's param_info table (name, shape, offset,
checked), runs forward on the token ids, and prints the most likely next
token:  top <id> <logit> <logit bits in hex>
"""
import ctypes
import json
import struct
import sys
from pathlib import Path


class ParamInfo(ctypes.Structure):  # irc_param_info in irc_model.h
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("ndim", ctypes.c_int),
        ("shape", ctypes.c_int64 * 4),
        ("offset", ctypes.c_size_t),
        ("numel", ctypes.c_size_t),
    ]


def read_safetensors(path):
    """name -> (dtype, shape, bytes), with the bounds checks a reader needs."""
    data = Path(path).read_bytes()
    if len(data) < 8:
        sys.exit(f"{path}: truncated: {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        sys.exit(f"{path}: truncated: header of {n} bytes, {len(data) - 8} follow")
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        if not 0 <= begin <= end <= len(body):
            sys.exit(f"{path}: tensor `{name}`: data_offsets {begin, end} outside {len(body)} bytes")
        out[name] = (t["dtype"], list(t["shape"]), body[begin:end])
    return out


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    build, weights, ids = Path(sys.argv[1]), sys.argv[2], [int(x) for x in sys.argv[3:]]
    prefix = json.loads((build / "manifest.json").read_text())["prefix"]
    lib = ctypes.CDLL(str((build / "libirc_model.so").resolve()))

    def fn(name, restype, *argtypes):
        f = getattr(lib, f"{prefix}_{name}")
        f.restype, f.argtypes = restype, list(argtypes)
        return f

    create = fn("create", ctypes.c_void_p, ctypes.c_int)
    destroy = fn("destroy", None, ctypes.c_void_p)
    last_error = fn("last_error", ctypes.c_char_p, ctypes.c_void_p)
    param_count = fn("param_count", ctypes.c_int)
    param_info = fn("param_info", ctypes.POINTER(ParamInfo), ctypes.c_int)
    params = fn("params", ctypes.POINTER(ctypes.c_float), ctypes.c_void_p)
    i32p = ctypes.POINTER(ctypes.c_int32)
    forward = fn("forward", ctypes.c_int, ctypes.c_void_p, i32p, ctypes.c_int, ctypes.c_int,
                 ctypes.POINTER(ctypes.c_float))

    m = create(0)
    if not m:
        sys.exit("out of memory")
    tensors = read_safetensors(weights)
    region = ctypes.cast(params(m), ctypes.c_void_p).value
    problems = []
    for i in range(param_count()):
        p = param_info(i).contents
        name, shape = p.name.decode(), list(p.shape[: p.ndim])
        if name not in tensors:
            problems.append(f"missing `{name}` {shape}")
            continue
        dtype, tshape, raw = tensors[name]
        if dtype != "F32" or tshape != shape:
            problems.append(f"`{name}` is {dtype} {tshape}, expected F32 {shape}")
            continue
        ctypes.memmove(region + 4 * p.offset, raw, 4 * p.numel)
    if problems:
        sys.exit(f"{weights}: weights do not fit the model:\n  " + "\n  ".join(problems))

    vocab = json.loads((build / "manifest.json").read_text())["vocab"]
    t = len(ids)
    tokens = (ctypes.c_int32 * t)(*ids)
    logits = (ctypes.c_float * (t * vocab))()
    if forward(m, tokens, 1, t, logits):
        sys.exit(last_error(m).decode())
    last = logits[(t - 1) * vocab : t * vocab]
    top = max(range(vocab), key=lambda v: (last[v], -v))  # first index on ties, as argmax
    bits = struct.unpack("<I", struct.pack("<f", last[top]))[0]
    print(f"top {top} {last[top]:.6f} {bits:08x}")
    destroy(m)


if __name__ == "__main__":
    main()
