"""The cases of test_gpu.py, without torch: prepare_kernels.py compiles their kernels into the
cache carried to the GPU machine (which has no compiler).

``sinks=True``: the case passes random attention-sink logits; ``lse=True``: it asks for the
log-sum-exp (``return_lse``); both are checked against gqa.reference.attention(..., sinks=,
return_lse=True).  :data:`VARLEN_CASES` are ragged batches (``q_lens`` queries per sequence, packed),
checked against gqa.reference.attention_varlen.
"""

from __future__ import annotations

from typing import Any

from gqa.config import KernelConfig

CASES = [
    dict(B=2, Hq=8, Hkv=2, Sq=128, Skv=128, D=64, dtype="f16", layout="bhsd", causal=False),
    dict(B=2, Hq=8, Hkv=2, Sq=100, Skv=257, D=64, dtype="bf16", layout="bshd", causal=True),
    dict(B=1, Hq=64, Hkv=8, Sq=1, Skv=1000, D=128, dtype="bf16", layout="bshd", causal=True),
    dict(B=1, Hq=4, Hkv=1, Sq=77, Skv=33, D=128, dtype="f16", layout="bhsd", causal=True),
    dict(B=2, Hq=4, Hkv=4, Sq=64, Skv=64, D=64, Dv=32, dtype="f32", layout="bhsd", window=(16, 0)),
    dict(B=3, Hq=8, Hkv=2, Sq=8, Skv=200, D=64, dtype="f16", layout="bshd", causal=True, kv_lens=[0, 50, 200]),
    dict(B=1, Hq=8, Hkv=2, Sq=64, Skv=64, D=64, dtype="bf16", layout="bhsd", softcap=30.0, scale=0.3),
    # Sinks and the LSE: split-KV decode (the combine kernel joins the sinks and merges the LSE; kv_len 0:
    # O = 0, LSE = the sink), and a causal prefill with Sq > Skv (rows with no key).
    dict(B=2, Hq=64, Hkv=8, Sq=1, Skv=4097, D=128, dtype="bf16", layout="bshd", kv_lens=[4097, 0], sinks=True,
         lse=True),
    dict(B=2, Hq=8, Hkv=2, Sq=100, Skv=77, D=64, dtype="f16", layout="bhsd", causal=True, sinks=True, lse=True),
]

PAGED_CASES = [
    dict(B=3, Hq=8, Hkv=2, Sq=1, D=64, page_size=16, max_pages=8, dtype="bf16", layout="bshd", causal=True,
         kv_lens=[1, 77, 128]),
    dict(B=2, Hq=8, Hkv=2, Sq=40, D=64, page_size=16, max_pages=5, dtype="f16", layout="bhsd", causal=True),
    dict(B=2, Hq=4, Hkv=1, Sq=3, D=128, page_size=1, max_pages=50, dtype="f16", layout="bshd", window=(16, 0),
         kv_lens=[50, 9]),
    dict(B=2, Hq=8, Hkv=2, Sq=1, D=64, page_size=7, max_pages=6, dtype="bf16", layout="bhsd", kv_lens=[40, 3]),
    dict(B=3, Hq=8, Hkv=2, Sq=5, D=64, page_size=16, max_pages=8, dtype="bf16", layout="bshd", causal=True,
         kv_lens=[128, 3, 0], sinks=True, lse=True),
]

#: Ragged batches (varlen, bshd): packed queries of prefill chunks, decode rows and an empty sequence
#: against a KV cache [B, Skv, Hkv, D] read through kv_lens, or vLLM's 16-token pages (with sinks and
#: the LSE [Hq, T]: decodes against 4K keys go through split-KV; a decode row with no key).
VARLEN_CASES = [
    dict(q_lens=[5, 1, 0, 17], kv_lens=[40, 7, 30, 17], Skv=40, Hq=8, Hkv=2, D=64, dtype="bf16", layout="bshd",
         causal=True),
    dict(q_lens=[1, 9, 0, 1], kv_lens=[4097, 100, 50, 0], Skv=4097, page_size=16, Hq=64, Hkv=8, D=128,
         dtype="bf16", layout="bshd", causal=True, sinks=True, lse=True),
]

#: Decode through split-KV, captured in a CUDA graph.
GRAPH_CASE = dict(B=2, Hq=64, Hkv=8, Sq=1, Skv=4097, D=128, dtype="bf16", layout="bshd")


def options(case: dict) -> dict[str, Any]:
    """The mask/scale options of gqa.attention and gqa.reference.attention."""
    return {k: case[k] for k in ("layout", "causal", "window", "softcap", "scale") if k in case}


def kernel_configs(chip: str = "sm_90") -> list[KernelConfig]:
    """What gqa.attention compiles for every case (distinct, in order)."""
    configs = []
    for case in CASES + PAGED_CASES + VARLEN_CASES + [GRAPH_CASE]:
        config = KernelConfig.create(case["Hq"], case["Hkv"], case["D"], head_dim_v=case.get("Dv"),
                                     dtype=case["dtype"], kv_lens="kv_lens" in case,
                                     page_size=case.get("page_size", 0), sinks=case.get("sinks", False),
                                     lse=case.get("lse", False), varlen="q_lens" in case, chip=chip,
                                     **options(case))
        if config not in configs:
            configs.append(config)
    return configs
