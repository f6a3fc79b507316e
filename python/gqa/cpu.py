"""``gqa.run_cpu``: run the compiler's CPU path (``gqa-run --target cpu``) and load its arrays.

``gqa-run --save DIR`` writes ``q.bin``, ``k.bin``, ``v.bin``, ``out.bin``
(little-endian raw arrays in the chosen layout and dtype; f16/bf16 as 16-bit
patterns) and ``meta.json``.  :func:`run_cpu` loads them back as float32 so
tests can compare the compiler's output with :func:`gqa.reference.attention`,
an independent float64 computation.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from . import reference
from ._tools import ENV_RUN, find_executable, searched_locations
from .config import KernelConfig
from .dtypes import STORAGE, decode
from .errors import ToolError, ToolNotFoundError
from .shapes import make_shape


def find_gqa_run() -> Optional[Path]:
    """The ``gqa-run`` executable (``$GQA_RUN``, PATH, ``<repo>/build*/bin``), or None."""
    return find_executable("gqa-run", ENV_RUN)


#: The schedules gqa-run can run on the CPU (gqa-select-schedule's targets).
SCHEDULES = ("cpu", "sm_80", "sm_90")


def _gqa_run_args(
    config: KernelConfig,
    batch: int,
    seq_q: int,
    seq_kv: int,
    kv_lens: Optional[Sequence[int]],
    seed: Optional[int],
    save_dir: Path,
    schedule: str = "cpu",
    sinks: bool = False,
    return_lse: bool = False,
) -> list[str]:
    """The gqa-run command line (everything after the executable)."""
    args = ["--target", "cpu", "--schedule", schedule]
    args += [a for a in config.compiler_args() if a != "--kv-lens"]
    chip_at = args.index("--chip")
    del args[chip_at:chip_at + 2]  # the CPU target has no chip
    args += ["--batch", str(batch), "--seq-q", str(seq_q), "--seq-kv", str(seq_kv)]
    if kv_lens is not None:
        args += ["--kv-lens", ",".join(str(int(n)) for n in kv_lens)]
    if seed is not None:
        args += ["--seed", str(seed)]
    if sinks:
        args.append("--sinks")
    if return_lse:
        args.append("--return-lse")
    args += ["--save", str(save_dir)]
    return args


def parse_json_line(stdout: str) -> dict:
    """The last line of ``stdout`` that is a JSON object (gqa-run's result line)."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise ToolError(f"gqa-run printed no JSON result line; its output was:\n{stdout.strip()}")


def load_raw(path: Path, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Load a little-endian raw array of ``dtype`` (f16/bf16/f32) and decode it to float32."""
    storage = STORAGE[dtype]
    want = int(np.prod(shape)) * storage.itemsize
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ToolError(f"gqa-run did not write {path}: {e.strerror or e}") from e
    if len(data) != want:
        raise ToolError(f"{path} has {len(data)} bytes, expected {want} ({dtype} array of shape {shape})")
    return decode(np.frombuffer(data, dtype=storage).reshape(shape), dtype)


@dataclass
class CpuRun:
    """The result of one ``gqa-run --target cpu``: its JSON line and the saved arrays (float32)."""

    config: KernelConfig
    batch: int
    seq_q: int
    seq_kv: int
    result: dict
    meta: dict
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    out: np.ndarray
    kv_lens: Optional[np.ndarray]
    #: The Hq sink logits gqa-run drew (``sinks=True``), else None.
    sinks: Optional[np.ndarray] = None
    #: The log-sum-exps ``[B, Hq, Sq]`` it returned (``return_lse=True``), else None.
    lse: Optional[np.ndarray] = None

    def reference(self) -> np.ndarray:
        """:func:`gqa.reference.attention` (float64) on exactly the inputs gqa-run used."""
        return self._reference(return_lse=False)

    def reference_lse(self) -> np.ndarray:
        """The float64 reference's log-sum-exps ``[B, Hq, Sq]`` of the same inputs."""
        return self._reference(return_lse=True)[1]

    def _reference(self, return_lse: bool) -> Any:
        cfg = self.config
        return reference.attention(
            self.q, self.k, self.v, layout=cfg.layout, window=cfg.window,
            kv_lens=self.kv_lens, softcap=cfg.softcap or None, scale=cfg.scale,
            sinks=self.sinks, return_lse=return_lse,
        )

    def max_abs_error(self) -> float:
        """max |out - reference|."""
        return float(np.max(np.abs(self.out.astype(np.float64) - self.reference()), initial=0.0))


def _saved_kv_lens(save_dir: Path, meta: dict, batch: int, requested: Optional[Sequence[int]]) -> Optional[np.ndarray]:
    """The KV lengths gqa-run used: meta.json's ``kv_lens`` list if present, else the requested ones."""
    saved = meta.get("kv_lens")
    if isinstance(saved, list):
        lens = np.asarray(saved, dtype=np.int64)
        if lens.shape != (batch,):
            raise ToolError(f"{save_dir / 'meta.json'}: kv_lens has {lens.shape}, expected ({batch},)")
        return lens
    return None if requested is None else np.asarray(requested, dtype=np.int64)


def run_cpu(
    q_heads: int,
    kv_heads: int,
    head_dim: int,
    *,
    batch: int = 1,
    seq_q: int = 16,
    seq_kv: Optional[int] = None,
    head_dim_v: Optional[int] = None,
    dtype: Any = "f32",
    layout: str = "bhsd",
    causal: bool = False,
    window: Optional[Sequence[int]] = None,
    softcap: Optional[float] = None,
    scale: Optional[float] = None,
    kv_lens: Optional[Sequence[int]] = None,
    seed: Optional[int] = None,
    save_dir: Optional[str] = None,
    schedule: str = "cpu",
    sinks: bool = False,
    return_lse: bool = False,
    timeout: Optional[float] = 600,
) -> CpuRun:
    """Run ``gqa-run --target cpu`` for one configuration and load what it saved.

    ``schedule`` is whose schedule the CPU runs: ``"cpu"``, or a GPU's
    (``"sm_80"``, ``"sm_90"``: its tiles, row packing and split-KV), to check
    on the CPU the numerics of what that GPU runs.  ``sinks`` draws one
    attention-sink logit per query head (``CpuRun.sinks``); ``return_lse``
    also returns the log-sum-exps (``CpuRun.lse``).  ``seq_kv`` defaults to
    ``seq_q``.  ``save_dir`` keeps the files (a
    temporary directory otherwise).  Raises
    :class:`~gqa.errors.ToolNotFoundError` when gqa-run is missing and
    :class:`~gqa.errors.ToolError` when it fails.
    """
    seq_kv = seq_q if seq_kv is None else seq_kv
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    config = KernelConfig.create(
        q_heads, kv_heads, head_dim, head_dim_v=head_dim_v, dtype=dtype, layout=layout,
        causal=causal, window=window, softcap=softcap, scale=scale, kv_lens=kv_lens is not None,
    )
    if kv_lens is not None and len(kv_lens) != batch:
        raise ValueError(f"kv_lens must have {batch} entries (one per batch), got {len(kv_lens)}")
    exe = find_gqa_run()
    if exe is None:
        raise ToolNotFoundError(f"gqa-run not found (looked in {searched_locations('gqa-run', ENV_RUN)})")
    with tempfile.TemporaryDirectory(prefix="gqa-run-") as tmp:
        out_dir = Path(save_dir) if save_dir is not None else Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(exe), *_gqa_run_args(config, batch, seq_q, seq_kv, kv_lens, seed, out_dir, schedule,
                                                 sinks, return_lse)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ToolError(f"cannot run {' '.join(cmd)}: {e}") from e
        if proc.returncode != 0:
            raise ToolError(
                f"gqa-run failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                f"{proc.stdout.strip()}\n{proc.stderr.strip()}".rstrip()
            )
        result = parse_json_line(proc.stdout)
        try:
            meta = json.loads((out_dir / "meta.json").read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ToolError(f"cannot read {out_dir / 'meta.json'}: {e}") from e
        shapes = {
            "q": make_shape(config.layout, batch, config.q_heads, seq_q, config.head_dim),
            "k": make_shape(config.layout, batch, config.kv_heads, seq_kv, config.head_dim),
            "v": make_shape(config.layout, batch, config.kv_heads, seq_kv, config.head_dim_v),
            "out": make_shape(config.layout, batch, config.q_heads, seq_q, config.head_dim_v),
        }
        arrays = {n: load_raw(out_dir / f"{n}.bin", s, config.dtype) for n, s in shapes.items()}
        lens = _saved_kv_lens(out_dir, meta, batch, kv_lens)
        if sinks:
            arrays["sinks"] = load_raw(out_dir / "sinks.bin", (config.q_heads,), "f32")
        if return_lse:
            arrays["lse"] = load_raw(out_dir / "lse.bin", (batch, config.q_heads, seq_q), "f32")
    return CpuRun(config=config, batch=batch, seq_q=seq_q, seq_kv=seq_kv, result=result, meta=meta,
                  kv_lens=lens, **arrays)
