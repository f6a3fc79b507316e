"""Element types: names, sizes, and bf16 <-> f32 conversion on numpy arrays.

The canonical names are the ones the compiler and the kernel metadata use:
``"f16"``, ``"bf16"`` and ``"f32"``.  bf16 values are carried in numpy as
``uint16`` bit patterns (numpy has no bfloat16).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Element types the kernels support, by canonical name.
DTYPES: tuple[str, ...] = ("f16", "bf16", "f32")

_ITEMSIZE = {"f16": 2, "bf16": 2, "f32": 4}

_ALIASES = {
    "f16": "f16", "fp16": "f16", "float16": "f16", "half": "f16",
    "bf16": "bf16", "bfloat16": "bf16",
    "f32": "f32", "fp32": "f32", "float32": "f32", "float": "f32",
}

#: numpy storage type of each canonical dtype (bf16 is stored as its bit pattern).
STORAGE: dict[str, np.dtype] = {
    "f16": np.dtype("<f2"),
    "bf16": np.dtype("<u2"),
    "f32": np.dtype("<f4"),
}


def normalize_dtype(dtype: Any) -> str:
    """Return the canonical name (``f16``, ``bf16``, ``f32``) of ``dtype``.

    Accepts canonical names and common aliases (``"float16"``, ``"half"``,
    ``"bfloat16"`` ...), numpy dtypes (float16/float32), and PyTorch dtypes
    (``torch.bfloat16`` is recognised by its string form, so torch is not
    imported).  Raises ``TypeError`` for anything else.
    """
    if isinstance(dtype, str):
        name = dtype
    elif isinstance(dtype, (np.dtype, type)) and not isinstance(dtype, str):
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = str(dtype)
    else:
        name = str(dtype)
    name = name.strip().lower()
    if name.startswith("torch."):
        name = name[len("torch."):]
    canon = _ALIASES.get(name)
    if canon is None:
        raise TypeError(
            f"unsupported dtype {dtype!r}: gqa supports {', '.join(DTYPES)} "
            "(float16, bfloat16, float32)"
        )
    return canon


def itemsize(dtype: Any) -> int:
    """Bytes per element of ``dtype`` (any form :func:`normalize_dtype` accepts)."""
    return _ITEMSIZE[normalize_dtype(dtype)]


def bf16_to_f32(bits: Any) -> np.ndarray:
    """Decode bf16 bit patterns (``uint16`` array-like) to a float32 array (exact)."""
    b = np.asarray(bits)
    if b.dtype != np.uint16:
        if not np.issubdtype(b.dtype, np.integer):
            raise TypeError(f"bf16_to_f32 expects uint16 bit patterns, got dtype {b.dtype}")
        b = b.astype(np.uint16)
    return (b.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16(values: Any) -> np.ndarray:
    """Encode values as bf16 bit patterns (``uint16``), rounding to nearest even.

    The input is first converted to float32 (float64 inputs are thus rounded
    twice; pass float32 for a single correctly rounded step).  NaNs stay NaNs
    (quiet, sign kept); values beyond the bf16 range round to +-inf.
    """
    x = np.ascontiguousarray(values, dtype=np.float32)
    u = x.view(np.uint32)
    lsb = (u >> np.uint32(16)) & np.uint32(1)
    rounded = (u + np.uint32(0x7FFF) + lsb) >> np.uint32(16)
    nan = np.isnan(x)
    quiet_nan = (u >> np.uint32(16)) | np.uint32(0x0040)
    return np.where(nan, quiet_nan, rounded).astype(np.uint16)


def encode(values: Any, dtype: Any) -> np.ndarray:
    """Convert float values to the numpy storage array of ``dtype`` (bf16 -> uint16 bits)."""
    canon = normalize_dtype(dtype)
    if canon == "bf16":
        return f32_to_bf16(values)
    return np.asarray(values, dtype=STORAGE[canon])


def decode(raw: np.ndarray, dtype: Any) -> np.ndarray:
    """Convert a storage array of ``dtype`` to float32 (bf16 bit patterns are decoded)."""
    canon = normalize_dtype(dtype)
    if canon == "bf16":
        return bf16_to_f32(raw)
    return np.asarray(raw, dtype=STORAGE[canon]).astype(np.float32)
