"""Reader for MNIST-style IDX files (raw or gzipped), with strict validation."""

from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

import numpy as np

from edgekit.errors import DataError

# IDX type codes → numpy dtypes (big-endian as the format stores them).
MAX_IDX_BYTES = int(os.environ.get("EDGEKIT_MAX_DATA_BYTES", 4 << 30))
"""Largest decompressed IDX payload read (a tiny gzip must not expand into all memory)."""

_IDX_DTYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx_bytes(raw: bytes, name: str) -> np.ndarray:
    """Parse the bytes of an IDX file; ``name`` is used in error messages."""
    if len(raw) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{name}: wrong magic number 0x{raw[:4].hex()} (expected 0x000008NN for an IDX file)")
    ndim = raw[3]
    if ndim < 1 or ndim > 4:
        raise DataError(f"{name}: IDX header declares {ndim} dimensions (expected 1 to 4)")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{name}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[header_len:]
    if len(body) != expected:
        raise DataError(f"{name}: truncated or oversized IDX data ({len(body)} bytes, header {dims} needs {expected})")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gunzipping it when it is gzipped."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                raw = f.read(MAX_IDX_BYTES + 1)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{p}: corrupt gzip data ({e})") from None
        if len(raw) > MAX_IDX_BYTES:
            raise DataError(f"{p}: decompresses to more than {MAX_IDX_BYTES} bytes (EDGEKIT_MAX_DATA_BYTES)")
    return read_idx_bytes(raw, str(p))
