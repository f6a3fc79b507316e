"""gqa.run_cpu: plumbing with a fake gqa-run, and the real one against the float64 reference."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

import gqa
from gqa.cpu import load_raw, parse_json_line
from conftest import REAL_GQA_RUN

PYTHON_DIR = Path(__file__).resolve().parents[1]

FAKE_RUN = r'''#!{python}
"""A stand-in for gqa-run --target cpu: random inputs, the numpy reference as output, --save files."""
import argparse, json, sys
sys.path.insert(0, {python_dir!r})
import numpy as np
from gqa import reference
from gqa.dtypes import decode, encode

p = argparse.ArgumentParser()
p.add_argument("--target", required=True, choices=["cpu"])
p.add_argument("--schedule", choices=["cpu", "sm_80", "sm_90"])
for f in ("--q-heads", "--kv-heads", "--head-dim", "--head-dim-v", "--batch", "--seq-q", "--seq-kv", "--seed"):
    p.add_argument(f, type=int)
p.add_argument("--dtype"); p.add_argument("--layout")
p.add_argument("--causal", action="store_true"); p.add_argument("--window")
p.add_argument("--softcap", type=float); p.add_argument("--scale", type=float)
p.add_argument("--kv-lens")
p.add_argument("--save", required=True)
a = p.parse_args()
rng = np.random.default_rng(a.seed or 0)
dv = a.head_dim_v or a.head_dim
def shape(h, s, d):
    return (a.batch, h, s, d) if a.layout == "bhsd" else (a.batch, s, h, d)
arrays = {
    "q": encode(rng.standard_normal(shape(a.q_heads, a.seq_q, a.head_dim)).astype(np.float32), a.dtype),
    "k": encode(rng.standard_normal(shape(a.kv_heads, a.seq_kv, a.head_dim)).astype(np.float32), a.dtype),
    "v": encode(rng.standard_normal(shape(a.kv_heads, a.seq_kv, dv)).astype(np.float32), a.dtype),
}
lens = [int(x) for x in a.kv_lens.split(",")] if a.kv_lens else None
window = tuple(int(x) for x in a.window.split(",")) if a.window else None
out = reference.attention(*(decode(arrays[n], a.dtype) for n in "qkv"), layout=a.layout, causal=a.causal,
                          window=window, kv_lens=lens, softcap=a.softcap, scale=a.scale)
arrays["out"] = encode(out.astype(np.float32), a.dtype)
for name, arr in arrays.items():
    arr.astype(arr.dtype.newbyteorder("<")).tofile(f"{a.save}/{name}.bin")
meta = {"argv": sys.argv[1:]}
if lens is not None:
    meta["kv_lens"] = lens
open(f"{a.save}/meta.json", "w").write(json.dumps(meta))
print("compiling... running...")
print(json.dumps({"ok": True, "max_abs_err": 0.0}))
'''


@pytest.fixture
def fake_run(tmp_path, monkeypatch):
    path = tmp_path / "bin" / "gqa-run"
    path.parent.mkdir()
    path.write_text(FAKE_RUN.replace("{python}", sys.executable).replace("{python_dir!r}", repr(str(PYTHON_DIR))))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("GQA_RUN", str(path))
    return path


@pytest.mark.parametrize("dtype, tol", [("f32", 1e-6), ("f16", 2e-3), ("bf16", 1.6e-2)])
@pytest.mark.parametrize("layout", ["bhsd", "bshd"])
def test_fake_run_round_trip(fake_run, dtype, tol, layout):
    run = gqa.run_cpu(8, 2, 16, head_dim_v=8, batch=2, seq_q=3, seq_kv=5, dtype=dtype, layout=layout,
                      causal=True, kv_lens=[4, 5], seed=3)
    assert run.result == {"ok": True, "max_abs_err": 0.0}
    expect_q = (2, 8, 3, 16) if layout == "bhsd" else (2, 3, 8, 16)
    assert run.q.shape == expect_q and run.q.dtype == np.float32
    assert run.out.shape == ((2, 8, 3, 8) if layout == "bhsd" else (2, 3, 8, 8))
    np.testing.assert_array_equal(run.kv_lens, [4, 5])
    # the fake's output is the reference rounded to dtype: only the rounding remains
    assert run.max_abs_error() <= tol
    argv = run.meta["argv"]
    assert argv[:4] == ["--target", "cpu", "--schedule", "cpu"] and "--chip" not in argv
    assert argv[argv.index("--kv-lens") + 1] == "4,5"


def test_fake_run_keeps_files(fake_run, tmp_path):
    save = tmp_path / "saved"
    gqa.run_cpu(4, 4, 8, seq_q=2, save_dir=str(save), window=(1, 0))
    assert sorted(p.name for p in save.iterdir()) == ["k.bin", "meta.json", "out.bin", "q.bin", "v.bin"]


def test_run_cpu_without_tool():
    with pytest.raises(gqa.ToolNotFoundError, match=r"gqa-run not found \(looked in \$GQA_RUN, PATH"):
        gqa.run_cpu(4, 2, 8)


def test_run_cpu_failure(tmp_path, monkeypatch):
    bad = tmp_path / "gqa-run"
    bad.write_text("#!/bin/sh\necho 'error: unsupported' >&2\nexit 2\n")
    bad.chmod(0o755)
    monkeypatch.setenv("GQA_RUN", str(bad))
    with pytest.raises(gqa.ToolError, match=r"gqa-run failed \(exit 2\)(.|\n)*error: unsupported"):
        gqa.run_cpu(4, 2, 8)


def test_run_cpu_kv_lens_length():
    with pytest.raises(ValueError, match="kv_lens must have 2 entries"):
        gqa.run_cpu(4, 2, 8, batch=2, kv_lens=[1])


def test_parse_json_line():
    assert parse_json_line('noise\n{"ok": true}\n{broken\n') == {"ok": True}
    assert parse_json_line('{"a": 1}\n{"a": 2}') == {"a": 2}
    with pytest.raises(gqa.ToolError, match="no JSON result line"):
        parse_json_line("nothing here\n[1, 2]")


def test_load_raw(tmp_path):
    bits = np.array([0x3F80, 0xC000], dtype="<u2")
    (tmp_path / "x.bin").write_bytes(bits.tobytes())
    np.testing.assert_array_equal(load_raw(tmp_path / "x.bin", (2,), "bf16"), [1.0, -2.0])
    with pytest.raises(gqa.ToolError, match=r"has 4 bytes, expected 8 \(f32 array of shape \(2,\)\)"):
        load_raw(tmp_path / "x.bin", (2,), "f32")
    with pytest.raises(gqa.ToolError, match="did not write"):
        load_raw(tmp_path / "missing.bin", (2,), "f32")


# ----------------------------------------------------------------------------- the real gqa-run

needs_gqa_run = pytest.mark.skipif(
    REAL_GQA_RUN is None, reason="gqa-run not built (set GQA_RUN, put it on PATH, or build <repo>/build/bin/gqa-run)"
)

REAL_CASES = [
    dict(q_heads=8, kv_heads=2, head_dim=64, batch=2, seq_q=33, seq_kv=70, dtype="f32", layout="bhsd"),
    dict(q_heads=8, kv_heads=2, head_dim=64, batch=2, seq_q=33, seq_kv=70, dtype="f32", layout="bshd", causal=True),
    dict(q_heads=4, kv_heads=1, head_dim=32, batch=1, seq_q=40, seq_kv=17, dtype="f32", layout="bhsd", causal=True),
    dict(q_heads=4, kv_heads=4, head_dim=64, head_dim_v=32, batch=1, seq_q=50, seq_kv=50, dtype="f16",
         layout="bshd", window=(8, 0)),
    dict(q_heads=16, kv_heads=2, head_dim=128, batch=2, seq_q=1, seq_kv=300, dtype="bf16", layout="bshd",
         causal=True),
    dict(q_heads=8, kv_heads=2, head_dim=64, batch=2, seq_q=20, seq_kv=64, dtype="bf16", layout="bhsd",
         softcap=30.0, scale=0.2),
    dict(q_heads=8, kv_heads=2, head_dim=64, batch=3, seq_q=4, seq_kv=64, dtype="f16", layout="bshd",
         causal=True, kv_lens=[0, 17, 64]),
]
TOLERANCE = {"f32": 1e-4, "f16": 4e-3, "bf16": 3e-2}

# The GPU's schedules on the CPU: 64-row blocks, split-KV and its combine.
SCHEDULE_CASES = [
    dict(REAL_CASES[4], schedule="sm_90"),
    dict(REAL_CASES[6], schedule="sm_80"),
    dict(REAL_CASES[1], schedule="sm_80"),
]


@needs_gqa_run
@pytest.mark.tools
@pytest.mark.parametrize("case", REAL_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_real_gqa_run_matches_reference(case, real_env, tmp_path):
    run = gqa.run_cpu(**case, seed=1, save_dir=str(tmp_path / "run"))
    err = run.max_abs_error()
    assert err <= TOLERANCE[case["dtype"]], f"max |out - reference| = {err}; gqa-run said {json.dumps(run.result)}"


@needs_gqa_run
@pytest.mark.tools
@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_real_gqa_run_on_a_gpu_schedule(case, real_env, tmp_path):
    run = gqa.run_cpu(**case, seed=2, save_dir=str(tmp_path / "run"))
    assert run.result["schedule"] == case["schedule"]
    err = run.max_abs_error()
    assert err <= TOLERANCE[case["dtype"]], f"max |out - reference| = {err}; gqa-run said {json.dumps(run.result)}"


def test_unknown_schedule_is_refused_before_running(fake_run):
    with pytest.raises(ValueError, match="schedule must be one of cpu, sm_80, sm_90, got 'sm_70'"):
        gqa.run_cpu(4, 2, 8, schedule="sm_70")


def test_gpu_schedule_reaches_gqa_run(fake_run):
    run = gqa.run_cpu(4, 2, 8, schedule="sm_90")
    argv = run.meta["argv"]
    assert argv[argv.index("--schedule") + 1] == "sm_90"
