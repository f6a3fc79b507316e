#!/usr/bin/env python3
"""The GPU check, in one call on the device machine: correctness over configs.CORRECTNESS and
timing of configs.BENCHMARK against PyTorch's attention backends.  See bench/run_on_device.md.

Two processes.  This one (the supervisor) never touches CUDA: it builds the runtime, lists the
tasks, and runs a *worker* (this script with ``--worker``) that does the torch/CUDA work one task
at a time, appending an event per task to a JSON-lines file.  When a task kills the worker (a
sticky CUDA error such as an illegal address, a crash) or outlives its time limit (a hung
kernel), the supervisor records it as an error and starts a new worker at the next task.  After
every task it rewrites ``$OUT/results.json`` and ``results.md``, so a run stopped from outside
still leaves its results.  A global time guard (``--max-minutes``) stops new tasks from starting;
the table is printed last.  The exit code is 1 if any correctness check failed, 2 if the setup
failed, else 0.

``--plan`` prints the task list and a time estimate without a GPU (torch-free).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs  # noqa: E402
import harness  # noqa: E402
import merges  # noqa: E402
from configs import REPO  # noqa: E402

DEFAULT_CACHE = REPO / ".carry" / "kernels"
DEFAULT_MANIFEST = REPO / ".carry" / "manifest.json"
FALLBACK_RUNTIME = REPO / ".carry" / "runtime" / "libgqa_runtime.so"
CARRIED_GTEST = REPO / ".carry" / "googletest"
PHASES = ("ceilings", "refcheck", "correctness", "bench", "flex", "gtests")
#: Seconds a task may run before the supervisor kills the worker (by task kind).
TASK_TIMEOUT_S = {"env": 120.0, "ceilings": 90.0, "refcheck": 90.0, "correctness": 120.0, "bench": 150.0,
                  "flex": 150.0}
#: Seconds a new worker may take to import torch and start its first task.
STARTUP_TIMEOUT_S = 180.0


# ------------------------------------------------------------------------------------------ tasks

def correctness_cases() -> list:
    """Every correctness case in order: configs.CORRECTNESS (attention), then merges.MERGE_CASES."""
    return list(configs.CORRECTNESS) + list(merges.MERGE_CASES)


def bench_rows() -> list:
    """Every timed row in order: configs.BENCHMARK with the merge rows (cheap) before its first prefill row."""
    rows = list(configs.BENCHMARK)
    first_prefill = next((i for i, b in enumerate(rows) if b.phase == "prefill"), len(rows))
    return rows[:first_prefill] + list(merges.MERGE_BENCHMARK) + rows[first_prefill:]


def task_list(phases: Sequence[str], only: Optional[str] = None) -> list[str]:
    """The worker's tasks in order: ``env``, ``ceilings``, ``refcheck:<case>``, ``correctness:<case>``
    (:func:`correctness_cases`), ``bench:<row>`` (:func:`bench_rows`), ``flex:<row>`` (configs.FLEX_ROWS);
    ``only`` (a regex) filters case and row names."""
    keep = (lambda name: re.search(only, name) is not None) if only else (lambda name: True)
    tasks = ["env"]
    if "ceilings" in phases:
        tasks.append("ceilings")
    if "refcheck" in phases:
        tasks += [f"refcheck:{c.name}" for c in correctness_cases() if keep(c.name)]
    if "correctness" in phases:
        tasks += [f"correctness:{c.name}" for c in correctness_cases() if keep(c.name)]
    if "bench" in phases:
        tasks += [f"bench:{b.name}" for b in bench_rows() if keep(b.name)]
    if "flex" in phases:
        tasks += [f"flex:{name}" for name in configs.FLEX_ROWS if keep(name)]
    return tasks


def task_kind(task: str) -> str:
    """``env``, ``ceilings``, ``refcheck``, ``correctness``, ``bench`` or ``flex``."""
    return task.split(":", 1)[0]


def task_subject(task: str) -> str:
    """The case or row name of a task (empty for env/ceilings)."""
    return task.split(":", 1)[1] if ":" in task else ""


# ------------------------------------------------------------------------------------- the report

@dataclass
class Report:
    """Everything the run found, assembled from the worker's events; :meth:`as_dict` is results.json."""

    environment: dict = field(default_factory=dict)
    ceilings: dict = field(default_factory=dict)
    reference_checks: list = field(default_factory=list)
    correctness: list = field(default_factory=list)
    benchmark: list = field(default_factory=list)
    gtests: Optional[dict] = None
    errors: list = field(default_factory=list)
    skipped_for_time: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    max_minutes: float = 0.0
    wall_seconds: float = 0.0

    def add(self, task: str, result: Any) -> None:
        """File a finished task's result."""
        kind = task_kind(task)
        if kind == "env":
            self.environment.update(result)
        elif kind == "ceilings":
            self.ceilings.update(result)
        elif kind == "refcheck":
            self.reference_checks += result
        elif kind == "correctness":
            self.correctness += result
        elif kind == "bench":
            self.benchmark.append(result)
        elif kind == "flex":
            row = self._row(task_subject(task))
            if row is None:
                self.benchmark.append(result)
            else:
                row["impls"].update({k: v for k, v in result["impls"].items() if k == "flex"})
                row["flex_compile_s"] = result.get("flex_compile_s", 0.0)

    def _row(self, name: str) -> Optional[dict]:
        return next((r for r in self.benchmark if r["name"] == name), None)

    def add_failure(self, task: str, message: str) -> None:
        """File a task that did not finish (worker crash, timeout) as errors where it belongs."""
        kind, subject = task_kind(task), task_subject(task)
        self.errors.append(f"{task}: {message}")
        if kind == "correctness":
            case = CASES[subject]
            self.correctness += [harness.correctness_run(case, s.label(), message=message) for s in case.shapes]
        elif kind == "refcheck":
            self.reference_checks.append({"case": subject, "shape": "*", "status": "error", "rel_diff": None,
                                          "message": message})
        elif kind == "bench":
            row = harness.bench_row(BENCH[subject], 0)
            row["error"] = message
            self.benchmark.append(row)
        elif kind == "flex":
            row = self._row(subject)
            if row is not None:
                row["impls"]["flex"] = {"error": message}

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready report."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def failed(self) -> bool:
        """Whether any correctness check (or the runtime's GPU tests) failed."""
        return harness.summary(self.as_dict())["failed"]


CASES = {c.name: c for c in correctness_cases()}
BENCH = {b.name: b for b in bench_rows()}


# ------------------------------------------------------------------------------------- supervisor

@dataclass
class Supervisor:
    """Runs the tasks in workers, restarting after a crash or a hung task (see the module docstring).

    ``worker_cmd(start, flex_budget_s)`` gives the command of a worker starting at task ``start``;
    ``on_task(task, result)`` is called for each finished task (``result`` None for a failure).
    """

    tasks: list[str]
    events_path: Path
    worker_cmd: Callable[[int, float], list[str]]
    budget: harness.Budget
    report: Report
    on_task: Callable[[str, Any], None] = lambda task, result: None
    flex_budget_s: float = 90.0
    task_timeout: Callable[[str], float] = lambda task: TASK_TIMEOUT_S.get(task_kind(task), 120.0)
    startup_timeout_s: float = STARTUP_TIMEOUT_S
    poll_s: float = 0.2
    hard_deadline: float = float("inf")
    done: set = field(default_factory=set)
    #: Why the run stopped early without the time guard (the worker could not start), else None.
    aborted: Optional[str] = None

    def run(self) -> None:
        """Run every task (or until the time guard), then list what was not run."""
        start = 0
        while start < len(self.tasks) and not self.budget.expired():
            next_start = self._run_worker(start)
            if next_start is None:
                break
            start = next_start
        self.report.skipped_for_time += [t for t in self.tasks if t not in self.done]

    def _flex_left(self) -> float:
        spent = sum(r.get("flex_compile_s", 0.0) for r in self.report.benchmark)
        return max(0.0, self.flex_budget_s - spent)

    def _run_worker(self, start: int) -> Optional[int]:
        """One worker from task ``start``; returns where the next worker starts, or None to stop."""
        self.events_path.write_text("")
        # Its own process group (same session), so that a kill takes its compile workers along.
        proc = subprocess.Popen(self.worker_cmd(start, self._flex_left()), process_group=0)
        offset, current, started_at, launched = 0, None, None, time.time()
        while True:
            offset, events = _read_events(self.events_path, offset)
            for ev in events:
                if ev["event"] == "start":
                    current, started_at = ev["task"], time.time()
                else:
                    current = self._handle_end(ev, current)
            rc = proc.poll()
            if rc is not None:
                offset, events = _read_events(self.events_path, offset)
                for ev in events:  # events written just before exiting
                    if ev["event"] != "start":
                        current = self._handle_end(ev, current)
                return self._after_exit(rc, current, start)
            now = time.time()
            if current is not None and now - started_at > self.task_timeout(current):
                _kill(proc)
                self._fail(current, f"timed out after {self.task_timeout(current):.0f} s (worker killed)")
                return self.tasks.index(current) + 1
            if current is None and not self._progress_since(start) and now - launched > self.startup_timeout_s:
                _kill(proc)
                self._abort(f"the worker did not start a task within {self.startup_timeout_s:.0f} s")
                return None
            if now > self.hard_deadline:
                _kill(proc)
                if current is not None:
                    self._fail(current, "stopped by the hard time limit")
                return None
            time.sleep(self.poll_s)

    def _handle_end(self, ev: dict, current: Optional[str]) -> Optional[str]:
        """A ``done`` or ``failed`` event; returns the task still running (None)."""
        if ev["event"] == "done":
            self._finish(ev["task"], ev.get("result"))
        else:
            self._fail(ev["task"], ev.get("message", "failed"))
        return None if ev["task"] == current else current

    def _progress_since(self, start: int) -> bool:
        return any(t in self.done for t in self.tasks[start:])

    def _after_exit(self, rc: int, current: Optional[str], start: int) -> Optional[int]:
        if current is not None:  # died inside a task
            self._fail(current, f"the worker died (exit {rc}) during this task; see the log above")
            return self.tasks.index(current) + 1
        if rc == 0:
            return None  # finished, or stopped by the time guard
        if not self._progress_since(start):
            self._abort(f"the worker failed before its first task (exit {rc}); see the log above")
            return None
        remaining = [i for i in range(start, len(self.tasks)) if self.tasks[i] not in self.done]
        return remaining[0] if remaining else None  # exit 3: CUDA context lost after a task; go on

    def _abort(self, message: str) -> None:
        self.aborted = message
        self.report.errors.append(message)

    def _finish(self, task: str, result: Any) -> None:
        if task in self.done:
            return
        self.done.add(task)
        self.report.add(task, result)
        self.on_task(task, result)

    def _fail(self, task: str, message: str) -> None:
        if task in self.done:
            return
        self.done.add(task)
        self.report.add_failure(task, message)
        self.on_task(task, None)


def _read_events(path: Path, offset: int) -> tuple[int, list[dict]]:
    """Complete JSON lines appended to ``path`` after byte ``offset``."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset, []
    end = data.rfind(b"\n") + 1
    events = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return offset + end, events


def _kill(proc: subprocess.Popen) -> None:
    """Kill the worker and every process of its group (e.g. torch.compile's compile workers)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


# ---------------------------------------------------------------------------------- environment

def find_cmake() -> Optional[str]:
    """cmake on PATH, or the one installed beside this Python (pip's cmake package)."""
    found = shutil.which("cmake")
    beside = Path(sys.executable).parent / "cmake"
    return found or (str(beside) if beside.is_file() else None)


def build_runtime(build_dir: Path, jobs: int, log: Callable[[str], None] = print) -> Path:
    """Build libgqa_runtime.so from lib/Runtime (tests off); raises RuntimeError with the output."""
    cmake = find_cmake()
    if cmake is None:
        raise RuntimeError("cmake not found")
    steps = [
        [cmake, "-S", str(REPO / "lib" / "Runtime"), "-B", str(build_dir), "-DGQA_RUNTIME_ENABLE_TESTS=OFF",
         "-DCMAKE_BUILD_TYPE=Release"],
        [cmake, "--build", str(build_dir), "-j", str(jobs), "--target", "gqa_runtime"],
    ]
    for cmd in steps:
        log("$ " + " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                               f"{proc.stderr[-2000:]}")
    lib = build_dir / "libgqa_runtime.so"
    if not lib.is_file():
        raise RuntimeError(f"the build did not produce {lib}")
    return lib


def runtime_library(args: argparse.Namespace, report: Report) -> Optional[Path]:
    """``--runtime-lib``, else a fresh build, else the runtime carried in .carry/runtime (noted)."""
    if args.runtime_lib:
        return Path(args.runtime_lib)
    t0 = time.time()
    try:
        lib = build_runtime(Path(args.build_dir), args.jobs)
        report.notes.append(f"runtime built here from lib/Runtime in {time.time() - t0:.0f} s")
        return lib
    except (RuntimeError, OSError) as e:
        report.errors.append(f"building the runtime: {e}")
        if FALLBACK_RUNTIME.is_file():
            report.notes.append("runtime: the build failed; using the prebuilt .carry/runtime/libgqa_runtime.so")
            return FALLBACK_RUNTIME
        return None


def nvidia_smi() -> dict[str, Any]:
    """Driver, GPU name and clocks from nvidia-smi ({} when it is missing)."""
    query = "name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw"
    try:
        proc = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if proc.returncode != 0 or not proc.stdout.strip():
        return {}
    values = [v.strip() for v in proc.stdout.strip().splitlines()[0].split(",")]
    keys = query.split(",")
    info = dict(zip(keys, values))
    return {"gpu": info.get("name"), "driver": info.get("driver_version"), "memory": info.get("memory.total"),
            "clocks": f"SM {info.get('clocks.sm')} (max {info.get('clocks.max.sm')}), mem {info.get('clocks.mem')}",
            "temperature": info.get("temperature.gpu"), "power": info.get("power.draw")}


def load_manifest(path: Path) -> dict[str, Any]:
    """prepare_kernels.py's manifest ({} when absent)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def base_environment(args: argparse.Namespace, manifest: dict) -> dict[str, Any]:
    """Date, commit and host facts the supervisor knows without CUDA."""
    return {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": args.commit or manifest.get("commit", "unknown"),
            "dirty": manifest.get("dirty") if not args.commit else None,
            "kernels_prepared": manifest.get("created"), "python": platform.python_version(),
            "host": platform.node(), **nvidia_smi()}


# ---------------------------------------------------------------------------------------- gtests

def run_gtests(build_dir: Path, jobs: int, timeout_s: float) -> dict[str, Any]:
    """Optional: build the runtime's GoogleTest suite (GoogleTest from .carry/googletest if carried,
    else the system's) and run it with ``GQA_REQUIRE_GPU=1``."""
    cmake = find_cmake()
    if cmake is None:
        return {"status": "skipped", "message": "cmake not found"}
    t0 = time.time()
    configure = [cmake, "-S", str(REPO / "lib" / "Runtime"), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                 "-DGQA_RUNTIME_ENABLE_TESTS=ON"]
    steps = []
    if CARRIED_GTEST.is_dir():
        gbuild, prefix = build_dir.parent / (build_dir.name + "-googletest"), build_dir.parent / (build_dir.name + "-gtest")
        steps += [[cmake, "-S", str(CARRIED_GTEST), "-B", str(gbuild), "-DBUILD_GMOCK=OFF",
                   "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_INSTALL_PREFIX={prefix}"],
                  [cmake, "--build", str(gbuild), "-j", str(jobs), "--target", "install"]]
        configure.append(f"-DCMAKE_PREFIX_PATH={prefix}")
    steps += [configure, [cmake, "--build", str(build_dir), "-j", str(jobs), "--target", "gqa-runtime-tests"]]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            if cmd is steps[-1] and not (build_dir / "unittests").is_dir():
                return {"status": "skipped", "message": "GoogleTest not found: the tests were not configured"}
            tail = (proc.stdout + proc.stderr)[-600:]
            return {"status": "skipped", "message": f"build failed: {' '.join(cmd[:3])}: {tail}"}
    binary = build_dir / "unittests" / "gqa-runtime-tests"
    remaining = max(10.0, timeout_s - (time.time() - t0))
    try:
        proc = subprocess.run([str(binary), "--gtest_brief=1"], capture_output=True, text=True,
                              env={**os.environ, "GQA_REQUIRE_GPU": "1"}, timeout=remaining)
    except subprocess.TimeoutExpired:
        return {"status": "fail", "message": f"timed out after {remaining:.0f} s"}
    except OSError as e:
        return {"status": "skipped", "message": f"cannot run {binary}: {e}"}
    tail = proc.stdout.strip().splitlines()[-3:]
    return {"status": "pass" if proc.returncode == 0 else "fail", "message": " / ".join(tail),
            "seconds": time.time() - t0}


# -------------------------------------------------------------------------------------- the worker

def worker_main(args: argparse.Namespace) -> int:
    """Run tasks from ``args.start`` on, appending ``start``/``done`` events; exit 3 if CUDA is lost."""
    import measure  # noqa: PLC0415 - torch, only in the worker
    import merge_measure  # noqa: PLC0415
    import torch  # noqa: PLC0415

    tasks = json.loads(Path(args.tasks_file).read_text())
    manifest = load_manifest(Path(args.manifest))
    missing = {k: v.get("error", "") for k, v in manifest.get("kernels", {}).items() if v.get("status") != "ok"}
    events = open(args.events, "a", buffering=1)

    def emit(**event: Any) -> None:
        events.write(json.dumps(harness.json_safe(event), allow_nan=False) + "\n")
        events.flush()

    torch.cuda.init()
    timer = measure.Timer()
    timer.calibrate()
    flex = measure.Flex(budget_s=args.flex_budget, deadline=args.deadline)
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", None)
    for task in tasks[args.start:]:
        if time.time() > args.deadline:
            return 0
        emit(event="start", task=task)
        kind, subject = task_kind(task), task_subject(task)
        try:
            if kind == "env":
                result = measure.environment()
            elif kind == "ceilings":
                result = measure.measure_ceilings(timer)
            elif kind == "refcheck":
                case = CASES[subject]
                checks = merge_measure.reference_checks if is_merge(case) else measure.reference_checks
                result = checks(case, args.seed)
            elif kind == "correctness":
                case = CASES[subject]
                check = merge_measure.check_merge_case if is_merge(case) else measure.check_case
                result = check(case, args.cache_dir, args.seed, missing=missing.get(case.attrs.key(), ""))
            else:
                row = BENCH[subject]
                impls = harness.row_impls(row.phase, args.impls.split(",") if kind == "bench" else ["flex"])
                if is_merge(row):
                    result = merge_measure.bench_merge(row, args.cache_dir, timer, args.seed, impls, l2)
                else:
                    result = measure.bench_case(row, args.cache_dir, timer, flex, args.seed, impls, l2)
        except Exception as e:  # noqa: BLE001 - the task functions record their own failures; this is a bug
            message = measure.describe_exception(e)
            print(f"worker: {task}: {message}", file=sys.stderr, flush=True)
            emit(event="failed", task=task, message=message)
            if not measure.cuda_healthy():
                return 3
            continue
        emit(event="done", task=task, result=result)
        if not measure.cuda_healthy():
            print(f"worker: the CUDA context is gone after {task}; restarting", file=sys.stderr, flush=True)
            return 3
    return 0


# ------------------------------------------------------------------------------------------ main

def is_merge(item: Any) -> bool:
    """Whether a case or row is the merge kernel's (bench/merges.py), not an attention kernel's."""
    return isinstance(item, (merges.MergeCase, merges.MergeBench))


def describe(task: str, result: Any) -> str:
    """One progress line for a finished task."""
    if result is None:
        return "FAILED (see errors)"
    kind = task_kind(task)
    if kind in ("refcheck", "correctness"):
        counts = {s: sum(1 for r in result if r["status"] == s) for s in harness.STATUSES}
        worst = max((r["rel_l2"] or 0.0 for r in result if r.get("rel_l2") is not None), default=None)
        worst_lse = max((r["lse_max_abs"] for r in result if r.get("lse_max_abs") is not None), default=None)
        text = " ".join(f"{k}={v}" for k, v in counts.items() if v)
        if kind == "correctness":
            text += f" worst rel_l2={worst:.2e}" if worst is not None else ""
            text += f" worst lse_max_abs={worst_lse:.2e}" if worst_lse is not None else ""
        return text
    if kind in ("bench", "flex"):
        return " ".join(f"{i}={harness.impl_cell(result, i)}" for i in harness.IMPLS if i in result["impls"])
    if kind == "ceilings":
        return f"copy {result.get('copy_gbps', 0):.0f} GB/s, matmul {result.get('matmul_tflops', 0):.0f} TFLOP/s"
    return json.dumps(result)[:200]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT", "bench-out"), help="results folder (default $OUT)")
    p.add_argument("--max-minutes", type=float, default=6.0, help="no new task starts after this")
    p.add_argument("--hard-minutes", type=float, default=9.0, help="the worker is killed after this")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    p.add_argument("--manifest", default=str(DEFAULT_MANIFEST))
    p.add_argument("--commit", default=None, help="commit measured (default: the manifest's)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma list of {PHASES}")
    p.add_argument("--only", default=None, help="regex on case/row names")
    p.add_argument("--impls", default=",".join(harness.BENCH_IMPLS),
                   help="comma list timed in the bench phase (FlexAttention has its own phase)")
    p.add_argument("--flex-budget", type=float, default=90.0, help="seconds of FlexAttention compiles in all")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runtime-lib", default=None, help="use this libgqa_runtime.so instead of building one")
    p.add_argument("--build-dir", default="/tmp/gqa-rt")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 4)
    p.add_argument("--plan", action="store_true", help="print the tasks and a time estimate; no GPU")
    # worker
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tasks-file", help=argparse.SUPPRESS)
    p.add_argument("--events", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, default=float("inf"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def worker_command(args: argparse.Namespace, tasks_file: Path, events: Path, start: int, deadline: float,
                   flex_left: float) -> list[str]:
    """The command line of a worker that runs ``tasks_file`` from task ``start``."""
    return [sys.executable, str(Path(__file__).resolve()), "--worker", "--tasks-file", str(tasks_file),
            "--events", str(events), "--start", str(start), "--deadline", repr(deadline),
            "--flex-budget", repr(flex_left), "--cache-dir", str(Path(args.cache_dir).resolve()),
            "--manifest", str(args.manifest), "--seed", str(args.seed), "--impls", args.impls]


def print_plan(args: argparse.Namespace, tasks: Sequence[str]) -> None:
    """The task counts and the modelled device time."""
    kinds = {k: sum(1 for t in tasks if task_kind(t) == k) for k in ("refcheck", "correctness", "bench", "flex")}
    kernels = merges.all_kernels()
    merge_kernels = sum(isinstance(u.attrs, merges.MergeAttrs) for u in kernels.values())
    cases = correctness_cases()
    print(f"tasks: {len(tasks)} {kinds}; distinct kernels {len(kernels)} ({merge_kernels} merge); correctness runs "
          f"{sum(len(c.shapes) for c in cases)}; reference checks "
          f"{sum(len(harness.refcheck_shapes(c)) for c in cases)}")
    def chosen(kind: str, table: dict) -> list:
        return [table[task_subject(t)] for t in tasks if task_kind(t) == kind]

    estimate = harness.estimate_seconds(chosen("correctness", CASES), chosen("bench", BENCH), chosen("flex", BENCH),
                                        args.flex_budget, refcheck=chosen("refcheck", CASES))
    for name, seconds in estimate.items():
        print(f"  {name:45s} {seconds:7.0f} s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    phases = [p for p in args.phases.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phases {sorted(unknown)}; choose from {PHASES}")
    tasks = task_list(phases, args.only)
    if args.plan:
        print_plan(args, tasks)
        return 0
    budget = harness.Budget(args.max_minutes * 60)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(Path(args.manifest))
    report = Report(max_minutes=args.max_minutes, environment=base_environment(args, manifest))
    report.notes += [
        "timing: CUDA events around groups of back-to-back calls queued behind a GPU sleep (host overhead "
        "excluded), median over groups; input sets rotated so that they cover 4x the L2 when smaller",
        "ours: gqa.attention with the kernel loaded and out preallocated; peers: torch SDPA with "
        "enable_gqa=True and one backend forced each; FlexAttention (torch.compile, dynamic=False) on the "
        f"rows {', '.join(configs.FLEX_ROWS)} only, in a last phase (compile time)",
        "decode rows are unmasked for every implementation (Sq = 1; PyTorch's is_causal is top-left aligned)",
        "peers read the same memory as ours: bshd rows give them transpose(1, 2) views, bhsd rows contiguous tensors",
        "merge rows: ours = gqa.merge_attention_states with the merge kernel loaded and out/out_lse preallocated; "
        "peer torch = vLLM's merge_attn_states_torch ops (float32) on the same tensors, copied into out/out_lse; "
        "GB/s of the bytes read and written (o1, o2, lse1, lse2 in; out, out_lse out)",
    ]
    if not manifest:
        report.errors.append(f"no manifest at {args.manifest}: were the kernels prepared (bench/prepare_kernels.py)?")

    def save() -> None:
        report.wall_seconds = budget.elapsed()
        harness.write_results(out, report.as_dict())

    lib = runtime_library(args, report)
    if lib is None:
        save()
        print("\n".join(report.errors), file=sys.stderr)
        return 2
    os.environ["GQA_RUNTIME_LIB"] = str(lib)
    os.environ["GQA_KERNEL_CACHE"] = str(Path(args.cache_dir).resolve())
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    tasks_file = out / "tasks.json"
    tasks_file.write_text(json.dumps(tasks))
    events = Path("/tmp") / f"gqa-bench-events-{os.getpid()}.jsonl"
    hard_deadline = budget.start + args.hard_minutes * 60

    def worker_cmd(start: int, flex_left: float) -> list[str]:
        return worker_command(args, tasks_file, events, start, budget.deadline, flex_left)

    def on_task(task: str, result: Any) -> None:
        print(f"[{budget.elapsed():6.1f} s] {task}: {describe(task, result)}", flush=True)
        save()

    sup = Supervisor(tasks, events, worker_cmd, budget, report, on_task=on_task, flex_budget_s=args.flex_budget,
                     hard_deadline=hard_deadline)
    sup.run()
    if "gtests" in phases:
        if budget.expired():
            report.skipped_for_time.append("gtests")
        else:
            report.gtests = run_gtests(Path(args.build_dir + "-tests"), args.jobs,
                                       min(180.0, max(30.0, hard_deadline - time.time() - 30)))
            print(f"[{budget.elapsed():6.1f} s] gtests: {report.gtests}", flush=True)
    save()
    print()
    print(harness.final_tables(report.as_dict()), flush=True)
    if report.skipped_for_time:
        print(f"not run (time guard, or the run stopped): {len(report.skipped_for_time)} tasks", flush=True)
    for e in report.errors:
        print(f"error: {e}", flush=True)
    print(f"results: {out / 'results.json'}, {out / 'results.md'}", flush=True)
    if sup.aborted:
        return 2
    return 1 if report.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
