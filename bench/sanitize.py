#!/usr/bin/env python3
"""compute-sanitizer on one kernel of each kind: the prepared device check's second call (issue 13).

    python3 bench/sanitize.py --out "$OUT"          # on the device, after device_check.py
    python3 bench/sanitize.py --plan                # what it runs (no GPU)

Each tool of :data:`TOOLS` (memcheck: out-of-bounds and misaligned accesses in global and shared
memory; racecheck: shared-memory hazards; synccheck: barriers misused, e.g. under divergence) runs one
process that checks every :data:`TARGETS` kernel once at a small size with the device check's own
correctness check (fresh random inputs, NaN-poisoned outputs, the float64 reference), so a kernel
that the sanitizer passes but that computes garbage still fails.  Only our kernels are instrumented
(``--kernel-name kns=gqa_``: PyTorch's own kernels run at full speed); memcheck runs with PyTorch's
caching allocator off, so an access past a tensor is past its allocation.  A tool passes when it
reports 0 errors (racecheck: 0 error hazards; warnings are reported) and every check passes ("incomplete"
when a kernel was skipped, e.g. an optional f32 kernel not in the cache); ``sanitize.json`` and ``sanitize.md`` (and each tool's log)
land in ``--out``.

compute-sanitizer is ``--sanitizer``, else the device's own (PATH, /usr/local/cuda/bin), else the one
prepare_kernels.py carries in ``.carry/compute-sanitizer`` (from the PyPI wheel
nvidia-cuda-sanitizer-api-cu12: :func:`prepare_sanitizer`).  The kernels come from the carried cache.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs  # noqa: E402
import device_check  # noqa: E402
import merges  # noqa: E402
from configs import REPO  # noqa: E402

TOOLS = ("memcheck", "racecheck", "synccheck")
CARRIED = REPO / ".carry" / "compute-sanitizer"
#: The wheel prepare_sanitizer fetches (CUDA 12.9's compute-sanitizer 2025.2: drivers r575 and later).
WHEEL = "nvidia-cuda-sanitizer-api-cu12==12.9.79"
#: Seconds one tool may take (its process group is killed after): 3 tools and the runtime build fit a
#: device call of 420 s.
TOOL_TIMEOUT_S = 110.0


@dataclass(frozen=True)
class Target:
    """One kernel: a correctness case of configs.py (or merges.py) at one of its sizes (by label)."""

    kind: str
    case: str
    shape: str


TARGETS: tuple[Target, ...] = (
    Target("prefill (tensor cores, causal)", "g8-causal", "B2 Sq129 Skv129"),
    Target("split-KV decode + combine", "l70b-sinks-lse", "B2 Sq1 Skv4097"),
    Target("split decode, an empty sequence (CTAs without KV tiles)", "l70b-kvlens-causal",
           "B4 Sq1 Skv1000 lens[1000, 0, 1, 517]"),
    Target("paged decode (16-token pages)", "l70b-paged16-kvlens", "B4 Sq1 Skv1000 lens[1000, 0, 1, 517]"),
    Target("D 256 (Q in shared memory), an empty sequence", "d256-paged256-window",
           "B4 Sq1 Skv1000 lens[1000, 0, 1, 517]"),
    Target("f32 (CUDA cores), sinks + LSE", "f32-d64-sinks-lse-kvlens", "B4 Sq17 Skv1000 lens[1000, 5, 17, 900]"),
    Target("varlen prefill + decode", "l70b-varlen-kvlens-sinks-lse-causal",
           "B3 Sq40 Skv50 q_lens[0, 40, 3] lens[50, 17, 3]"),
    Target("merge_states, in place", "merge-l70b-bshd-inplace", "B3 Sq17 Skv1000 lens[1000, 5, 300]"),
)


def _cases() -> dict[str, Any]:
    return {c.name: c for c in (*configs.CORRECTNESS, *merges.MERGE_CASES)}


def target_case(target: Target) -> Any:
    """The target's case with its one size (KeyError when the case or the size is not there)."""
    case = _cases()[target.case]
    shapes = [s for s in case.shapes if s.label() == target.shape]
    if not shapes:
        raise KeyError(f"{target.case} has no size {target.shape!r}")
    return replace(case, shapes=(shapes[0],))


def validate(targets: Sequence[Target] = TARGETS) -> list[str]:
    """Problems with the targets (empty when each names a case and one of its sizes)."""
    problems = []
    for t in targets:
        try:
            target_case(t)
        except KeyError as e:
            problems.append(f"{t.kind}: {e}")
    return problems


# ----------------------------------------------------------------------------- the tool
def find_sanitizer(explicit: Optional[str] = None) -> Optional[Path]:
    """``explicit``, else the device's compute-sanitizer (it matches its driver), else the carried one."""
    if explicit:
        return Path(explicit)
    for candidate in (shutil.which("compute-sanitizer"), "/usr/local/cuda/bin/compute-sanitizer",
                      "/usr/local/cuda/compute-sanitizer/compute-sanitizer", CARRIED / "compute-sanitizer"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def prepare_sanitizer(dest: Path = CARRIED, wheel: str = WHEEL) -> str:
    """Fetch compute-sanitizer (its wheel's binary and libraries, about 25 MiB) into ``dest``; a message."""
    if (dest / "compute-sanitizer").is_file():
        return f"compute-sanitizer: {dest} (already there)"
    with tempfile.TemporaryDirectory(prefix="gqa-sanitizer-") as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, wheel],
                              capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            return f"compute-sanitizer not carried (pip download {wheel} failed: {proc.stderr.strip()[-300:]})"
        try:
            size = extract_wheel(wheels[0], dest)
        except (ValueError, zipfile.BadZipFile, OSError) as e:
            return f"compute-sanitizer not carried ({wheels[0].name}: {e})"
    return f"compute-sanitizer: {wheel} into {dest} ({size / 2**20:.1f} MiB)"


def extract_wheel(wheel: Path, dest: Path) -> int:
    """The wheel's ``nvidia/cuda_sanitizer_api/{bin,lib}/*`` side by side in ``dest`` (the toolkit's layout:
    the binary finds its injection libraries beside it, not in the wheel's ../lib), the binary executable;
    the bytes written.  Raises ValueError if it holds no binary."""
    prefix, written = "nvidia/cuda_sanitizer_api/", 0
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            rest = member[len(prefix):] if member.startswith(prefix) else ""
            if rest.startswith(("bin/", "lib/")) and not member.endswith("/"):
                dest.mkdir(parents=True, exist_ok=True)
                written += (dest / Path(rest).name).write_bytes(archive.read(member))
    binary = dest / "compute-sanitizer"
    if not binary.is_file():
        raise ValueError(f"{wheel.name} holds no {prefix}bin/compute-sanitizer")
    binary.chmod(0o755)
    return written


def tool_command(sanitizer: Path, tool: str, log: Path, results: Path, cache_dir: str, seed: int) -> list[str]:
    """compute-sanitizer running this script's ``--target-run`` under ``tool``."""
    extra = ["--racecheck-report", "all"] if tool == "racecheck" else []
    # Failed host API calls (PyTorch's and cudart's probing) are not our kernels' errors: not reported.
    return [str(sanitizer), "--tool", tool, "--kernel-name", "kns=gqa_", "--report-api-errors", "no",
            "--print-limit", "50", "--log-file", str(log), *extra, sys.executable, str(Path(__file__).resolve()),
            "--target-run", "--results", str(results), "--cache-dir", cache_dir, "--seed", str(seed)]


_SUMMARY = re.compile(r"ERROR SUMMARY: (\d+) errors?")
#: racecheck's own last line: ``RACECHECK SUMMARY: 3 hazards displayed (2 errors, 1 warnings)``.
_RACECHECK_SUMMARY = re.compile(r"RACECHECK SUMMARY: \d+ hazards? displayed \((\d+) errors?, (\d+) warnings?\)")


def sanitizer_errors(log_text: str, tool: str = "memcheck") -> Optional[tuple[int, int]]:
    """(errors, warnings) of the log's summary line: ``RACECHECK SUMMARY`` for racecheck (its hazards: an
    error fails, a warning is reported), else ``ERROR SUMMARY`` (no warnings).  None when the log has no
    summary: the tool did not finish."""
    if tool == "racecheck":
        found = _RACECHECK_SUMMARY.findall(log_text)
        return (int(found[-1][0]), int(found[-1][1])) if found else None
    found = _SUMMARY.findall(log_text)
    return (int(found[-1]), 0) if found else None


def run_tool(sanitizer: Path, tool: str, out: Path, cache_dir: str, seed: int, timeout_s: float) -> dict[str, Any]:
    """One tool over every target: its error count, each check's status, and the verdict."""
    log, results = out / f"sanitize-{tool}.log", out / f"sanitize-{tool}.json"
    for stale in (log, results):  # a run that dies early must not read an earlier run's files
        stale.unlink(missing_ok=True)
    env = dict(os.environ)
    if tool == "memcheck":
        env["PYTORCH_NO_CUDA_MEMORY_CACHING"] = "1"  # an access past a tensor is past its allocation
    t0 = time.time()
    record: dict[str, Any] = {"tool": tool, "status": "error", "errors": None, "warnings": None, "checks": [],
                              "message": ""}
    tail = ""
    try:
        # Its own process group: a timeout kills the checked python too, not only compute-sanitizer.
        proc = subprocess.Popen(tool_command(sanitizer, tool, log, results, cache_dir, seed), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout_s)
            record["exit_status"] = proc.returncode
            tail = (output or "").strip()[-600:]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            tail = f"timed out after {timeout_s:.0f} s"
    except OSError as e:
        tail = f"cannot run {sanitizer}: {e}"
    record["seconds"] = round(time.time() - t0, 1)
    log_text = log.read_text(errors="replace") if log.is_file() else ""
    summary = sanitizer_errors(log_text, tool)
    if summary is not None:
        record["errors"], record["warnings"] = summary
    if results.is_file():
        record["checks"] = json.loads(results.read_text())
    failed = [c for c in record["checks"] if c.get("status") != "pass"]
    if summary is None:
        record["message"] = f"no summary line in {log.name}: {tail}"
    elif len(record["checks"]) != len(TARGETS):
        record["message"] = f"{len(record['checks'])} of {len(TARGETS)} targets ran: {tail}"
    else:
        unchecked = [c for c in failed if c.get("status") == "skipped"]
        record["status"] = ("fail" if record["errors"] or len(failed) > len(unchecked)
                            else "incomplete" if unchecked else "pass")
        record["message"] = (f"{record['errors']} sanitizer errors, {record['warnings']} warnings, "
                             f"{len(failed) - len(unchecked)} checks failed, {len(unchecked)} skipped")
    return record


def markdown(records: Sequence[dict[str, Any]], header: dict[str, Any]) -> str:
    """sanitize.md: one row per tool and target."""
    lines = ["# compute-sanitizer", "", *(f"- {k}: {v}" for k, v in header.items()), "",
             "| tool | status | errors | warnings | seconds | message |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['tool']} | {r['status']} | {r['errors']} | {r.get('warnings')} | {r.get('seconds', '')} | "
              f"{r['message']} |" for r in records]
    lines += ["", "| tool | kernel | case | size | check | rel L2 |", "|---|---|---|---|---|---|"]
    for r in records:
        for c in r["checks"]:
            lines.append(f"| {r['tool']} | {c.get('kind', '')} | {c.get('case', '')} | {c.get('shape', '')} | "
                         f"{c.get('status', '')} {c.get('message', '')} | {c.get('rel_l2', '')} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the checked process
def target_run(args: argparse.Namespace) -> int:
    """Under the sanitizer: check each target once, recording every result as it comes."""
    import measure  # noqa: PLC0415 - torch, only in this process
    import merge_measure  # noqa: PLC0415

    records: list[dict[str, Any]] = []
    for target in TARGETS:
        case = target_case(target)
        check = merge_measure.check_merge_case if isinstance(case, merges.MergeCase) else measure.check_case
        try:
            runs = check(case, args.cache_dir, args.seed)
        except Exception as e:  # noqa: BLE001 - recorded; a lost context ends the run below
            runs = [{"status": "error", "message": f"{type(e).__name__}: {e}"}]
        for run in runs:
            records.append({"kind": target.kind, "case": target.case, "shape": target.shape,
                            **{k: run.get(k) for k in ("status", "message", "rel_l2")}})
        Path(args.results).write_text(json.dumps(records, indent=1))
        if not measure.cuda_healthy():
            return 3
    return 0


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT", "bench-out"), help="results folder (default $OUT)")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma list of {TOOLS}")
    p.add_argument("--sanitizer", default=None, help="the compute-sanitizer to use")
    p.add_argument("--cache-dir", default=str(device_check.DEFAULT_CACHE))
    p.add_argument("--runtime-lib", default=None, help="use this libgqa_runtime.so instead of building one")
    p.add_argument("--build-dir", default="/tmp/gqa-rt")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 4)
    p.add_argument("--timeout", type=float, default=TOOL_TIMEOUT_S, help="seconds per tool")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plan", action="store_true", help="print the tools, targets and commands; no GPU")
    p.add_argument("--target-run", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--results", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.target_run:
        return target_run(args)
    problems = validate()
    tools = [t for t in args.tools.split(",") if t]
    if problems or not tools or set(tools) - set(TOOLS):
        print("\n".join(problems) or f"tools {tools} must be some of {TOOLS}", file=sys.stderr)
        return 2
    sanitizer = find_sanitizer(args.sanitizer)
    out = Path(args.out)
    if args.plan:
        print(f"compute-sanitizer: {sanitizer or 'not found (prepare_kernels.py carries one)'}")
        print(f"{len(tools)} tools x {len(TARGETS)} kernels, at most {args.timeout:.0f} s a tool:")
        print("\n".join(f"  {t.kind}: {t.case} {t.shape}" for t in TARGETS))
        print(" ".join(tool_command(sanitizer or Path("compute-sanitizer"), tools[0], out / "LOG", out / "JSON",
                                    args.cache_dir, args.seed)))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    header: dict[str, Any] = {"sanitizer": str(sanitizer), "kernel cache": args.cache_dir}
    if sanitizer is None:
        header["sanitizer"] = "not found: run prepare_kernels.py (it carries one) or pass --sanitizer"
        (out / "sanitize.md").write_text(markdown([], header))
        print(header["sanitizer"], file=sys.stderr)
        return 2
    if not os.access(sanitizer, os.X_OK):
        sanitizer.chmod(0o755)  # a carried file may lose its mode on the way
    report = device_check.Report()
    lib = device_check.runtime_library(args, report)
    if lib is None:
        print("\n".join(report.errors), file=sys.stderr)
        return 2
    os.environ["GQA_RUNTIME_LIB"], os.environ["GQA_KERNEL_CACHE"] = str(lib), str(Path(args.cache_dir).resolve())
    header.update(runtime=str(lib), notes="; ".join(report.notes))
    records = []
    for tool in tools:
        records.append(run_tool(sanitizer, tool, out, args.cache_dir, args.seed, args.timeout))
        print(f"{tool}: {records[-1]['status']}: {records[-1]['message']} ({records[-1].get('seconds')} s)", flush=True)
        (out / "sanitize.json").write_text(json.dumps({**header, "tools": records}, indent=1))
        (out / "sanitize.md").write_text(markdown(records, header))
    return 0 if all(r["status"] == "pass" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
