"""bench/sanitize.py without a GPU: the targets, the checked process on the CPU, and the verdict of
each tool from a fake compute-sanitizer's log and results."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

import configs
import merges
import sanitize

FAKE_SANITIZER = '''#!{python}
"""A compute-sanitizer that writes the log and the results a real run would ($FAKE_* say what)."""
import json, os, sys
args = sys.argv[1:]
log, results = args[args.index("--log-file") + 1], args[args.index("--results") + 1]
assert args[args.index("--kernel-name") + 1] == "kns=gqa_" and "--target-run" in args
assert os.environ.get("PYTORCH_NO_CUDA_MEMORY_CACHING") == ("1" if args[args.index("--tool") + 1] == "memcheck" else None)
checks = int(os.environ.get("FAKE_CHECKS", "8"))
status = os.environ.get("FAKE_STATUS", "pass")
json.dump([{{"kind": "k", "case": "c", "shape": "s", "status": status, "message": "", "rel_l2": 1e-3}}] * checks,
          open(results, "w"))
errors = os.environ.get("FAKE_ERRORS", "0")
assert "--report-api-errors" in args
with open(log, "w") as f:
    f.write("========= COMPUTE-SANITIZER\\n")
    if errors != "none" and args[args.index("--tool") + 1] == "racecheck":
        f.write(f"========= RACECHECK SUMMARY: {{errors}} hazards displayed ({{errors}} errors, 0 warnings)\\n")
    elif errors != "none":
        f.write(f"========= ERROR SUMMARY: {{errors}} error{{'' if errors == '1' else 's'}}\\n")
'''


def test_targets_cover_each_kind_of_kernel():
    assert sanitize.validate() == []
    cases = {t.kind: sanitize.target_case(t) for t in sanitize.TARGETS}
    attrs = {kind: getattr(c, "attrs", None) for kind, c in cases.items()}
    assert all(len(c.shapes) == 1 for c in cases.values())
    # issue 13's four kinds: prefill, split + combine, paged, f32; and D 256, varlen, the merge
    assert any(a.is_causal and c.shapes[0].seq_q > 64 for a, c in zip(attrs.values(), cases.values())
               if isinstance(a, configs.Attrs))
    assert any(c.shapes[0].seq_q == 1 and c.shapes[0].seq_kv > 4096 for c in cases.values())
    assert any(isinstance(a, configs.Attrs) and a.page_size for a in attrs.values())
    assert any(isinstance(a, configs.Attrs) and a.dtype == "f32" for a in attrs.values())
    assert any(isinstance(a, configs.Attrs) and a.head_dim == 256 and 0 in c.shapes[0].kv_lens
               for a, c in zip(attrs.values(), cases.values()))
    assert any(isinstance(c, merges.MergeCase) for c in cases.values())
    with pytest.raises(KeyError, match="has no size"):
        sanitize.target_case(sanitize.Target("x", "g8-causal", "B9 Sq9 Skv9"))
    assert sanitize.validate([sanitize.Target("x", "no-such-case", "B1")]) != []


def test_target_run_checks_every_target(cpu_merge, tmp_path):
    results = tmp_path / "r.json"
    args = sanitize.parse_args(["--target-run", "--results", str(results), "--cache-dir", str(tmp_path)])
    assert sanitize.target_run(args) == 0
    records = json.loads(results.read_text())
    assert [r["case"] for r in records] == [t.case for t in sanitize.TARGETS]
    assert all(r["status"] == "pass" for r in records), records


def test_sanitizer_error_summary():
    assert sanitize.sanitizer_errors("========= ERROR SUMMARY: 0 errors\n") == (0, 0)
    assert sanitize.sanitizer_errors("x\n========= ERROR SUMMARY: 1 error\n") == (1, 0)
    assert sanitize.sanitizer_errors("========= ERROR SUMMARY: 12 errors\n", "synccheck") == (12, 0)
    assert sanitize.sanitizer_errors("========= COMPUTE-SANITIZER\n") is None
    # racecheck counts hazards on a line of its own
    race = "========= RACECHECK SUMMARY: 3 hazards displayed (2 errors, 1 warnings)\n"
    assert sanitize.sanitizer_errors(race, "racecheck") == (2, 1)
    assert sanitize.sanitizer_errors("========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)\n",
                                     "racecheck") == (0, 0)
    assert sanitize.sanitizer_errors("========= ERROR SUMMARY: 0 errors\n", "racecheck") is None
    assert sanitize.sanitizer_errors(race) is None


@pytest.fixture
def fake_sanitizer(tmp_path):
    path = tmp_path / "bin" / "compute-sanitizer"
    path.parent.mkdir()
    path.write_text(FAKE_SANITIZER.format(python=sys.executable))
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("env, status, message", [
    ({}, "pass", "0 sanitizer errors, 0 warnings, 0 checks failed, 0 skipped"),
    ({"FAKE_ERRORS": "3"}, "fail", "3 sanitizer errors"),
    ({"FAKE_STATUS": "fail"}, "fail", "8 checks failed"),
    ({"FAKE_STATUS": "skipped"}, "incomplete", "0 checks failed, 8 skipped"),
    ({"FAKE_ERRORS": "none"}, "error", "no summary line"),
    ({"FAKE_CHECKS": "5"}, "error", "5 of 8 targets ran"),
])
def test_run_tool_verdicts(fake_sanitizer, tmp_path, monkeypatch, env, status, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    records = [sanitize.run_tool(fake_sanitizer, tool, tmp_path, "cache", 0, 60) for tool in sanitize.TOOLS]
    for record in records:
        assert record["status"] == status and message in record["message"], record
    table = sanitize.markdown(records, {"sanitizer": "fake"})
    assert all(f"| {tool} | {status} |" in table for tool in sanitize.TOOLS)


def test_main_without_a_sanitizer_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sanitize, "find_sanitizer", lambda explicit=None: None)
    assert sanitize.main(["--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert "not found" in (tmp_path / "sanitize.md").read_text()
    assert sanitize.main(["--plan"]) == 0
    assert sanitize.main(["--tools", "leakcheck", "--plan"]) == 2
    assert sanitize.main(["--tools", "", "--plan"]) == 2


def test_a_timeout_kills_the_checked_process_too(tmp_path):
    """The tool's whole process group goes (the checked python must not keep the GPU for the next tool)."""
    hang = tmp_path / "compute-sanitizer"
    pid_file = tmp_path / "child.pid"
    hang.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pid_file}\nwait\n")
    hang.chmod(0o755)
    record = sanitize.run_tool(hang, "memcheck", tmp_path, "cache", 0, 1)
    assert record["status"] == "error" and "timed out after 1 s" in record["message"]
    child = int(pid_file.read_text())
    import os
    import time
    for _ in range(50):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the child {child} outlived the timeout")


def test_stale_results_are_not_read(tmp_path):
    """A tool that dies before writing anything is an error, whatever an earlier run left in the folder."""
    dead = tmp_path / "compute-sanitizer"
    dead.write_text("#!/bin/sh\nexit 1\n")
    dead.chmod(0o755)
    (tmp_path / "sanitize-memcheck.log").write_text("========= ERROR SUMMARY: 0 errors\n")
    (tmp_path / "sanitize-memcheck.json").write_text('[{"status": "pass"}]')
    record = sanitize.run_tool(dead, "memcheck", tmp_path, "cache", 0, 60)
    assert record["status"] == "error" and "no summary line" in record["message"] and record["checks"] == []


def test_main_runs_each_tool(fake_sanitizer, tmp_path, capsys):
    out = tmp_path / "out"
    assert sanitize.main(["--out", str(out), "--sanitizer", str(fake_sanitizer), "--runtime-lib", "/nonexistent.so",
                          "--tools", "memcheck,synccheck"]) == 0
    report = json.loads((out / "sanitize.json").read_text())
    assert [r["tool"] for r in report["tools"]] == ["memcheck", "synccheck"]
    assert all(r["status"] == "pass" for r in report["tools"])


def test_extract_wheel(tmp_path):
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("nvidia/cuda_sanitizer_api/bin/compute-sanitizer", "#!/bin/sh\n")
        archive.writestr("nvidia/cuda_sanitizer_api/lib/libsanitizer-public.so", "x" * 10)
        archive.writestr("nvidia/cuda_sanitizer_api/include/sanitizer.h", "// left out")
    dest = tmp_path / "carry"
    assert sanitize.extract_wheel(wheel, dest) == len("#!/bin/sh\n") + 10
    assert (dest / "compute-sanitizer").stat().st_mode & 0o111 and (dest / "libsanitizer-public.so").is_file()
    assert sorted(p.name for p in dest.iterdir()) == ["compute-sanitizer", "libsanitizer-public.so"]
    assert sanitize.find_sanitizer(str(dest / "compute-sanitizer")) == dest / "compute-sanitizer"
    empty = tmp_path / "e.whl"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("nvidia/cuda_sanitizer_api/lib/x.so", "x")
    with pytest.raises(ValueError, match="holds no"):
        sanitize.extract_wheel(empty, tmp_path / "e")
