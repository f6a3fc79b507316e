"""Validation of the kernel metadata JSON (docs/kernel-metadata.md).

:func:`validate_metadata` reads both kinds of kernel set: attention
(``"format": "gqa.kernel"``, ``version`` 3) and the merge of two partial
attention results (``"format": "gqa.merge_states"``, ``version`` 1).  It
checks the format, the version, every required key and its type, rejects
unknown keys, and checks the consistency rules of the document (group size,
mask/window, kernel roles and the parameters each role takes, the paged-KV
parameters ``block_table``/``num_pages`` iff ``config.page_size`` > 0; one
``merge`` kernel taking the six tensors of a merge).  It is as strict as the
runtime's own parser (``gqa_metadata_parse`` in lib/Runtime), so a kernel
Python accepts is one the runtime loads.  Errors are
:class:`~gqa.errors.MetadataError` naming the JSON path of the problem.
"""

from __future__ import annotations

import json
import math
import re
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Union

from .dtypes import DTYPES
from .errors import MetadataError
from .shapes import LAYOUTS

FORMAT = "gqa.kernel"
SUPPORTED_VERSIONS: tuple[int, ...] = (3,)
#: The format of a merge_states kernel set (versioned on its own).
MERGE_FORMAT = "gqa.merge_states"
MERGE_SUPPORTED_VERSIONS: tuple[int, ...] = (1,)

MASKS = ("none", "causal", "window")
KV_LENS_TYPES = ("none", "i32", "i64")
ROLES = ("main", "split", "combine")
GRID_SYMBOLS = ("batch", "seq_q", "seq_kv", "num_splits")
#: Parameter names and the types each may have.
PARAM_TYPES: dict[str, tuple[str, ...]] = {
    "q": ("ptr",), "k": ("ptr",), "v": ("ptr",), "out": ("ptr",),
    "kv_lens": ("ptr",), "block_table": ("ptr",),
    "partial_out": ("ptr",), "partial_lse": ("ptr",), "sinks": ("ptr",), "lse": ("ptr",),
    "cu_seqlens_q": ("ptr",), "cu_seqlens_k": ("ptr",), "total_q": ("i32", "i64"), "total_kv": ("i32", "i64"),
    "batch": ("i32", "i64"), "seq_q": ("i32", "i64"), "seq_kv": ("i32", "i64"),
    "num_pages": ("i32", "i64"), "num_splits": ("i32", "i64"),
}
#: The parameters a kernel of each role must take.
ROLE_PARAMS: dict[str, tuple[str, ...]] = {
    "main": ("q", "k", "v", "out"),
    # With one split, the split kernel writes ``out`` itself (the combine is not launched).
    "split": ("q", "k", "v", "out", "partial_out", "partial_lse", "num_splits"),
    "combine": ("partial_out", "partial_lse", "out"),
}
_SPLIT_ONLY_PARAMS = ("num_splits", "partial_out", "partial_lse")
#: The parameters of a paged kernel (config.page_size > 0): every main/split kernel takes them,
#: a combine kernel never does.
PAGED_PARAMS = ("block_table", "num_pages")
#: The optional features of config, each a parameter every kernel takes when the config has it (the
#: split kernel too: launched with one split it finalises the rows itself) and none takes otherwise.
FEATURE_PARAMS = ("sinks", "lse")
#: The parameters of a ragged batch (config.varlen): every kernel takes them.
VARLEN_PARAMS = ("cu_seqlens_q", "total_q")
#: The parameters of packed K/V (config.packed_kv): every main/split kernel takes them, a combine
#: kernel never does.
PACKED_KV_PARAMS = ("cu_seqlens_k", "total_kv")
_CHIP = re.compile(r"^sm_\d{2,4}[af]?$")
_BLOCK_LIMITS = (1024, 1024, 64)

_TOP_KEYS = ("format", "version", "chip", "ptx", "config", "tile", "split_kv", "kernels")
_CONFIG_KEYS = ("q_heads", "kv_heads", "group_size", "head_dim", "head_dim_v", "dtype", "layout", "mask",
                "window_left", "window_right", "scale", "softcap", "kv_lens", "page_size", "sinks", "lse", "varlen",
                "packed_kv", "batch", "seq_q", "seq_kv")
_TILE_KEYS = ("block_m", "block_n", "warps", "stages", "pack_gqa")
_KERNEL_KEYS = ("name", "role", "block", "dynamic_shared_memory_bytes", "static_shared_memory_bytes",
                "grid", "params")

_MERGE_TOP_KEYS = ("format", "version", "chip", "ptx", "config", "kernels")
_MERGE_CONFIG_KEYS = ("heads", "head_dim_v", "dtype", "layout", "varlen", "batch", "seq_q")
MERGE_ROLE = "merge"
MERGE_GRID_SYMBOLS = ("batch", "seq_q")
#: The parameters of a merge kernel and the types each may have; the six tensors are required.
MERGE_PARAM_TYPES: dict[str, tuple[str, ...]] = {
    "out_a": ("ptr",), "lse_a": ("ptr",), "out_b": ("ptr",), "lse_b": ("ptr",), "out": ("ptr",), "lse": ("ptr",),
    "batch": ("i32", "i64"), "seq_q": ("i32", "i64"),
}
MERGE_REQUIRED_PARAMS = ("out_a", "lse_a", "out_b", "lse_b", "out", "lse")
#: Each thread of the merge kernel moves this many consecutive values of a row: head_dim_v is a multiple.
MERGE_VALUES_PER_THREAD = 4


def _is_int(x: Any) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _is_num(x: Any) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> MetadataError:
        where = f"{self.source}: " if self.source else ""
        return MetadataError(f"{where}{path}: {message} (see docs/kernel-metadata.md)")

    def object(self, value: Any, path: str, keys: tuple[str, ...]) -> dict:
        """``value`` must be an object with only ``keys`` (each checked for presence by its reader)."""
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, got {type(value).__name__}")
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise self.fail(path, f"unknown keys {unknown} (allowed: {', '.join(keys)})")
        return value

    def get(self, obj: dict, key: str, path: str) -> Any:
        if key not in obj:
            raise self.fail(path, f"missing required key '{key}'")
        return obj[key]

    def str_(self, obj: dict, key: str, path: str, choices: tuple[str, ...] = ()) -> str:
        value = self.get(obj, key, path)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{path}.{key}", f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.fail(f"{path}.{key}", f"must be one of {list(choices)}, got {value!r}")
        return value

    def int_(self, obj: dict, key: str, path: str, minimum: int, *, maximum: int | None = None,
             nullable: bool = False, optional: bool = False) -> Any:
        if optional and key not in obj:
            return None
        value = self.get(obj, key, path)
        if value is None and nullable:
            return None
        if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
            kind = "an integer or null" if nullable else "an integer"
            bound = f">= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
            raise self.fail(f"{path}.{key}", f"must be {kind} {bound}, got {value!r}")
        return int(value)


def validate_metadata(meta: Any, source: str = "") -> dict:
    """Check ``meta`` (parsed JSON) against docs/kernel-metadata.md; return it unchanged.

    ``source`` (e.g. the file name) prefixes error messages.
    """
    c = _Checker(source)
    if not isinstance(meta, dict):
        raise c.fail("$", f"must be a JSON object, got {type(meta).__name__}")
    fmt = c.get(meta, "format", "$")
    if fmt not in (FORMAT, MERGE_FORMAT):
        raise c.fail("$.format", f"not a gqa kernel metadata file: format is {fmt!r}, expected {FORMAT!r} "
                                 f"(attention) or {MERGE_FORMAT!r}")
    merge = fmt == MERGE_FORMAT
    version = c.get(meta, "version", "$")
    if not _is_int(version):
        raise c.fail("$.version", f"must be an integer, got {version!r}")
    supported = MERGE_SUPPORTED_VERSIONS if merge else SUPPORTED_VERSIONS
    if version not in supported:
        raise c.fail(
            "$.version",
            f"version {version} is not supported by this gqa package (supports {list(supported)}"
            + (f" for format {fmt!r}" if merge else "")
            + "); recompile the kernel with a matching gqa-compile or update python/gqa",
        )
    c.object(meta, "$", _MERGE_TOP_KEYS if merge else _TOP_KEYS)
    chip = c.str_(meta, "chip", "$")
    if not _CHIP.match(chip):
        raise c.fail("$.chip", f"must look like sm_90 or sm_90a, got {chip!r}")
    c.str_(meta, "ptx", "$")
    if merge:
        _check_merge_config(c, c.object(c.get(meta, "config", "$"), "$.config", _MERGE_CONFIG_KEYS))
        _check_merge_kernels(c, c.get(meta, "kernels", "$"))
        return meta
    _check_config(c, c.object(c.get(meta, "config", "$"), "$.config", _CONFIG_KEYS))
    tile = c.object(c.get(meta, "tile", "$"), "$.tile", _TILE_KEYS)
    for key in _TILE_KEYS[:-1]:
        c.int_(tile, key, "$.tile", 1)
    if not isinstance(c.get(tile, "pack_gqa", "$.tile"), bool):
        raise c.fail("$.tile.pack_gqa", f"must be true or false, got {tile['pack_gqa']!r}")
    split = c.object(c.get(meta, "split_kv", "$"), "$.split_kv", ("max_splits",))
    max_splits = c.int_(split, "max_splits", "$.split_kv", 0, maximum=2**31 - 1)
    _check_kernels(c, c.get(meta, "kernels", "$"), max_splits, meta["config"])
    return meta


def _check_config(c: _Checker, cfg: dict) -> None:
    p = "$.config"
    q_heads = c.int_(cfg, "q_heads", p, 1)
    kv_heads = c.int_(cfg, "kv_heads", p, 1)
    group = c.int_(cfg, "group_size", p, 1)
    if q_heads % kv_heads or group != q_heads // kv_heads:
        raise c.fail(f"{p}.group_size", f"must equal q_heads / kv_heads = {q_heads} / {kv_heads}, got {group}")
    c.int_(cfg, "head_dim", p, 1)
    c.int_(cfg, "head_dim_v", p, 1)
    c.str_(cfg, "dtype", p, DTYPES)
    c.str_(cfg, "layout", p, LAYOUTS)
    mask = c.str_(cfg, "mask", p, MASKS)
    left = c.int_(cfg, "window_left", p, -1)
    right = c.int_(cfg, "window_right", p, -1)
    if mask == "none" and (left, right) != (-1, -1):
        raise c.fail(p, f"mask 'none' needs window_left = window_right = -1, got ({left}, {right})")
    if mask == "causal" and right not in (0, -1):
        raise c.fail(f"{p}.window_right", f"must be 0 or -1 with mask 'causal', got {right}")
    scale = c.get(cfg, "scale", p)
    if not _is_num(scale) or not math.isfinite(scale) or not scale > 0:
        raise c.fail(f"{p}.scale", f"must be a finite number > 0, got {scale!r}")
    softcap = c.get(cfg, "softcap", p)
    if not _is_num(softcap) or not softcap >= 0:
        raise c.fail(f"{p}.softcap", f"must be a number >= 0 (0 = none), got {softcap!r}")
    c.str_(cfg, "kv_lens", p, KV_LENS_TYPES)
    page_size = c.int_(cfg, "page_size", p, 0, maximum=2**63 - 1)
    for key in FEATURE_PARAMS + ("varlen", "packed_kv"):
        if not isinstance(c.get(cfg, key, p), bool):
            raise c.fail(f"{p}.{key}", f"must be true or false, got {cfg[key]!r}")
    if cfg["varlen"] and cfg["layout"] != "bshd":
        raise c.fail(f"{p}.layout", f"must be bshd with varlen (packed tokens), got {cfg['layout']!r}")
    if cfg["packed_kv"] and not cfg["varlen"]:
        raise c.fail(f"{p}.packed_kv", "needs varlen")
    for key in ("batch", "seq_q", "seq_kv"):
        c.int_(cfg, key, p, 1, nullable=True)
    seq_kv = cfg["seq_kv"]
    if page_size and seq_kv is not None and seq_kv % page_size:
        raise c.fail(f"{p}.seq_kv", f"must be a multiple of config.page_size ({page_size}) for a paged kernel, "
                                    f"got {seq_kv}")


def _check_merge_config(c: _Checker, cfg: dict) -> None:
    p = "$.config"
    c.int_(cfg, "heads", p, 1)
    dv = c.int_(cfg, "head_dim_v", p, 1)
    if dv % MERGE_VALUES_PER_THREAD:
        raise c.fail(f"{p}.head_dim_v", f"must be a multiple of {MERGE_VALUES_PER_THREAD} (each thread of the merge "
                                        f"kernel moves {MERGE_VALUES_PER_THREAD} consecutive values of a row), "
                                        f"got {dv}")
    c.str_(cfg, "dtype", p, DTYPES)
    c.str_(cfg, "layout", p, LAYOUTS)
    if not isinstance(c.get(cfg, "varlen", p), bool):
        raise c.fail(f"{p}.varlen", f"must be true or false, got {cfg['varlen']!r}")
    if cfg["varlen"] and cfg["layout"] != "bshd":
        raise c.fail(f"{p}.layout", f"must be bshd with varlen (packed tokens), got {cfg['layout']!r}")
    for key in ("batch", "seq_q"):
        c.int_(cfg, key, p, 1, nullable=True)
    if cfg["varlen"] and cfg["batch"] not in (None, 1):
        raise c.fail(f"{p}.batch", f"must be 1 or null with varlen (packed tokens are one batch), got {cfg['batch']}")


def _check_merge_kernels(c: _Checker, kernels: Any) -> None:
    """Exactly one kernel, of role ``merge``, taking the six tensors (grid symbols batch and seq_q only)."""
    if not isinstance(kernels, list) or len(kernels) != 1:
        raise c.fail("$.kernels", f"must be a list of exactly one kernel (role {MERGE_ROLE!r}), got {kernels!r}")
    p = "$.kernels[0]"
    kern = c.object(kernels[0], p, _KERNEL_KEYS)
    c.str_(kern, "name", p)
    c.str_(kern, "role", p, (MERGE_ROLE,))
    _check_block(c, c.get(kern, "block", p), f"{p}.block")
    c.int_(kern, "dynamic_shared_memory_bytes", p, 0, maximum=2**32 - 1)
    c.int_(kern, "static_shared_memory_bytes", p, 0, maximum=2**32 - 1)
    _check_grid(c, c.get(kern, "grid", p), f"{p}.grid", MERGE_GRID_SYMBOLS)
    params = _check_params(c, c.get(kern, "params", p), f"{p}.params", MERGE_PARAM_TYPES)
    for name in MERGE_REQUIRED_PARAMS:
        if name not in params:
            raise c.fail(f"{p}.params", f"a kernel of role {MERGE_ROLE!r} must take parameter {name!r}")


def _check_block(c: _Checker, block: Any, p: str) -> None:
    if not (isinstance(block, list) and len(block) == 3
            and all(_is_int(b) and 1 <= b <= lim for b, lim in zip(block, _BLOCK_LIMITS))):
        raise c.fail(p, f"must be 3 integers >= 1 (at most {list(_BLOCK_LIMITS)}), got {block!r}")
    if block[0] * block[1] * block[2] > 1024:
        raise c.fail(p, f"asks for {block[0] * block[1] * block[2]} threads; at most 1024")


def _check_kernels(c: _Checker, kernels: Any, max_splits: int, cfg: dict) -> None:
    kv_lens, page_size = cfg["kv_lens"], cfg["page_size"]
    if not isinstance(kernels, list) or not kernels:
        raise c.fail("$.kernels", f"must be a non-empty list, got {kernels!r}")
    roles = []
    takes_kv_lens = False
    for n, kern in enumerate(kernels):
        p = f"$.kernels[{n}]"
        c.object(kern, p, _KERNEL_KEYS)
        c.str_(kern, "name", p)
        role = c.str_(kern, "role", p, ROLES)
        roles.append(role)
        _check_block(c, c.get(kern, "block", p), f"{p}.block")
        c.int_(kern, "dynamic_shared_memory_bytes", p, 0, maximum=2**32 - 1)
        c.int_(kern, "static_shared_memory_bytes", p, 0, maximum=2**32 - 1)
        grid_syms = _check_grid(c, c.get(kern, "grid", p), f"{p}.grid")
        params = _check_params(c, c.get(kern, "params", p), f"{p}.params")
        for name in ROLE_PARAMS[role]:
            if name not in params:
                raise c.fail(f"{p}.params", f"a kernel of role {role!r} must take parameter {name!r}")
        if max_splits == 0:
            for name in _SPLIT_ONLY_PARAMS:
                if name in params:
                    raise c.fail(f"{p}.params", f"takes {name!r}, but split_kv.max_splits is 0")
            if "num_splits" in grid_syms:
                raise c.fail(f"{p}.grid", "uses num_splits, but split_kv.max_splits is 0")
        takes_kv_lens |= "kv_lens" in params
        # A paged attention kernel reads the block table and the pool size; a combine kernel reads no KV.
        must_page = page_size > 0 and role != "combine"
        for name in PAGED_PARAMS:
            if (name in params) == must_page:
                continue
            if must_page:
                raise c.fail(f"{p}.params", f"a kernel of role {role!r} must take parameter {name!r} "
                                            f"(config.page_size is {page_size})")
            why = "a combine kernel reads no KV" if page_size else "config.page_size is 0"
            raise c.fail(f"{p}.params", f"takes {name!r}, but {why}")
        wanted = {name: (name, cfg[name]) for name in FEATURE_PARAMS}
        wanted.update({name: ("varlen", cfg["varlen"]) for name in VARLEN_PARAMS})
        wanted.update({name: ("packed_kv", cfg["packed_kv"] and role != "combine") for name in PACKED_KV_PARAMS})
        for name, (key, on) in wanted.items():
            if (name in params) != on:
                raise c.fail(f"{p}.params", f"must take parameter {name!r} (config.{key} is true)" if on
                             else f"takes {name!r}, but config.{key} is "
                                  f"{'true (a combine kernel reads no KV)' if cfg[key] else 'false'}")
    expected = ["main"] if max_splits == 0 else ["split", "combine"]
    if roles != expected:
        raise c.fail("$.kernels", f"roles must be {expected} when split_kv.max_splits = {max_splits}, got {roles}")
    if takes_kv_lens != (kv_lens != "none"):
        raise c.fail(
            "$.kernels",
            f"config.kv_lens is {kv_lens!r} but {'a' if takes_kv_lens else 'no'} kernel takes a 'kv_lens' parameter",
        )


def _check_grid(c: _Checker, grid: Any, p: str, symbols_allowed: tuple[str, ...] = GRID_SYMBOLS) -> set[str]:
    """Check a grid; return the symbols it uses."""
    if not isinstance(grid, list) or len(grid) != 3:
        raise c.fail(p, f"must be a list of 3 dimensions, got {grid!r}")
    symbols = set()
    for n, dim in enumerate(grid):
        q = f"{p}[{n}]"
        c.object(dim, q, ("const", "sym", "mul", "add", "div"))
        if "const" in dim:
            if set(dim) != {"const"}:
                raise c.fail(q, f"a constant dimension has only 'const', got keys {sorted(dim)}")
            c.int_(dim, "const", q, 1)
            continue
        symbols.add(c.str_(dim, "sym", q, symbols_allowed))
        c.int_(dim, "mul", q, 1, optional=True)
        c.int_(dim, "add", q, 0, optional=True)
        c.int_(dim, "div", q, 1, optional=True)
    return symbols


def _check_params(c: _Checker, params: Any, p: str,
                  types: dict[str, tuple[str, ...]] = PARAM_TYPES) -> set[str]:
    """Check a parameter list; return the names it has."""
    if not isinstance(params, list) or not params:
        raise c.fail(p, f"must be a non-empty list, got {params!r}")
    seen: set[str] = set()
    for n, param in enumerate(params):
        q = f"{p}[{n}]"
        c.object(param, q, ("name", "type"))
        name = c.str_(param, "name", q, tuple(types))
        c.str_(param, "type", q, types[name])
        if name in seen:
            raise c.fail(q, f"duplicate parameter {name!r}")
        seen.add(name)
    return seen


def is_merge_states(meta: dict) -> bool:
    """Whether a validated metadata dict describes a merge_states kernel set (else attention)."""
    return meta.get("format") == MERGE_FORMAT


def effective_window(config: dict) -> tuple[int, int]:
    """The ``(left, right)`` window a validated ``config`` section describes (see gqa.options)."""
    mask = config["mask"]
    if mask == "none":
        return (-1, -1)
    if mask == "causal":
        return (config["window_left"], 0)
    return (config["window_left"], config["window_right"])


def load_metadata(path: Union[str, Path]) -> dict:
    """Read and validate a metadata JSON file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise MetadataError(f"cannot read kernel metadata {path}: {e.strerror or e}") from e
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise MetadataError(f"{path}: not valid JSON: {e}") from e
    return validate_metadata(meta, str(path))
