"""st.py - minimal, strict safetensors reader/writer for numpy arrays and torch tensors.

Format: 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
padded with spaces to a multiple of 8, then the raw little-endian data (offsets relative to the
start of the data, tensors contiguous, no holes, no overlap).

    save(path, {name: array_or_tensor}, metadata=None)   # tensors written in sorted name order
    tensors, metadata = load(path)                       # numpy arrays (BF16 -> float32 numpy,
                                                         #   or torch.bfloat16 with torch_out=True)
    load_torch(path)                                     # torch tensors (keeps BF16)

F32, F64, F16, I32, I64, BOOL go through numpy; BF16 needs torch (numpy has no bfloat16).
Writing is deterministic: same tensors + metadata -> byte-identical file.
"""
import json
import os
import struct

import numpy as np

_NP = {  # safetensors dtype -> numpy dtype (little-endian)
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}
_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def _dtype_of_numpy(a):
    for k, v in _NP.items():
        if a.dtype == v or a.dtype == v.newbyteorder("="):
            return k
    raise TypeError("st.save: unsupported numpy dtype %s" % a.dtype)


def _to_bytes(t):
    """-> (dtype string, shape list, raw little-endian bytes)"""
    try:
        import torch
    except ImportError:  # numpy-only use
        torch = None
    if torch is not None and isinstance(t, torch.Tensor):
        t = t.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
            return "BF16", list(t.shape), raw
        tmap = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16",
                torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
                torch.uint8: "U8", torch.bool: "BOOL"}
        if t.dtype not in tmap:
            raise TypeError("st.save: unsupported torch dtype %s" % t.dtype)
        t = t.numpy()
    a = np.asarray(t)
    dt = _dtype_of_numpy(a)
    shape = list(a.shape)  # before ascontiguousarray, which makes 0-d arrays 1-d
    return dt, shape, np.ascontiguousarray(a.astype(_NP[dt], copy=False)).tobytes()


def save(path, tensors, metadata=None):
    """Write tensors (dict name -> numpy array / torch tensor) to path, atomically."""
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        if name == "__metadata__":
            raise ValueError("st.save: '__metadata__' is not a tensor name")
        dt, shape, raw = _to_bytes(tensors[name])
        n = 1
        for s in shape:
            n *= s
        assert len(raw) == n * _SIZE[dt], name
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata is not None:
        md = {}
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("st.save: metadata must map str to str (%r: %r)" % (k, v))
            md[k] = v
        header = {"__metadata__": md, **header}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_header(path):
    """-> (header dict without __metadata__, metadata dict, data start offset, file size)"""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError("%s: shorter than the 8-byte header length" % path)
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8 or n > 100 << 20:
            raise ValueError("%s: header length %d is past the end of the file" % (path, n))
        h = json.loads(f.read(n).decode("utf-8"))
    if not isinstance(h, dict):
        raise ValueError("%s: header is not a JSON object" % path)
    md = h.pop("__metadata__", {}) or {}
    spans = []
    for name, e in h.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise ValueError("%s: %s: bad entry %r" % (path, name, e))
        if e["dtype"] not in _SIZE:
            raise ValueError("%s: %s: unsupported dtype %s" % (path, name, e["dtype"]))
        numel = 1
        for s in e["shape"]:
            if not isinstance(s, int) or s < 0:
                raise ValueError("%s: %s: bad shape %r" % (path, name, e["shape"]))
            numel *= s
        b, en = e["data_offsets"]
        if en - b != numel * _SIZE[e["dtype"]]:
            raise ValueError("%s: %s: %d bytes for %d x %s" % (path, name, en - b, numel, e["dtype"]))
        spans.append((b, en, name))
    spans.sort()
    pos = 0
    for b, en, name in spans:
        if b != pos:
            raise ValueError("%s: %s: data at %d, expected %d (hole or overlap)" % (path, name, b, pos))
        pos = en
    if 8 + n + pos != size:
        raise ValueError("%s: data is %d bytes, file holds %d" % (path, pos, size - 8 - n))
    return h, md, 8 + n, size


def _load(path, want_torch):
    h, md, start, _ = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    out = {}
    for name, e in h.items():
        b, en = e["data_offsets"]
        buf = data[b:en]
        shape = tuple(e["shape"])
        if e["dtype"] == "BF16":
            import torch
            bits = np.frombuffer(buf, dtype="<i2").reshape(shape).copy()
            t = torch.from_numpy(bits).view(torch.bfloat16)
            out[name] = t if want_torch else t.float().numpy()
        else:
            a = np.frombuffer(buf, dtype=_NP[e["dtype"]]).reshape(shape).copy()
            if want_torch:
                import torch
                out[name] = torch.from_numpy(a)
            else:
                out[name] = a
    return out, md


def load(path):
    """-> ({name: numpy array}, metadata). BF16 tensors come back as float32 (exact)."""
    return _load(path, False)


def load_torch(path):
    """-> ({name: torch tensor}, metadata). BF16 stays torch.bfloat16."""
    return _load(path, True)


def dtypes(path):
    """-> {name: safetensors dtype string}"""
    h, _, _, _ = read_header(path)
    return {k: v["dtype"] for k, v in h.items()}
