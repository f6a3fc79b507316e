"""The real gqa-compile through gqa.compile: metadata valid and matching; PTX accepted by ptxas.

Skipped when gqa-compile is not built.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

import gqa
from conftest import ORIGINAL_PATH, REAL_GQA_COMPILE

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        REAL_GQA_COMPILE is None,
        reason="gqa-compile not built (set GQA_COMPILE, put it on PATH, or build <repo>/build/bin/gqa-compile)",
    ),
]

CASES = [
    dict(q_heads=64, kv_heads=8, head_dim=128, dtype="bf16", layout="bshd", causal=True),
    dict(q_heads=32, kv_heads=4, head_dim=128, dtype="f16", layout="bhsd"),
    dict(q_heads=8, kv_heads=1, head_dim=64, dtype="f16", layout="bshd", window=(256, 0), kv_lens=True),
    dict(q_heads=8, kv_heads=8, head_dim=64, head_dim_v=32, dtype="f32", layout="bhsd", softcap=30.0, scale=0.1),
    dict(q_heads=16, kv_heads=2, head_dim=128, dtype="bf16", layout="bshd", causal=True, chip="sm_80"),
    dict(q_heads=64, kv_heads=8, head_dim=128, dtype="bf16", layout="bshd", kv_lens=True, sinks=True, lse=True),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_real_compile(case, real_env, tmp_path):
    kernel = gqa.compile(**case, cache_dir=tmp_path / "cache")
    assert kernel.metadata["version"] == 3
    assert not gqa.KernelConfig.create(**case).mismatches(kernel.config)
    ptxas = shutil.which("ptxas", path=ORIGINAL_PATH)
    if ptxas:
        arch = kernel.metadata["chip"]
        proc = subprocess.run([ptxas, f"-arch={arch}", str(kernel.ptx_path), "-o", str(tmp_path / "k.cubin")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


PAGED_CASES = [
    dict(q_heads=8, kv_heads=2, head_dim=64, dtype="bf16", layout="bshd", page_size=16, kv_lens=True),
    dict(q_heads=8, kv_heads=2, head_dim=64, dtype="f16", layout="bhsd", page_size=1, causal=True),
]


@pytest.mark.parametrize("case", PAGED_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_real_compile_paged(case, real_env, tmp_path):
    kernel = gqa.compile(**case, cache_dir=tmp_path / "cache")
    meta = kernel.metadata
    assert meta["version"] == 3 and meta["config"]["page_size"] == case["page_size"]
    assert kernel.page_size == kernel.config.page_size == case["page_size"]
    assert not gqa.KernelConfig.create(**case).mismatches(kernel.config)
    attention = [k for k in meta["kernels"] if k["role"] in ("main", "split")]
    combine = [k for k in meta["kernels"] if k["role"] == "combine"]
    assert attention
    for kern in attention:
        names = [p["name"] for p in kern["params"]]
        assert "block_table" in names and "num_pages" in names, kern["name"]
    for kern in combine:
        names = [p["name"] for p in kern["params"]]
        assert "block_table" not in names and "num_pages" not in names, kern["name"]
    # The contiguous kernel of the same configuration takes neither.
    contiguous = gqa.compile(**dict(case, page_size=0), cache_dir=tmp_path / "cache")
    assert contiguous.page_size == 0 and contiguous.ptx_path != kernel.ptx_path
    for kern in contiguous.metadata["kernels"]:
        assert not {"block_table", "num_pages"} & {p["name"] for p in kern["params"]}
