# The simulator catches the bugs a kernel builder typically makes: each
# mutation below plants one in the GPU-stage IR text that gqa-opt printed, and
# the simulation of the mutant must fail (a violation, a bank conflict, or an
# error over the tolerance) while the unmutated kernels pass. A mutation that
# no longer finds its target fails too, so the list cannot rot silently.
#
# RUN: %python %s %gqa_src_root gqa-opt

import re
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(sys.argv[1]) / "utils"))

from gpusim.ir import parse_module  # noqa: E402
from gpusim.merge import check_merge, merge_module, merge_problem  # noqa: E402
from gpusim.runner import CompileOptions, Sizes, check, lower_module, lower_to_gpu  # noqa: E402
from gqa.config import KernelConfig  # noqa: E402

Mutation = Callable[[str], str]


def _first_kernel_line(lines: list[str]) -> int:
    """Mutations edit the kernels, never the host function printed before them."""
    return next(i for i, line in enumerate(lines) if '"gpu.func"' in line)


def _edit_line(pattern: str, edit: Callable[[str], str], nth: int = 0) -> Mutation:
    """Apply ``edit`` to the ``nth`` kernel line matching ``pattern``."""
    def mutate(text: str) -> str:
        lines = text.splitlines()
        first = _first_kernel_line(lines)
        hits = [i for i, line in enumerate(lines) if i >= first and re.search(pattern, line)]
        if len(hits) <= nth:
            raise LookupError(f"no line #{nth} matches {pattern!r}")
        lines[hits[nth]] = edit(lines[hits[nth]])
        return "\n".join(lines) + "\n"
    return mutate


def substitute(pattern: str, old: str, new: str, nth: int = 0) -> Mutation:
    """In the ``nth`` line matching ``pattern``, replace the regex ``old`` by ``new`` once."""
    return _edit_line(pattern, lambda line: re.sub(old, new, line, count=1), nth)


def drop(pattern: str, nth: int = 0) -> Mutation:
    """Delete the ``nth`` line matching ``pattern`` (an op without results)."""
    return _edit_line(pattern, lambda line: "", nth)


def _search(pattern: str, text: str) -> re.Match:
    match = re.search(pattern, text)
    if not match:
        raise LookupError(f"nothing matches {pattern!r}")
    return match


def shuffle_offset(nth: int, offset_of: Callable[[str], str]) -> Mutation:
    """The ``nth`` shuffle of the kernels takes the offset ``offset_of(text)`` names."""
    def mutate(text: str) -> str:
        offset = offset_of(text)
        return substitute(r'"gpu.shuffle"', r'("gpu.shuffle"\(%[\w#]+, )%\w+', rf"\g<1>{offset}", nth)(text)
    return mutate


def first_shuffle_offset(text: str) -> str:
    return _search(r'"gpu.shuffle"\(%[\w#]+, (%\w+)', text).group(1)


def constant(value: str, type_name: str) -> Callable[[str], str]:
    """The SSA name of the kernels' ``arith.constant value : type_name`` (``value`` as printed)."""
    def find(text: str) -> str:
        kernels = text[text.index('"gpu.func"'):]
        pattern = rf'(%\w+) = "arith.constant"\(\) <{{value = {re.escape(value)} : {type_name}}}>'
        return _search(pattern, kernels).group(1)
    return find


def i32_constant(value: int) -> Callable[[str], str]:
    """The SSA name of the kernels' ``arith.constant value : i32``."""
    return constant(str(value), "i32")


def query_row_unclamped(text: str) -> str:
    """The clamp of the Q tile's packed row, min(r, Sq * g - 1), becomes r: the
    last CTA's rows past the end address memory past the query."""
    lines = text.splitlines()
    first_copy = next(i for i, line in enumerate(lines) if '"nvgpu.device_async_copy"' in line)
    clamp = max(i for i in range(first_copy) if '"arith.minsi"' in lines[i])
    lines[clamp] = re.sub(r"\((%\w+), %\w+\)", r"(\1, \1)", lines[clamp], count=1)
    return "\n".join(lines) + "\n"


def query_row_instead_of_position(group: int) -> Mutation:
    """PackGQA's trap: the mask uses packed row r where the query position r / g belongs.

    Every ``divui r, g`` whose quotient reaches an i32 mask bound (through
    adds and mins) becomes ``minsi r, r``.
    """
    def mutate(text: str) -> str:
        ops = list(parse_module(text).walk())
        consts = {op.results[0] for op in ops
                  if op.name == "arith.constant" and op.attr("value") == f"{group} : index"}
        users: dict[str, list] = {}
        for op in ops:
            for operand in op.operands:
                users.setdefault(operand, []).append(op)

        def reaches_i32_bound(name: str, depth: int = 0) -> bool:
            for user in users.get(name, []):
                if user.name == "arith.index_cast" and user.result_types == ["i32"]:
                    return True
                if (depth < 4 and user.name in ("arith.addi", "arith.minsi")
                        and reaches_i32_bound(user.results[0], depth + 1)):
                    return True
            return False

        lines = text.splitlines()
        targets = [op for op in ops if op.name == "arith.divui" and op.operands[1] in consts
                   and reaches_i32_bound(op.results[0])]
        if not targets:
            raise LookupError("no divui by g feeds a mask bound")
        for op in targets:
            row = op.operands[0]
            lines[op.line - 1] = re.sub(r'"arith.divui"\(%\w+, %\w+\)', f'"arith.minsi"({row}, {row})',
                                        lines[op.line - 1])
        return "\n".join(lines) + "\n"
    return mutate


def combine_without_empty_guard(text: str) -> str:
    """The combine kernel forgets that max lse = -inf (no split saw a key): exp2(-inf - -inf) = NaN."""
    combine = text.index('"gpu.func"', text.index('gqa.role = "split"'))
    head, tail = text[:combine], text[combine:]
    select = _search(r'"arith.select"\((%\w+), (%\w+), (%\w+)\) : \(i1, f32, f32\)', tail)
    cond, _, other = select.groups()
    return head + tail.replace(select.group(0), f'"arith.select"({cond}, {other}, {other}) : (i1, f32, f32)', 1)


def shared_stride_without_padding(text: str) -> str:
    """The f32 kernel's K tile without its padding column: 32 lanes read one bank."""
    return substitute(r'value = 65 : index', r"65 : index", "64 : index")(text)


def page_lookup_ignored(text: str) -> str:
    """Paged K/V read through the table index itself, not the page it holds (identity paging).

    Needs a subject without kv_lens: then the i32 loads of the kernels are the
    block table's.
    """
    lines = text.splitlines()
    first = _first_kernel_line(lines)
    hits = 0
    for i in range(first, len(lines)):
        load = re.search(r'(%\w+) = "memref.load"\(%\w+, (%\w+)\) .*-> i32', lines[i])
        if not load:
            continue
        cast = re.search(rf'(%\w+) = "arith.index_cast"\({re.escape(load.group(1))}\) .*\(i32\) -> index',
                         lines[i + 1])
        if cast:
            entry = load.group(2)
            lines[i + 1] = f'{cast.group(1)} = "arith.minsi"({entry}, {entry}) : (index, index) -> index'
            hits += 1
    if not hits:
        raise LookupError("no block table load")
    return "\n".join(lines) + "\n"


TENSOR_CORE = [
    ("V read by ldmatrix without .trans",
     substitute(r'"nvgpu.ldmatrix".*transpose = true', "transpose = true", "transpose = false")),
    ("wrong fragment index (A register 1 read from matrix 2)",
     substitute(r'"vector.extract".*static_position = array<i64: 1>.*vector<4x2xbf16>', r"i64: 1>", "i64: 2>")),
    ("no barrier once K landed (RAW on K, WAR on V)", drop(r'"gpu.barrier"', nth=1)),
    ("no barrier once V landed (RAW on V, WAR on K)", drop(r'"gpu.barrier"', nth=2)),
    ("no cp.async.wait before reading K", drop(r'"nvvm.cp.async.wait.group"', nth=1)),
    ("mask off by one (the diagonal key dropped)",
     substitute(r'"arith.cmpi".*predicate = 5 : i64.*\(i32, i32\)', "predicate = 5", "predicate = 4")),
    ("causal mask on packed row r instead of r / g", query_row_instead_of_position(group=4)),
    ("quad row max: xor 1 twice", shuffle_offset(1, first_shuffle_offset)),
    ("Q row not clamped before its cp.async", query_row_unclamped),
]

SPLIT_KV = [
    ("combine without the empty-row guard", combine_without_empty_guard),
]

F32 = [
    ("f32: K tile without padding (bank conflicts)", shared_stride_without_padding),
    ("f32: warp max skips lanes 16 apart (xor 8 for xor 16)", shuffle_offset(0, i32_constant(8))),
    ("f32: no barrier after the tile copy", drop(r'"gpu.barrier"', nth=1)),
]

PAGED = [
    ("paged: the table index used as the page", page_lookup_ignored),
]

# Q kept in shared memory (D = 256) and a sequence without keys: its CTAs run
# no KV tile, so only the prologue's wait drains Q's cp.async group.
Q_IN_SHARED = [
    ("no drain of Q's cp.async in a CTA without KV tiles", drop(r'"nvvm.cp.async.wait.group"', nth=0)),
]

SUBJECTS = [
    (KernelConfig.create(8, 2, 64, dtype="bf16", layout="bshd", causal=True), CompileOptions(),
     Sizes(batch=2, seq_q=17, seq_kv=129), TENSOR_CORE),
    (KernelConfig.create(8, 2, 64, dtype="bf16", layout="bshd", causal=True, kv_lens=True),
     CompileOptions(max_splits=4), Sizes(batch=2, seq_q=1, seq_kv=300, kv_lens=(0, 170), num_splits=3),
     SPLIT_KV),
    (KernelConfig.create(8, 2, 64, head_dim_v=32, dtype="f32", layout="bshd", window=(20, 3)), CompileOptions(),
     Sizes(batch=1, seq_q=5, seq_kv=70), F32),
    (KernelConfig.create(8, 2, 64, dtype="bf16", layout="bshd", causal=True, page_size=8), CompileOptions(),
     Sizes(batch=2, seq_q=9, seq_kv=136, page_size=8), PAGED),
    (KernelConfig.create(8, 2, 64, dtype="f32", layout="bhsd", page_size=8), CompileOptions(max_splits=4),
     Sizes(batch=2, seq_q=1, seq_kv=96, num_splits=2, page_size=8), PAGED),
    (KernelConfig.create(4, 2, 256, dtype="bf16", layout="bshd", causal=True, kv_lens=True), CompileOptions(),
     Sizes(batch=2, seq_q=3, seq_kv=40, kv_lens=(40, 0)), Q_IN_SHARED),
]


def operands(pattern: str, rewrite: Callable[[list[str]], list[str]], nth: int = 0) -> Mutation:
    """In the ``nth`` line matching ``pattern``, the op's operand list ``(%a, %b, ...)`` rewritten."""
    def edit(line: str) -> str:
        return re.sub(r"\(((?:%[\w#]+(?:, )?)+)\)",
                      lambda m: "(" + ", ".join(rewrite(m.group(1).split(", "))) + ")", line, count=1)
    return _edit_line(pattern, edit, nth)


def merge_lse_unshifted(text: str) -> str:
    """The merged LSE is log(e_a + e_b) without the shift m added back (m + log(...) -> 0 + log(...))."""
    zero = constant("0.000000e+00", "f32")(text)
    return operands(r'"arith.addf"', lambda ops: [zero, ops[1]], nth=1)(text)


def merge_output_into_out_b(text: str) -> str:
    """The merged output stored through out_b's view (parameter 2) instead of out's."""
    out_b = _search(r'(%\w+) = "memref.reinterpret_cast"\(%arg2\b', text).group(1)
    return operands(r'"vector.store"', lambda ops: [ops[0], out_b, ops[2]])(text)


#: The merge kernel: LSE_a, LSE_b -> m = max (0 when both are -inf), e_x = 2^((LSE_x - m) log2 e), o = (e_a o_a +
#: e_b o_b) / (e_a + e_b) (0 when the sum is), LSE = m + ln(e_a + e_b) (-inf when the sum is 0), one store per row.
MERGE = [
    ("merge: the second part weighed by m - LSE_b", operands(r'"arith.subf"', lambda ops: ops[::-1], nth=1)),
    ("merge: no guard on m when both LSEs are -inf", operands(r'"arith.select".*\(i1, f32, f32\)',
                                                              lambda ops: [ops[0], ops[2], ops[2]])),
    ("merge: the last CTA's spare rows not clamped", operands(r'"arith.select".*\(i1, index, index\)',
                                                             lambda ops: [ops[0], ops[1], ops[1]])),
    ("merge: every thread of a row stores its LSE", operands(r'"arith.andi"', lambda ops: [ops[0], ops[0]])),
    ("merge: the LSE without the shift added back", merge_lse_unshifted),
    ("merge: the output stored into out_b", merge_output_into_out_b),
]

#: The merge subjects: the source attention and sizes of gpusim --merge-states (a partial last CTA: 6 heads x 5
#: queries = 30 rows of 12 per CTA; KV lengths of 0: rows neither part saw), apart and in place.
MERGE_SUBJECTS = [
    (KernelConfig.create(6, 2, 40, dtype="bf16", layout="bshd", causal=True, kv_lens=True),
     Sizes(batch=5, seq_q=5, seq_kv=70, kv_lens=(70, 33, 0, 70, 9)), False, MERGE),
    (KernelConfig.create(6, 2, 40, dtype="f16", layout="bshd", causal=True, kv_lens=True, varlen=True),
     Sizes(batch=4, seq_q=5, seq_kv=40, kv_lens=(10, 40, 0, 30), q_lens=(5, 1, 3, 4)), True, MERGE),
]


def caught(name: str, mutate: Mutation, text: str, judge: Callable[[str], dict]) -> bool:
    """Plant the bug; True when the simulation of the mutant (``judge``: its report) fails."""
    try:
        mutant = mutate(text)
    except LookupError as error:
        print(f"FAIL: {name}: the mutation found no target ({error})")
        return False
    if mutant == text:
        print(f"FAIL: {name}: the mutation changed nothing")
        return False
    report = judge(mutant)
    violation = report["violation"]
    how = (f"{violation['kind']}: {violation['message']}" if violation
           else f"bank_conflicts={report['bank_conflicts']}" if report.get("bank_conflicts")
           else f"rel_l2_err={report['rel_l2_err']:.2e}, non_finite={report['non_finite']}"
           + "".join(f", {key}={report[key]}" for key in ("lse_max_abs_err", "lse_mismatched", "unseen_nonzero",
                                                           "inputs_written") if report.get(key)))
    print(f"{'MISSED' if report['ok'] else 'caught'}: {name}: {how}")
    return not report["ok"]


def main() -> int:
    gqa_opt = Path(sys.argv[2])
    failures = 0
    for config, options, sizes, mutations in SUBJECTS:
        text = lower_to_gpu(config, options, gqa_opt)
        baseline = check(text, config, sizes, precision="exact")
        if not baseline["ok"]:
            print(f"FAIL: the unmutated {config.dtype} kernels fail: {baseline}")
            failures += 1
        judge = lambda ir, config=config, sizes=sizes: check(ir, config, sizes, precision="exact")  # noqa: E731
        failures += sum(not caught(name, mutate, text, judge) for name, mutate in mutations)
    for config, sizes, in_place, mutations in MERGE_SUBJECTS:
        text = lower_module(merge_module(config, in_place), gqa_opt)
        problem = merge_problem(config, sizes, None, in_place)
        baseline = check_merge(text, problem, precision="exact")
        if not baseline["ok"] or not baseline["rows_neither"]:
            print(f"FAIL: the unmutated merge kernel fails, or no row is empty in both parts: {baseline}")
            failures += 1
        judge = lambda ir, problem=problem: check_merge(ir, problem, precision="exact")  # noqa: E731
        failures += sum(not caught(name, mutate, text, judge) for name, mutate in mutations)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
