"""Metadata validation against docs/kernel-metadata.md (its own example is the valid case): through the
runtime's reader (gqa_metadata_parse), the contract's one validator, with its messages and the file name."""

from __future__ import annotations

import copy
import json

import pytest

import gqa
from gqa.config import KernelConfig
from gqa.metadata import runtime_problem as RUNTIME_PROBLEM  # before isolated_env patches it
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
    (("format",), "gqa.other", 'key \'format\' must be "gqa\\.kernel" or "gqa\\.merge_states", not \'gqa\\.other\''),
    (("format",), _DELETE, r"missing key 'format'"),
    (("version",), 1,
     r"metadata version 1 is not supported: key 'version' must be 3 for format gqa\.kernel \(recompile"),
    (("version",), "1", r"key 'version' must be an integer, not a string"),
    (("chip",), _DELETE, r"missing key 'chip'"),
    (("ptx",), "", r"key 'ptx' must not be empty"),
    (("config",), _DELETE, r"missing key 'config'"),
    (("config", "q_heads"), 0, r"key 'config\.q_heads' must be >= 1, not 0"),
    (("config", "group_size"), 4, r"config\.group_size \(4\) must be config\.q_heads / config\.kv_heads \(8\)"),
    (("config", "kv_heads"), 7, r"config\.q_heads \(64\) must be a multiple of config\.kv_heads \(7\)"),
    (("config", "head_dim_v"), _DELETE, r"missing key 'config\.head_dim_v'"),
    (("config", "dtype"), "fp8", r"key 'config\.dtype' must be one of f16, bf16, f32, not 'fp8'"),
    (("config", "layout"), "sbhd", r"key 'config\.layout' must be one of bhsd, bshd, not 'sbhd'"),
    (("config", "mask"), "sliding", r"key 'config\.mask' must be one of none, causal, window, not 'sliding'"),
    (("config", "window_right"), 3, r"config\.mask is causal, so config\.window_right must be 0 or -1, not 3"),
    (("config", "window_left"), -2, r"key 'config\.window_left' must be >= -1, not -2"),
    (("config", "scale"), 0, r"key 'config\.scale' must be a positive finite number"),
    (("config", "scale"), True, r"key 'config\.scale' must be a number, not a boolean"),
    (("config", "scale"), float("inf"), r"metadata is not JSON: Out of range float values are not JSON compliant"),
    (("config", "softcap"), -1.0, r"key 'config\.softcap' must be >= 0"),
    (("config", "kv_lens"), "u8", r"key 'config\.kv_lens' must be one of none, i32, i64, not 'u8'"),
    (("config", "batch"), 0, r"key 'config\.batch' must be >= 1, not 0"),
    (("split_kv",), _DELETE, r"missing key 'split_kv'"),
    (("split_kv", "max_splits"), -1, r"key 'split_kv\.max_splits' must be >= 0, not -1"),
    (("split_kv", "max_splits"), 4,
     r"split_kv\.max_splits is 4, so 'kernels' must hold a kernel of role split followed by one of"),
    (("kernels",), [], r"key 'kernels' must not be empty"),
    (("kernels", 0, "role"), "split",
     r"split_kv\.max_splits is 0, so 'kernels' must hold exactly one kernel, of role main"),
    (("kernels", 0, "role"), "combine",
     r"split_kv\.max_splits is 0, so 'kernels' must hold exactly one kernel, of role main"),
    (("kernels", 0, "params", 3), _DELETE,
     r"kernel 'gqa_attention_fwd' \(kernels\[0\], role main\) must take parameter 'out'"),
    (("kernels", 0, "params", 6), {"name": "num_splits", "type": "i32"},
     r"kernel 'gqa_attention_fwd' \(kernels\[0\], role main\) takes 'num_splits', but split_kv\.max_splits"),
    (("kernels", 0, "grid", 1), {"sym": "num_splits"},
     r"kernel 'gqa_attention_fwd' \(kernels\[0\], role main\) has num_splits in its grid, but"),
    (("kernels", 0, "grid", 0, "add"), -1, r"key 'kernels\[0\]\.grid\[0\]\.add' must be >= 0, not -1"),
    (("kernels", 0, "block"), [128, 1, 65], r"key 'kernels\[0\]\.block\[2\]' must be <= 64, not 65"),
    (("kernels", 0, "block"), [512, 4, 1],
     r"key 'kernels\[0\]\.block' asks for 2048 threads per block; at most 1024 are possible"),
    (("kernels", 0, "static_shared_memory_bytes"), _DELETE,
     r"missing key 'kernels\[0\]\.static_shared_memory_bytes'"),
    (("kernels", 0, "launch_bounds"), 1, r"unknown key 'kernels\[0\]\.launch_bounds'"),
    (("extra",), 1, r"unknown key 'extra'"),
    (("config", "heads"), 1, r"unknown key 'config\.heads'"),
    (("chip",), "hopper", r"key 'chip' must look like sm_90 or sm_90a, not 'hopper'"),
    (("tile",), _DELETE, r"missing key 'tile'"),
    (("tile", "warps"), 0, r"key 'tile\.warps' must be >= 1, not 0"),
    (("tile", "pack_gqa"), 1, r"key 'tile\.pack_gqa' must be a boolean, not a number"),
    (("split_kv", "min_splits"), 1, r"unknown key 'split_kv\.min_splits'"),
    (("kernels", 0, "params"), [], r"key 'kernels\[0\]\.params' must not be empty"),
    (("kernels", 0, "params", 0, "ptr"), 1, r"unknown key 'kernels\[0\]\.params\[0\]\.ptr'"),
    (("kernels", 0, "block"), [128, 1], r"key 'kernels\[0\]\.block' must have 3 elements, not 2"),
    (("kernels", 0, "dynamic_shared_memory_bytes"), _DELETE,
     r"missing key 'kernels\[0\]\.dynamic_shared_memory_bytes'"),
    (("kernels", 0, "grid"), [{"const": 1}], r"key 'kernels\[0\]\.grid' must have 3 elements, not 1"),
    (("kernels", 0, "grid", 0, "sym"), "heads",
     r"key 'kernels\[0\]\.grid\[0\]\.sym' must be one of batch, seq_q, seq_kv, num_splits, not 'heads'"),
    (("kernels", 0, "grid", 0, "mull"), 2, r"unknown key 'kernels\[0\]\.grid\[0\]\.mull'"),
    (("kernels", 0, "grid", 0, "div"), 0, r"key 'kernels\[0\]\.grid\[0\]\.div' must be >= 1, not 0"),
    (("kernels", 0, "grid", 1), {"const": 8, "sym": "batch"},
     r"key 'kernels\[0\]\.grid\[1\]' must have either 'const' or 'sym', not both"),
    (("kernels", 0, "params", 0, "type"), "i64",
     r"parameter 'q' \(kernels\[0\]\.params\[0\]\) is a pointer, so its type must be ptr"),
    (("kernels", 0, "params", 4, "type"), "ptr",
     r"parameter 'batch' \(kernels\[0\]\.params\[4\]\) is an integer, so its type must be i32 or i64"),
    (("kernels", 0, "params", 0, "name"), "query",
     r"key 'kernels\[0\]\.params\[0\]\.name' is 'query', which is not a parameter name of the contract \(q,"),
    (("kernels", 0, "params", 1, "name"), "q",
     r"kernel 'gqa_attention_fwd' \(kernels\[0\]\) takes parameter 'q' twice"),
    (("config", "kv_lens"), "i32", r"config\.kv_lens is i32, but no kernel takes parameter 'kv_lens'"),
    # paged KV cache (version 2)
    (("config", "page_size"), _DELETE, r"missing key 'config\.page_size'"),
    (("config", "page_size"), -1, r"key 'config\.page_size' must be >= 0, not -1"),
    (("config", "page_size"), 16.0, r"key 'config\.page_size' must be an integer, not a number"),
    (("config", "page_size"), None, r"key 'config\.page_size' must be an integer, not null"),
    (("config", "page_size"), True, r"key 'config\.page_size' must be an integer, not a boolean"),
    (("config", "page_size"), 16,
     r"kernel 'gqa_attention_fwd' \(kernels\[0\]\) must take parameter 'block_table' \(config\.page_size is"),
    (("kernels", 0, "params", 4), {"name": "block_table", "type": "ptr"},
     r"kernel 'gqa_attention_fwd' \(kernels\[0\]\) takes 'block_table', but config\.page_size is 0"),
    (("kernels", 0, "params", 6), {"name": "num_pages", "type": "i64"},
     r"kernel 'gqa_attention_fwd' \(kernels\[0\]\) takes 'num_pages', but config\.page_size is 0"),
    (("kernels", 0, "params", 4), {"name": "block_table", "type": "i64"},
     r"parameter 'block_table' \(kernels\[0\]\.params\[4\]\) is a pointer, so its type must be ptr"),
    (("kernels", 0, "params", 0), {"name": "num_pages", "type": "ptr"},
     r"parameter 'num_pages' \(kernels\[0\]\.params\[0\]\) is an integer, so its type must be i32 or i64"),
    (("kernels", 0, "grid", 2), {"sym": "num_pages"},
     r"key 'kernels\[0\]\.grid\[2\]\.sym' must be one of batch, seq_q, seq_kv, num_splits, not 'num_pages'"),
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
#: starts with "split"), each with the error the runtime reports.
PAGED_BAD = [
    ("main-no-block_table", _drop_param(0, "block_table"),
     r"kernel 'gqa_attention_fwd' \(kernels\[0\]\) must take parameter 'block_table' \(config\.page_size is"),
    ("main-no-num_pages", _drop_param(0, "num_pages"),
     r"kernel 'gqa_attention_fwd' \(kernels\[0\]\) must take parameter 'num_pages' \(config\.page_size is"),
    ("split-no-block_table", _drop_param(0, "block_table"),
     r"kernel 'gqa_attention_fwd' \(kernels\[0\]\) must take parameter 'block_table' \(config\.page_size is"),
    ("split-no-num_pages", _drop_param(0, "num_pages"),
     r"kernel 'gqa_attention_fwd' \(kernels\[0\]\) must take parameter 'num_pages' \(config\.page_size is"),
    ("split-combine-block_table", _add_param(1, "block_table", "ptr"),
     r"kernel 'combine' \(kernels\[1\]\) takes 'block_table', but a combine kernel reads no KV"),
    ("split-combine-num_pages", _add_param(1, "num_pages", "i64"),
     r"kernel 'combine' \(kernels\[1\]\) takes 'num_pages', but a combine kernel reads no KV"),
    ("seq_kv-not-a-multiple", _set_config("seq_kv", 100),
     r"config\.seq_kv \(100\) must be a multiple of config\.page_size \(16\)"),
    ("page_size-0-with-params", _set_config("page_size", 0),
     r"kernel 'gqa_attention_fwd' \(kernels\[0\]\) takes 'block_table', but config\.page_size is 0"),
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
    with pytest.raises(gqa.MetadataError, match=rf"metadata version {version} is not supported: key 'version' must "
                                                r"be 3 for format gqa\.kernel \(recompile the kernel\)"):
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
    with pytest.raises(gqa.MetadataError, match=r"key 'config\.sinks' must be a boolean, not a number"):
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
    with pytest.raises(gqa.MetadataError, match=r"config\.mask is none, so config\.window_left and config\.window_right must be -1"):
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


#: Edits of the merge example (docs/kernel-metadata.md) that the runtime's reader rejects, with its error.
MERGE_BAD = [
    (("version",), 3, r"metadata version 3 is not supported: key 'version' must be 1 for format gqa\.merge_states"),
    (("version",), "1", r"key 'version' must be an integer, not a string"),
    (("format",), "gqa.merge", 'key \'format\' must be "gqa\\.kernel" or "gqa\\.merge_states", not \'gqa\\.merge\''),
    (("tile",), {"block_m": 64}, r"unknown key 'tile'"),
    (("split_kv",), {"max_splits": 0}, r"unknown key 'split_kv'"),
    (("chip",), _DELETE, r"missing key 'chip'"),
    (("ptx",), "", r"key 'ptx' must not be empty"),
    (("config",), _DELETE, r"missing key 'config'"),
    (("config", "heads"), 0, r"key 'config\.heads' must be >= 1, not 0"),
    (("config", "heads"), _DELETE, r"missing key 'config\.heads'"),
    (("config", "head_dim_v"), "128", r"key 'config\.head_dim_v' must be an integer, not a string"),
    (("config", "head_dim_v"), _DELETE, r"missing key 'config\.head_dim_v'"),
    (("config", "head_dim_v"), 130,
     r"key 'config\.head_dim_v' must be a multiple of 4 \(each thread of the merge kernel moves 4"),
    (("config", "dtype"), "f64", r"key 'config\.dtype' must be one of f16, bf16, f32, not 'f64'"),
    (("config", "layout"), "sbhd", r"key 'config\.layout' must be one of bhsd, bshd, not 'sbhd'"),
    (("config", "varlen"), 0, r"key 'config\.varlen' must be a boolean, not a number"),
    (("config", "varlen"), _DELETE, r"missing key 'config\.varlen'"),
    (("config", "batch"), 0, r"key 'config\.batch' must be >= 1, not 0"),
    (("config", "seq_q"), _DELETE, r"missing key 'config\.seq_q'"),
    (("config", "q_heads"), 64, r"unknown key 'config\.q_heads'"),
    (("config", "seq_kv"), None, r"unknown key 'config\.seq_kv'"),
    (("kernels",), [], r"key 'kernels' must not be empty"),
    (("kernels", 0, "role"), "main", r"key 'kernels\[0\]\.role' must be one of merge, not 'main'"),
    (("kernels", 0, "name"), "", r"key 'kernels\[0\]\.name' must not be empty"),
    (("kernels", 0, "block"), [128, 1], r"key 'kernels\[0\]\.block' must have 3 elements, not 2"),
    (("kernels", 0, "block"), [2048, 1, 1], r"key 'kernels\[0\]\.block\[0\]' must be <= 1024, not 2048"),
    (("kernels", 0, "dynamic_shared_memory_bytes"), -1,
     r"key 'kernels\[0\]\.dynamic_shared_memory_bytes' must be >= 0, not -1"),
    (("kernels", 0, "static_shared_memory_bytes"), _DELETE,
     r"missing key 'kernels\[0\]\.static_shared_memory_bytes'"),
    (("kernels", 0, "grid", 0, "sym"), "seq_kv",
     r"key 'kernels\[0\]\.grid\[0\]\.sym' must be one of batch, seq_q, not 'seq_kv'"),
    (("kernels", 0, "grid", 1), {"sym": "num_splits"},
     r"key 'kernels\[0\]\.grid\[1\]\.sym' must be one of batch, seq_q, not 'num_splits'"),
    (("kernels", 0, "grid"), [{"const": 1}], r"key 'kernels\[0\]\.grid' must have 3 elements, not 1"),
    (("kernels", 0, "params", 0), {"name": "q", "type": "ptr"},
     r"key 'kernels\[0\]\.params\[0\]\.name' is 'q', which is not a parameter name of a merge kernel"),
    (("kernels", 0, "params", 0, "type"), "i64",
     r"parameter 'out_a' \(kernels\[0\]\.params\[0\]\) is a pointer, so its type must be ptr"),
    (("kernels", 0, "params", 6, "type"), "ptr",
     r"parameter 'batch' \(kernels\[0\]\.params\[6\]\) is an integer, so its type must be i32 or i64"),
    (("kernels", 0, "params", 1, "name"), "out_a",
     r"kernel 'gqa_merge_states' \(kernels\[0\]\) takes parameter 'out_a' twice"),
    (("kernels", 0, "params", 5), _DELETE,
     r"kernel 'gqa_merge_states' \(kernels\[0\], role merge\) must take parameter 'lse'"),
    (("kernels", 0, "extra"), 1, r"unknown key 'kernels\[0\]\.extra'"),
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
    with pytest.raises(gqa.MetadataError, match=r"a gqa\.merge_states document's 'kernels' must hold exactly one kernel, of role merge, not 2"):
        validate_metadata(meta)


def test_merge_metadata_varlen(merge_metadata):
    """varlen: packed tokens (bshd), launched as one batch."""
    meta = copy.deepcopy(merge_metadata)
    meta["config"]["varlen"] = True
    assert gqa.MergeConfig.from_metadata(validate_metadata(meta)).varlen
    meta["config"]["batch"] = 1
    validate_metadata(meta)
    meta["config"]["batch"] = 2
    with pytest.raises(gqa.MetadataError, match=r"config\.varlen is true, so config\.batch must be 1 or null \(the packed tokens are one batch\), not 2"):
        validate_metadata(meta)
    meta["config"].update(batch=None, layout="bhsd")
    with pytest.raises(gqa.MetadataError, match=r"config\.varlen is true, so config\.layout must be bshd \(packed tokens"):
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
    with pytest.raises(gqa.MetadataError, match=r"unknown key 'tile'"):
        validate_metadata(meta)
    meta["version"] = 1
    with pytest.raises(gqa.MetadataError, match=r"unknown key 'tile'"):
        validate_metadata(meta)
    del meta["tile"]
    with pytest.raises(gqa.MetadataError, match=r"unknown key 'split_kv'"):
        validate_metadata(meta)
    meta = copy.deepcopy(merge_metadata)
    meta.update(format="gqa.kernel", version=3)
    with pytest.raises(gqa.MetadataError, match=r"unknown key 'config\.heads'"):
        validate_metadata(meta)


def test_load_merge_metadata_file(tmp_path, merge_metadata):
    path = tmp_path / "merge.json"
    path.write_text(json.dumps(merge_metadata))
    assert gqa.load_metadata(path)["format"] == "gqa.merge_states"


def test_the_runtime_is_the_validator(example_metadata, monkeypatch):
    """gqa.metadata has no rules of its own: it asks the runtime library it binds, and says when there is none."""
    import gqa.metadata as metadata_module
    from gqa import _runtime

    asked = []
    monkeypatch.setattr(metadata_module, "runtime_problem", lambda text: asked.append(text) or "metadata: no")
    with pytest.raises(gqa.MetadataError, match=r"^x\.json: no$"):
        validate_metadata(example_metadata, "x.json")
    assert json.loads(asked[0]) == example_metadata
    monkeypatch.setattr(metadata_module, "runtime_problem", RUNTIME_PROBLEM)
    monkeypatch.setattr(_runtime, "find_runtime_library", lambda: None)
    _runtime.reset_runtime()
    with pytest.raises(gqa.RuntimeLibraryNotFoundError, match="libgqa_runtime.so not found"):
        validate_metadata(example_metadata)
