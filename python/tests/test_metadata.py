"""Metadata validation against docs/kernel-metadata.md (its own example is the valid case)."""

from __future__ import annotations

import copy
import json

import pytest

import gqa
from gqa.config import KernelConfig
from gqa.metadata import validate_metadata


def test_doc_example_is_valid(example_metadata):
    assert validate_metadata(example_metadata) is example_metadata


def test_doc_example_config(example_metadata):
    cfg = KernelConfig.from_metadata(example_metadata)
    assert (cfg.q_heads, cfg.kv_heads, cfg.group_size) == (64, 8, 8)
    assert (cfg.dtype, cfg.layout, cfg.mask, cfg.window) == ("bf16", "bshd", "causal", (-1, 0))
    assert cfg.default_scale and cfg.softcap == 0.0 and not cfg.kv_lens and cfg.page_size == 0
    assert not KernelConfig.create(64, 8, 128, dtype="bf16", layout="bshd", causal=True).mismatches(cfg)


def _set(meta, path, value):
    *parents, last = path
    for p in parents:
        meta = meta[p]
    if value is _DELETE:
        del meta[last]
    else:
        meta[last] = value


_DELETE = object()

BAD = [
    (("format",), "gqa.other", r"not a gqa kernel metadata file"),
    (("format",), _DELETE, r"\$: missing required key 'format'"),
    (("version",), 1, r"version 1 is not supported"),
    (("version",), "1", r"\$\.version: must be an integer"),
    (("chip",), _DELETE, r"missing required key 'chip'"),
    (("ptx",), "", r"\$\.ptx: must be a non-empty string"),
    (("config",), _DELETE, r"missing required key 'config'"),
    (("config", "q_heads"), 0, r"\$\.config\.q_heads: must be an integer >= 1"),
    (("config", "group_size"), 4, r"group_size: must equal q_heads / kv_heads"),
    (("config", "kv_heads"), 7, r"group_size"),
    (("config", "head_dim_v"), _DELETE, r"missing required key 'head_dim_v'"),
    (("config", "dtype"), "fp8", r"\$\.config\.dtype: must be one of"),
    (("config", "layout"), "sbhd", r"\$\.config\.layout"),
    (("config", "mask"), "sliding", r"\$\.config\.mask"),
    (("config", "window_right"), 3, r"must be 0 or -1 with mask 'causal'"),
    (("config", "window_left"), -2, r"window_left: must be an integer >= -1"),
    (("config", "scale"), 0, r"scale: must be a finite number > 0"),
    (("config", "scale"), True, r"scale: must be a finite number > 0"),
    (("config", "scale"), float("inf"), r"scale: must be a finite number > 0"),
    (("config", "softcap"), -1.0, r"softcap: must be a number >= 0"),
    (("config", "kv_lens"), "u8", r"kv_lens"),
    (("config", "batch"), 0, r"batch: must be an integer or null >= 1"),
    (("split_kv",), _DELETE, r"missing required key 'split_kv'"),
    (("split_kv", "max_splits"), -1, r"max_splits"),
    (("split_kv", "max_splits"), 4, r"roles must be \['split', 'combine'\]"),
    (("kernels",), [], r"\$\.kernels: must be a non-empty list"),
    (("kernels", 0, "role"), "split", r"role 'split' must take parameter 'partial_out'"),
    (("kernels", 0, "role"), "combine", r"role 'combine' must take parameter 'partial_out'"),
    (("kernels", 0, "params", 3), _DELETE, r"role 'main' must take parameter 'out'"),
    (("kernels", 0, "params", 6), {"name": "num_splits", "type": "i32"}, r"takes 'num_splits', but split_kv.max_splits is 0"),
    (("kernels", 0, "grid", 1), {"sym": "num_splits"}, r"uses num_splits, but split_kv.max_splits is 0"),
    (("kernels", 0, "grid", 0, "add"), -1, r"grid\[0\]\.add: must be an integer >= 0"),
    (("kernels", 0, "block"), [128, 1, 65], r"block: must be 3 integers"),
    (("kernels", 0, "block"), [512, 4, 1], r"asks for 2048 threads"),
    (("kernels", 0, "static_shared_memory_bytes"), _DELETE, r"missing required key 'static_shared_memory_bytes'"),
    (("kernels", 0, "launch_bounds"), 1, r"kernels\[0\]: unknown keys \['launch_bounds'\]"),
    (("extra",), 1, r"\$: unknown keys \['extra'\]"),
    (("config", "heads"), 1, r"\$\.config: unknown keys \['heads'\]"),
    (("chip",), "hopper", r"\$\.chip: must look like sm_90"),
    (("tile",), _DELETE, r"missing required key 'tile'"),
    (("tile", "warps"), 0, r"\$\.tile\.warps"),
    (("tile", "pack_gqa"), 1, r"\$\.tile\.pack_gqa: must be true or false"),
    (("split_kv", "min_splits"), 1, r"\$\.split_kv: unknown keys"),
    (("kernels", 0, "params"), [], r"params: must be a non-empty list"),
    (("kernels", 0, "params", 0, "ptr"), 1, r"params\[0\]: unknown keys \['ptr'\]"),
    (("kernels", 0, "block"), [128, 1], r"kernels\[0\]\.block: must be 3 integers"),
    (("kernels", 0, "dynamic_shared_memory_bytes"), _DELETE, r"missing required key 'dynamic_shared_memory_bytes'"),
    (("kernels", 0, "grid"), [{"const": 1}], r"grid: must be a list of 3"),
    (("kernels", 0, "grid", 0, "sym"), "heads", r"grid\[0\]\.sym: must be one of"),
    (("kernels", 0, "grid", 0, "mull"), 2, r"unknown keys \['mull'\]"),
    (("kernels", 0, "grid", 0, "div"), 0, r"grid\[0\]\.div"),
    (("kernels", 0, "grid", 1), {"const": 8, "sym": "batch"}, r"only 'const'"),
    (("kernels", 0, "params", 0, "type"), "i64", r"params\[0\]\.type: must be one of \['ptr'\]"),
    (("kernels", 0, "params", 4, "type"), "ptr", r"params\[4\]\.type"),
    (("kernels", 0, "params", 0, "name"), "query", r"params\[0\]\.name"),
    (("kernels", 0, "params", 1, "name"), "q", r"duplicate parameter 'q'"),
    (("config", "kv_lens"), "i32", r"config\.kv_lens is 'i32' but no kernel takes"),
    # paged KV cache (version 2)
    (("config", "page_size"), _DELETE, r"\$\.config: missing required key 'page_size'"),
    (("config", "page_size"), -1, r"\$\.config\.page_size: must be an integer >= 0"),
    (("config", "page_size"), 16.0, r"\$\.config\.page_size: must be an integer >= 0"),
    (("config", "page_size"), None, r"\$\.config\.page_size: must be an integer >= 0"),
    (("config", "page_size"), True, r"\$\.config\.page_size: must be an integer >= 0"),
    (("config", "page_size"), 16, r"kernels\[0\]\.params: a kernel of role 'main' must take parameter "
                                  r"'block_table' \(config\.page_size is 16\)"),
    (("kernels", 0, "params", 4), {"name": "block_table", "type": "ptr"},
     r"kernels\[0\]\.params: takes 'block_table', but config\.page_size is 0"),
    (("kernels", 0, "params", 6), {"name": "num_pages", "type": "i64"},
     r"kernels\[0\]\.params: takes 'num_pages', but config\.page_size is 0"),
    (("kernels", 0, "params", 4), {"name": "block_table", "type": "i64"},
     r"params\[4\]\.type: must be one of \['ptr'\]"),
    (("kernels", 0, "params", 0), {"name": "num_pages", "type": "ptr"},
     r"params\[0\]\.type: must be one of \['i32', 'i64'\]"),
    (("kernels", 0, "grid", 2), {"sym": "num_pages"}, r"grid\[2\]\.sym: must be one of"),
]


@pytest.mark.parametrize("path, value, match", BAD, ids=[f"{'.'.join(map(str, p))}" for p, _, _ in BAD])
def test_invalid_metadata(example_metadata, path, value, match):
    meta = copy.deepcopy(example_metadata)
    _set(meta, path, value)
    with pytest.raises(gqa.MetadataError, match=match) as info:
        validate_metadata(meta, "x.json")
    assert str(info.value).startswith("x.json: ")
    assert isinstance(info.value, ValueError)


def paged(meta, page_size=16, num_pages_type="i64"):
    """``meta`` (the doc example, or one with split kernels) made paged: page_size, and the paged params."""
    meta = copy.deepcopy(meta)
    meta["config"]["page_size"] = page_size
    for kern in meta["kernels"]:
        if kern["role"] != "combine":
            kern["params"] = kern["params"] + [{"name": "block_table", "type": "ptr"},
                                               {"name": "num_pages", "type": num_pages_type}]
    return meta


def split_kernels(meta):
    """``meta`` with a split + combine kernel pair (max_splits 8) instead of its main kernel."""
    meta = copy.deepcopy(meta)
    meta["split_kv"]["max_splits"] = 8
    main = meta["kernels"][0]
    split = dict(main, role="split", params=main["params"] + [
        {"name": "num_splits", "type": "i32"}, {"name": "partial_out", "type": "ptr"},
        {"name": "partial_lse", "type": "ptr"}])
    split["grid"] = [{"sym": "seq_q", "mul": 8, "add": 63, "div": 64}, {"sym": "num_splits"}, {"sym": "batch"}]
    combine = dict(main, role="combine", name="combine", params=[
        {"name": "partial_out", "type": "ptr"}, {"name": "partial_lse", "type": "ptr"},
        {"name": "out", "type": "ptr"}, {"name": "num_splits", "type": "i64"}])
    meta["kernels"] = [split, combine]
    return meta


def _drop_param(kernel_index, name):
    def edit(meta):
        kern = meta["kernels"][kernel_index]
        kern["params"] = [p for p in kern["params"] if p["name"] != name]
    return edit


def _add_param(kernel_index, name, type_):
    def edit(meta):
        meta["kernels"][kernel_index]["params"].append({"name": name, "type": type_})
    return edit


def _set_config(key, value):
    def edit(meta):
        meta["config"][key] = value
    return edit


#: Edits of a paged metadata (paged(doc example), or paged(split_kernels(doc example)) when the id
#: starts with "split"), each with the error Python reports.
PAGED_BAD = [
    ("main-no-block_table", _drop_param(0, "block_table"),
     r"kernels\[0\]\.params: a kernel of role 'main' must take parameter 'block_table' \(config\.page_size is 16\)"),
    ("main-no-num_pages", _drop_param(0, "num_pages"),
     r"a kernel of role 'main' must take parameter 'num_pages' \(config\.page_size is 16\)"),
    ("split-no-block_table", _drop_param(0, "block_table"),
     r"kernels\[0\]\.params: a kernel of role 'split' must take parameter 'block_table'"),
    ("split-no-num_pages", _drop_param(0, "num_pages"), r"role 'split' must take parameter 'num_pages'"),
    ("split-combine-block_table", _add_param(1, "block_table", "ptr"),
     r"kernels\[1\]\.params: takes 'block_table', but a combine kernel reads no KV"),
    ("split-combine-num_pages", _add_param(1, "num_pages", "i64"),
     r"kernels\[1\]\.params: takes 'num_pages', but a combine kernel reads no KV"),
    ("seq_kv-not-a-multiple", _set_config("seq_kv", 100),
     r"\$\.config\.seq_kv: must be a multiple of config\.page_size \(16\) for a paged kernel, got 100"),
    ("page_size-0-with-params", _set_config("page_size", 0),
     r"kernels\[0\]\.params: takes 'block_table', but config\.page_size is 0"),
]


def paged_bad_metadata(example, case_id, edit):
    meta = paged(split_kernels(example) if case_id.startswith("split") else example)
    edit(meta)
    return meta


@pytest.mark.parametrize("case_id, edit, match", PAGED_BAD, ids=[c[0] for c in PAGED_BAD])
def test_invalid_paged_metadata(example_metadata, case_id, edit, match):
    meta = paged_bad_metadata(example_metadata, case_id, edit)
    with pytest.raises(gqa.MetadataError, match=match):
        validate_metadata(meta, "x.json")


@pytest.mark.parametrize("num_pages_type", ["i32", "i64"])
def test_paged_metadata_valid(example_metadata, num_pages_type):
    meta = paged(example_metadata, num_pages_type=num_pages_type)
    assert validate_metadata(meta) is meta
    cfg = KernelConfig.from_metadata(meta)
    assert cfg.page_size == 16
    assert not KernelConfig.create(64, 8, 128, dtype="bf16", layout="bshd", causal=True,
                                   page_size=16).mismatches(cfg)
    assert KernelConfig.create(64, 8, 128, dtype="bf16", layout="bshd", causal=True).mismatches(cfg) == [
        "page_size: requested 0, kernel has 16"]


def test_paged_split_kernels_valid(example_metadata):
    meta = paged(split_kernels(example_metadata))
    validate_metadata(meta)
    assert [p["name"] for p in meta["kernels"][1]["params"]] == ["partial_out", "partial_lse", "out", "num_splits"]


@pytest.mark.parametrize("seq_kv, ok", [(None, True), (16, True), (4096, True), (8, False), (1000, False)])
def test_paged_fixed_seq_kv(example_metadata, seq_kv, ok):
    meta = paged(example_metadata)
    meta["config"]["seq_kv"] = seq_kv
    if ok:
        validate_metadata(meta)
    else:
        with pytest.raises(gqa.MetadataError, match="must be a multiple of config.page_size"):
            validate_metadata(meta)
    # without paging any seq_kv goes
    meta = copy.deepcopy(example_metadata)
    meta["config"]["seq_kv"] = seq_kv
    validate_metadata(meta)


@pytest.mark.parametrize("version", [1, 2])
def test_older_versions_are_rejected_with_advice(example_metadata, version):
    meta = copy.deepcopy(example_metadata)
    meta["version"] = version
    with pytest.raises(gqa.MetadataError, match=rf"version {version} is not supported by this gqa package "
                                                r"\(supports \[3\]\); recompile the kernel"):
        validate_metadata(meta)


def _with_features(meta: dict, sinks: bool, lse: bool) -> dict:
    """``meta`` with config.sinks/lse set and the kernel taking those parameters after ``out``."""
    meta = copy.deepcopy(meta)
    meta["config"].update(sinks=sinks, lse=lse)
    params = meta["kernels"][0]["params"]
    at = [p["name"] for p in params].index("out") + 1
    params[at:at] = [{"name": n, "type": "ptr"} for n, on in (("sinks", sinks), ("lse", lse)) if on]
    return meta


def test_sinks_and_lse_kernels(example_metadata):
    """Version 3: a kernel takes 'sinks' iff config.sinks and 'lse' iff config.lse."""
    meta = validate_metadata(_with_features(example_metadata, True, True))
    assert gqa.KernelConfig.from_metadata(meta).sinks and gqa.KernelConfig.from_metadata(meta).lse
    meta = _with_features(example_metadata, True, False)
    meta["config"]["lse"] = True
    with pytest.raises(gqa.MetadataError, match=r"must take parameter 'lse' \(config.lse is true\)"):
        validate_metadata(meta)
    meta = _with_features(example_metadata, False, True)
    meta["config"]["lse"] = False
    with pytest.raises(gqa.MetadataError, match=r"takes 'lse', but config.lse is false"):
        validate_metadata(meta)
    meta = copy.deepcopy(example_metadata)
    meta["config"]["sinks"] = 0
    with pytest.raises(gqa.MetadataError, match=r"config.sinks.*must be true or false, got 0"):
        validate_metadata(meta)
    del meta["config"]["sinks"]
    with pytest.raises(gqa.MetadataError, match=r"sinks"):
        validate_metadata(meta)


def test_split_kv_kernels_valid(example_metadata):
    meta = copy.deepcopy(example_metadata)
    meta["split_kv"]["max_splits"] = 8
    main = meta["kernels"][0]
    split = dict(main, role="split", params=main["params"] + [
        {"name": "num_splits", "type": "i32"}, {"name": "partial_out", "type": "ptr"},
        {"name": "partial_lse", "type": "ptr"}])
    split["grid"] = [{"sym": "seq_q", "mul": 8, "add": 63, "div": 64}, {"sym": "num_splits"}, {"sym": "batch"}]
    combine = dict(main, role="combine", name="combine", params=[
        {"name": "partial_out", "type": "ptr"}, {"name": "partial_lse", "type": "ptr"},
        {"name": "out", "type": "ptr"}, {"name": "num_splits", "type": "i64"}])
    meta["kernels"] = [split, combine]
    validate_metadata(meta)


def test_kv_lens_kernel_valid(example_metadata):
    meta = copy.deepcopy(example_metadata)
    meta["config"]["kv_lens"] = "i64"
    meta["kernels"][0]["params"].insert(4, {"name": "kv_lens", "type": "ptr"})
    validate_metadata(meta)
    assert KernelConfig.from_metadata(meta).kv_lens


def test_window_metadata(example_metadata):
    meta = copy.deepcopy(example_metadata)
    meta["config"].update(mask="window", window_left=128, window_right=0)
    assert KernelConfig.from_metadata(validate_metadata(meta)).window == (128, 0)
    meta["config"].update(mask="causal", window_left=64, window_right=-1)
    assert KernelConfig.from_metadata(validate_metadata(meta)).window == (64, 0)
    meta["config"].update(mask="none", window_left=64, window_right=-1)
    with pytest.raises(gqa.MetadataError, match="mask 'none' needs"):
        validate_metadata(meta)


def test_not_an_object():
    with pytest.raises(gqa.MetadataError, match="must be a JSON object"):
        validate_metadata([1, 2])


def test_load_metadata_file_errors(tmp_path, example_metadata):
    with pytest.raises(gqa.MetadataError, match="cannot read kernel metadata"):
        gqa.load_metadata(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(gqa.MetadataError, match="bad.json: not valid JSON"):
        gqa.load_metadata(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(example_metadata))
    assert gqa.load_metadata(good)["config"]["q_heads"] == 64


# ----------------------------------------------------------------------------- merge_states kernel sets


def test_merge_doc_example_is_valid(merge_metadata):
    assert validate_metadata(merge_metadata) is merge_metadata
    cfg = gqa.MergeConfig.from_metadata(merge_metadata)
    assert cfg == gqa.MergeConfig.create(64, 128, dtype="bf16", layout="bshd")
    assert not cfg.varlen and cfg.chip == "sm_90"


#: Edits of the merge example (docs/kernel-metadata.md) that both readers reject, with Python's error.
MERGE_BAD = [
    (("version",), 3, r"version 3 is not supported by this gqa package \(supports \[1\] for format "
                      r"'gqa.merge_states'\)"),
    (("version",), "1", r"\$\.version: must be an integer"),
    (("format",), "gqa.merge", r"not a gqa kernel metadata file: format is 'gqa.merge'"),
    (("tile",), {"block_m": 64}, r"\$: unknown keys \['tile'\]"),
    (("split_kv",), {"max_splits": 0}, r"\$: unknown keys \['split_kv'\]"),
    (("chip",), _DELETE, r"missing required key 'chip'"),
    (("ptx",), "", r"\$\.ptx: must be a non-empty string"),
    (("config",), _DELETE, r"\$: missing required key 'config'"),
    (("config", "heads"), 0, r"\$\.config\.heads: must be an integer >= 1"),
    (("config", "heads"), _DELETE, r"\$\.config: missing required key 'heads'"),
    (("config", "head_dim_v"), "128", r"\$\.config\.head_dim_v: must be an integer >= 1"),
    (("config", "head_dim_v"), _DELETE, r"missing required key 'head_dim_v'"),
    (("config", "head_dim_v"), 130, r"\$\.config\.head_dim_v: must be a multiple of 4 \(each thread"),
    (("config", "dtype"), "f64", r"\$\.config\.dtype: must be one of"),
    (("config", "layout"), "sbhd", r"\$\.config\.layout: must be one of"),
    (("config", "varlen"), 0, r"\$\.config\.varlen: must be true or false, got 0"),
    (("config", "varlen"), _DELETE, r"missing required key 'varlen'"),
    (("config", "batch"), 0, r"\$\.config\.batch: must be an integer or null >= 1"),
    (("config", "seq_q"), _DELETE, r"missing required key 'seq_q'"),
    (("config", "q_heads"), 64, r"\$\.config: unknown keys \['q_heads'\]"),
    (("config", "seq_kv"), None, r"\$\.config: unknown keys \['seq_kv'\]"),
    (("kernels",), [], r"\$\.kernels: must be a list of exactly one kernel"),
    (("kernels", 0, "role"), "main", r"kernels\[0\]\.role: must be one of \['merge'\]"),
    (("kernels", 0, "name"), "", r"kernels\[0\]\.name: must be a non-empty string"),
    (("kernels", 0, "block"), [128, 1], r"kernels\[0\]\.block: must be 3 integers"),
    (("kernels", 0, "block"), [2048, 1, 1], r"kernels\[0\]\.block: must be 3 integers"),
    (("kernels", 0, "dynamic_shared_memory_bytes"), -1, r"dynamic_shared_memory_bytes: must be an integer >= 0"),
    (("kernels", 0, "static_shared_memory_bytes"), _DELETE, r"missing required key 'static_shared_memory_bytes'"),
    (("kernels", 0, "grid", 0, "sym"), "seq_kv", r"grid\[0\]\.sym: must be one of \['batch', 'seq_q'\]"),
    (("kernels", 0, "grid", 1), {"sym": "num_splits"}, r"grid\[1\]\.sym: must be one of \['batch', 'seq_q'\]"),
    (("kernels", 0, "grid"), [{"const": 1}], r"grid: must be a list of 3 dimensions"),
    (("kernels", 0, "params", 0), {"name": "q", "type": "ptr"}, r"params\[0\]\.name: must be one of"),
    (("kernels", 0, "params", 0, "type"), "i64", r"params\[0\]\.type: must be one of \['ptr'\]"),
    (("kernels", 0, "params", 6, "type"), "ptr", r"params\[6\]\.type: must be one of \['i32', 'i64'\]"),
    (("kernels", 0, "params", 1, "name"), "out_a", r"params\[1\]: duplicate parameter 'out_a'"),
    (("kernels", 0, "params", 5), _DELETE, r"kernels\[0\]\.params: a kernel of role 'merge' must take "
                                           r"parameter 'lse'"),
    (("kernels", 0, "extra"), 1, r"kernels\[0\]: unknown keys \['extra'\]"),
]


@pytest.mark.parametrize("path, value, match", MERGE_BAD, ids=[".".join(map(str, p)) + f"={v!r}"[:20]
                                                              for p, v, _ in MERGE_BAD])
def test_invalid_merge_metadata(merge_metadata, path, value, match):
    meta = copy.deepcopy(merge_metadata)
    _set(meta, path, value)
    with pytest.raises(gqa.MetadataError, match=match) as info:
        validate_metadata(meta, "m.json")
    assert str(info.value).startswith("m.json: ")


def test_merge_metadata_needs_one_kernel(merge_metadata):
    meta = copy.deepcopy(merge_metadata)
    meta["kernels"] = meta["kernels"] * 2
    with pytest.raises(gqa.MetadataError, match=r"\$\.kernels: must be a list of exactly one kernel"):
        validate_metadata(meta)


def test_merge_metadata_varlen(merge_metadata):
    """varlen: packed tokens (bshd), launched as one batch."""
    meta = copy.deepcopy(merge_metadata)
    meta["config"]["varlen"] = True
    assert gqa.MergeConfig.from_metadata(validate_metadata(meta)).varlen
    meta["config"]["batch"] = 1
    validate_metadata(meta)
    meta["config"]["batch"] = 2
    with pytest.raises(gqa.MetadataError, match=r"\$\.config\.batch: must be 1 or null with varlen"):
        validate_metadata(meta)
    meta["config"].update(batch=None, layout="bhsd")
    with pytest.raises(gqa.MetadataError, match=r"\$\.config\.layout: must be bshd with varlen"):
        validate_metadata(meta)


def test_merge_metadata_optional_params_and_fixed_sizes(merge_metadata):
    """batch/seq_q parameters may be i32 or absent (a kernel of fixed sizes); the six tensors are required."""
    meta = copy.deepcopy(merge_metadata)
    params = meta["kernels"][0]["params"]
    params[6]["type"] = "i32"
    del params[7]
    meta["config"].update(batch=2, seq_q=100)
    meta["kernels"][0]["grid"] = [{"const": 1600}, {"const": 1}, {"const": 2}]
    validate_metadata(meta)
    for name in ("out_a", "lse_a", "out_b", "lse_b", "out", "lse"):
        broken = copy.deepcopy(meta)
        broken["kernels"][0]["params"] = [p for p in params if p["name"] != name]
        with pytest.raises(gqa.MetadataError, match=rf"must take parameter '{name}'"):
            validate_metadata(broken)


def test_attention_document_still_needs_format_gqa_kernel(example_metadata, merge_metadata):
    """The two formats do not mix: an attention document with the merge format (or version) is rejected."""
    meta = copy.deepcopy(example_metadata)
    meta["format"] = "gqa.merge_states"
    with pytest.raises(gqa.MetadataError, match=r"version 3 is not supported .* for format 'gqa.merge_states'"):
        validate_metadata(meta)
    meta["version"] = 1
    with pytest.raises(gqa.MetadataError, match=r"\$: unknown keys \['split_kv', 'tile'\]"):
        validate_metadata(meta)
    meta = copy.deepcopy(merge_metadata)
    meta.update(format="gqa.kernel", version=3)
    with pytest.raises(gqa.MetadataError, match=r"\$\.config: unknown keys \['heads'\]"):
        validate_metadata(meta)


def test_load_merge_metadata_file(tmp_path, merge_metadata):
    path = tmp_path / "merge.json"
    path.write_text(json.dumps(merge_metadata))
    assert gqa.load_metadata(path)["format"] == "gqa.merge_states"
