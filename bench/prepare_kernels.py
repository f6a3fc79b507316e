#!/usr/bin/env python3
"""Compile every kernel configs.py and merges.py need (on this machine, which has the compiler) into a carried cache.

    python3 bench/prepare_kernels.py                # -> .carry/kernels, .carry/manifest.json

Each distinct configuration is compiled once with ``gqa.compile(..., cache_dir=...)`` (the merge
kernels with ``gqa.compile_merge_states``, through libgqa_compiler.so: they have no gqa-compile path in
the Python package) (in parallel), its PTX is checked with ``ptxas -v`` where ptxas exists (registers, spills, stack), and
``.carry/manifest.json`` records the commit, each kernel's status and the errors.  Also put in
``.carry``: a prebuilt ``libgqa_runtime.so`` (a fallback, should building it on the device fail),
GoogleTest's source (for the optional runtime GPU unit tests) and compute-sanitizer from PyPI (for
bench/sanitize.py, the second device call).  ``.carry`` is git-ignored and
travels with ``carry: [".carry"]``.

Exit status 1 when a required kernel did not compile (optional ones, e.g. f32, are reported and
left out: the device check skips them).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs  # noqa: E402
import device_check  # noqa: E402
import gqa  # noqa: E402
import merges  # noqa: E402
import sanitize  # noqa: E402
from configs import REPO, KernelUse  # noqa: E402

CARRY = REPO / ".carry"
#: What one device call may carry, working tree included (device README).
TRAVEL_LIMIT = 64 * 1024 * 1024


@dataclass
class Compiled:
    """The outcome of one kernel."""

    key: str
    use: KernelUse
    status: str = "failed"  # ok | failed
    seconds: float = 0.0
    fresh: bool = False
    error: str = ""
    ptxas: dict = field(default_factory=dict)

    def manifest_entry(self) -> dict[str, Any]:
        """This kernel's entry in manifest.json."""
        kind = "merge_states" if isinstance(self.use.attrs, merges.MergeAttrs) else "attention"
        return {"label": self.use.attrs.label(), "kind": kind, "users": self.use.users, "optional": self.use.optional,
                "status": self.status, "seconds": round(self.seconds, 3), "fresh": self.fresh,
                "error": self.error, "ptxas": self.ptxas}


def compile_one(key: str, use: KernelUse, cache_dir: Path, chip: str, recompile: bool) -> Compiled:
    """``gqa.compile`` (or ``gqa.compile_merge_states``) one configuration; never raises (the error is recorded)."""
    result = Compiled(key, use)
    entry = cache_dir / key / "kernel.json"
    before = entry.stat().st_mtime if entry.is_file() else None
    t0 = time.perf_counter()
    try:
        a = use.attrs
        if isinstance(a, merges.MergeAttrs):
            gqa.compile_merge_states(a.heads, a.head_dim_v, chip=chip, cache_dir=cache_dir, recompile=recompile,
                                     **a.compile_kwargs())
        else:
            gqa.compile(a.q_heads, a.kv_heads, a.head_dim, chip=chip, cache_dir=cache_dir, recompile=recompile,
                        **a.compile_kwargs())
        result.status = "ok"
    except (gqa.GQAError, ValueError, TypeError, OSError) as e:
        result.error = f"{type(e).__name__}: {e}"
    result.seconds = time.perf_counter() - t0
    result.fresh = entry.is_file() and entry.stat().st_mtime != before
    return result


_PTXAS_FUNC = re.compile(r"Compiling entry function '([^']+)' for '([^']+)'")
_PTXAS_NUMS = {
    "stack_bytes": re.compile(r"(\d+) bytes stack frame"),
    "spill_stores": re.compile(r"(\d+) bytes spill stores"),
    "spill_loads": re.compile(r"(\d+) bytes spill loads"),
    "registers": re.compile(r"Used (\d+) registers"),
    "smem_bytes": re.compile(r"(\d+) bytes smem"),
}


def parse_ptxas(text: str) -> dict[str, dict[str, int]]:
    """Per entry function: registers, stack frame, spill stores/loads, static shared memory."""
    funcs: dict[str, dict[str, int]] = {}
    current = None
    for line in text.splitlines():
        m = _PTXAS_FUNC.search(line)
        if m:
            current = funcs.setdefault(m.group(1), {})
            continue
        if current is None:
            continue
        for name, pattern in _PTXAS_NUMS.items():
            found = pattern.search(line)
            if found:
                current[name] = int(found.group(1))
    return funcs


def ptxas_check(result: Compiled, cache_dir: Path, ptxas: str) -> None:
    """Assemble the kernel's PTX for its chip; a rejection makes the kernel ``failed``."""
    entry = cache_dir / result.key
    chip = json.loads((entry / "kernel.json").read_text())["chip"]
    cmd = [ptxas, f"-arch={chip}", "-v", str(entry / "kernel.ptx"), "-o", os.devnull]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        result.status = "failed"
        result.error = f"ptxas rejected the PTX: {(proc.stderr or proc.stdout).strip()[-800:]}"
        return
    result.ptxas = parse_ptxas(proc.stdout + proc.stderr)


def compile_all(kernels: dict[str, KernelUse], cache_dir: Path, chip: str, jobs: int, recompile: bool,
                ptxas: Optional[str]) -> list[Compiled]:
    """Compile (and ptxas-check) every kernel, ``jobs`` at a time, in the order given."""
    cache_dir.mkdir(parents=True, exist_ok=True)

    def work(item: tuple[str, KernelUse]) -> Compiled:
        result = compile_one(item[0], item[1], cache_dir, chip, recompile)
        if result.status == "ok" and ptxas:
            ptxas_check(result, cache_dir, ptxas)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(work, kernels.items()))


def git_facts() -> dict[str, Any]:
    """The commit and whether tracked files differ from it (read-only git: no index refresh)."""
    def git(*args: str) -> Optional[str]:
        try:
            proc = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), *args],
                                  capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    ignored = git("check-ignore", "-q", ".carry/")
    return {"commit": head.strip() if head else "unknown", "dirty": bool(status and status.strip()),
            "carry_ignored": ignored is not None}


def travel_bytes(carry: Path) -> Optional[int]:
    """Bytes one device call would send: tracked and untracked-not-ignored files, plus ``carry``."""
    try:
        proc = subprocess.run(["git", "--no-optional-locks", "-C", str(REPO), "ls-files", "-z", "--cached",
                               "--others", "--exclude-standard"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    total = 0
    for name in proc.stdout.decode(errors="replace").split("\0"):
        path = REPO / name
        if name and path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total + sum(p.stat().st_size for p in carry.rglob("*") if p.is_file())


def prepare_runtime(dest: Path, jobs: int) -> str:
    """Build libgqa_runtime.so here and copy it to ``dest`` (the device's fallback); a message."""
    with tempfile.TemporaryDirectory(prefix="gqa-rt-") as tmp:
        try:
            lib = device_check.build_runtime(Path(tmp) / "build", jobs, log=lambda line: None)
        except (RuntimeError, OSError) as e:
            return f"runtime fallback not built: {str(e)[:300]}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, dest)
    return f"runtime fallback: {dest} ({dest.stat().st_size} bytes)"


def prepare_googletest(source: Path, dest: Path) -> str:
    """Copy GoogleTest's source for the optional runtime GPU tests; a message."""
    if not (source / "CMakeLists.txt").is_file():
        return f"googletest: {source} not found (the device's runtime GPU tests need a GoogleTest there)"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".git", "docs"))
    return f"googletest: copied {source} to {dest}"


def prepare_python_gpu_tests(cache_dir: Path, chip: str) -> str:
    """Compile the kernels of python/tests/test_gpu.py (its cases are in gpu_cases.py) into the cache,
    so that the PyTorch integration tests can run on the GPU machine, which has no compiler."""
    sys.path.insert(0, str(REPO / "python" / "tests"))
    try:
        import gpu_cases  # noqa: PLC0415 - a test module, imported only here
    finally:
        sys.path.pop(0)
    failed = []
    configs_ = gpu_cases.kernel_configs(chip)
    for config in configs_:
        try:
            gqa.compiler.compile_config(config, cache_dir=cache_dir)
        except Exception as e:  # noqa: BLE001 - reported, not fatal: the device check does not need them
            failed.append(f"{config.key()}: {short_error(str(e), 200)}")
    text = f"python/tests/test_gpu.py kernels: {len(configs_) - len(failed)} of {len(configs_)} in the cache"
    return text + "".join(f"\n  failed: {line}" for line in failed)


def summarize(results: Sequence[Compiled], wall: float) -> tuple[list[str], int]:
    """Report lines and the exit status (1 if a required kernel failed)."""
    ok = [r for r in results if r.status == "ok"]
    failed_required = [r for r in results if r.status != "ok" and not r.use.optional]
    failed_optional = [r for r in results if r.status != "ok" and r.use.optional]
    lines = [f"kernels: {len(results)} distinct, {len(ok)} ok ({sum(r.fresh for r in ok)} compiled now, "
             f"{len(ok) - sum(r.fresh for r in ok)} from the cache), {len(failed_required)} failed, "
             f"{len(failed_optional)} optional left out; compile time {wall:.1f} s wall, "
             f"{sum(r.seconds for r in results):.1f} s summed"]
    for r in results:
        if r.ptxas:
            worst = {k: max(f.get(k, 0) for f in r.ptxas.values()) for k in ("registers", "spill_stores", "stack_bytes")}
            if worst["spill_stores"] or worst["stack_bytes"]:
                lines.append(f"  note: {r.use.attrs.label()}: {worst}")
    lines += [f"  optional, left out: {r.use.attrs.label()}: {short_error(r.error, 300)}" for r in failed_optional]
    lines += [f"  FAILED: {r.use.attrs.label()} (used by {', '.join(r.use.users[:3])}): {short_error(r.error, 1200)}"
              for r in failed_required]
    return lines, (1 if failed_required else 0)


def short_error(error: str, limit: int) -> str:
    """The compiler's own message first (the last lines), then the start of the command line."""
    lines = [line for line in error.splitlines() if line.strip()]
    if len(lines) <= 1:
        return error[:limit]
    return (" | ".join(lines[1:]) + " | " + lines[0])[:limit]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--carry-dir", default=str(CARRY), help="the carried folder (default .carry)")
    p.add_argument("--cache-dir", default=None, help="kernel cache (default <carry-dir>/kernels)")
    p.add_argument("--manifest", default=None, help="default <carry-dir>/manifest.json")
    p.add_argument("--chip", default=configs.CHIP)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    p.add_argument("--recompile", action="store_true", help="compile even what the cache holds")
    p.add_argument("--only", default=None, help="regex: compile only kernels whose label or users match")
    p.add_argument("--no-ptxas", action="store_true", help="skip the ptxas check")
    p.add_argument("--no-runtime", action="store_true", help="do not build the fallback runtime")
    p.add_argument("--no-python-tests", action="store_true",
                   help="do not compile the kernels of python/tests/test_gpu.py into the cache")
    p.add_argument("--no-sanitizer", action="store_true",
                   help="do not carry compute-sanitizer (bench/sanitize.py, the second device call)")
    p.add_argument("--googletest", default="/usr/src/googletest", help="GoogleTest source to carry ('' = none)")
    args = p.parse_args(argv)
    args.cache_dir = args.cache_dir or str(Path(args.carry_dir) / "kernels")
    args.manifest = args.manifest or str(Path(args.carry_dir) / "manifest.json")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    problems = configs.validate() + merges.validate()
    if problems:
        print("configs.py / merges.py are not well formed:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    kernels = merges.all_kernels(chip=args.chip)
    if args.only:
        kernels = {k: u for k, u in kernels.items()
                   if re.search(args.only, u.attrs.label() + " " + " ".join(u.users))}
    compiler = gqa.find_compiler()
    if compiler is None:
        print("gqa-compile not found ($GQA_COMPILE, PATH, build*/bin): build the compiler first", file=sys.stderr)
        return 1
    ptxas = None if args.no_ptxas else shutil.which("ptxas")
    cache_dir = Path(args.cache_dir).resolve()
    print(f"compiling {len(kernels)} kernels with {compiler} into {cache_dir} ({args.jobs} at a time"
          f"{', ptxas ' + ptxas if ptxas else ', no ptxas check'})", flush=True)
    t0 = time.perf_counter()
    results = compile_all(kernels, cache_dir, args.chip, args.jobs, args.recompile, ptxas)
    wall = time.perf_counter() - t0
    lines, status = summarize(results, wall)

    carry = Path(args.carry_dir).resolve()
    extras = []
    if not args.only and not args.no_python_tests:
        extras.append(prepare_python_gpu_tests(cache_dir, args.chip))
    if not args.no_runtime:
        extras.append(prepare_runtime(carry / "runtime" / "libgqa_runtime.so", args.jobs))
    if args.googletest:
        extras.append(prepare_googletest(Path(args.googletest), carry / "googletest"))
    if not args.no_sanitizer:
        extras.append(sanitize.prepare_sanitizer(carry / "compute-sanitizer"))
    facts = git_facts()
    manifest = {
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": facts["commit"], "dirty": facts["dirty"], "chip": args.chip, "compiler": str(compiler),
        "cache_dir": str(cache_dir), "compile_wall_seconds": round(wall, 2),
        "kernels": {r.key: r.manifest_entry() for r in results},
    }
    manifest_path = Path(args.manifest)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    size = travel_bytes(carry)
    lines += extras
    lines.append(f"manifest: {manifest_path} (commit {facts['commit'][:12]}{', dirty tree' if facts['dirty'] else ''})")
    if size is not None:
        lines.append(f"a device call would send about {size / 2**20:.1f} MiB (limit 64 MiB)"
                     + ("  ** OVER THE LIMIT **" if size > TRAVEL_LIMIT else ""))
    if not facts["carry_ignored"]:
        lines.append("warning: .carry/ is not git-ignored (add /.carry/ to .gitignore)")
    print("\n".join(lines), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
