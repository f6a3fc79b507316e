# Malformed input must give diagnostics, never a crash: mutate valid gqa IR
# (truncations, byte flips, deleted and swapped tokens, wrong attributes) and
# run gqa-opt on every mutant, parsing alone and through the gqa passes.
#
# RUN: %python %s %gqa_src_root gqa-opt

import pathlib
import random
import re
import subprocess
import sys

SEED = 20261128
MUTANTS_PER_FILE = 60
PIPELINES = [
    [],
    ["--gqa-kv-cache-report=seq-len=4096"],
    ["--one-shot-bufferize=bufferize-function-boundaries"],
    # The whole CPU pipeline: whatever verifies must also lower.
    ["--gqa-lower-to-cpu"],
    # The GPU pipeline: lowers, or names what it does not support.
    ["--gqa-lower-to-ptx"],
]

# Replacements that keep the text parseable but make it semantically wrong, so
# the verifier (not only the parser) is exercised.
TOKEN_SWAPS = [
    (r"heads\((\d+), (\d+)\)", ["heads(0, 8)", "heads(64, 7)", "heads(-1, 1)",
                                "heads(9223372036854775807, 3)", "heads(3)"]),
    (r"layout<\w+>", ["layout<bhds>", "layout<>", "layout<bshd", "layout"]),
    (r"mask<[^>]*>", ["mask<causal, window = [1, 2]>", "mask<window = [-1, -1]>",
                      "mask<window = [9223372036854775807, 0]>", "mask<>",
                      "mask<causal,>", "mask<window = [1]>"]),
    (r"x(bf16|f16|f32)>", ["xi8>", "xf64>", "x!llvm.ptr>", "xcomplex<f32>>"]),
    (r"tensor<", ["memref<", "vector<", "tensor<*x"]),
    (r"\d+x", ["0x", "?x", "-3x", "99999999999999999999x", ""]),
    (r"scale\([^)]*\)", ["scale(nan)", "scale(0x7FC00000)", "scale(inf)",
                         "scale(1e400)"]),
    (r"kv_lens\(", ["kv_lens(%q : ", "kv_lens(%nothing, "]),
    # The schedule and the tile ops.
    (r"block_m = \d+", ["block_m = 0", "block_m = -5", "block_m = 9223372036854775807",
                         "block_m = 3", "block_n = 1"]),
    (r"max_splits = \d+", ["max_splits = -2", "max_splits = 65536"]),
    (r"target = \"\w+\"", ['target = "sm_70"', 'target = ""', "target = cpu"]),
    (r"group\(\d+\)", ["group(0)", "group(-1)", "group(9223372036854775807)"]),
    (r"rows\(%\w+\)", ["rows(%b)", "rows()", ""]),
    (r"tensor<\d+x\d+x", ["tensor<?x?x", "tensor<1x", "tensor<0x0x"]),
]

# The tiled form: parse and verify, and its passes; a module of tile ops on
# their own is not a whole program, so it need not lower.
TILE_PIPELINES = [
    [],
    ["--convert-gqa-tiles-to-linalg"],
    ["--gqa-distribute"],
]


def mutate(text: str, rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:  # truncation
        return text[: rng.randrange(len(text))]
    if kind == 1:  # byte flips
        chars = list(text)
        for _ in range(rng.randint(1, 8)):
            chars[rng.randrange(len(chars))] = chr(rng.randrange(32, 127))
        return "".join(chars)
    if kind == 2:  # delete a line
        lines = text.splitlines()
        del lines[rng.randrange(len(lines))]
        return "\n".join(lines)
    if kind == 3:  # garbage spliced in
        pos = rng.randrange(len(text))
        garbage = "".join(chr(rng.randrange(1, 256)) for _ in range(rng.randint(1, 40)))
        return text[:pos] + garbage + text[pos:]
    if kind == 4:  # delete a token
        tokens = re.split(r"(\s+)", text)
        del tokens[rng.randrange(len(tokens))]
        return "".join(tokens)
    pattern, replacements = TOKEN_SWAPS[rng.randrange(len(TOKEN_SWAPS))]
    matches = list(re.finditer(pattern, text))
    if not matches:
        return text
    match = rng.choice(matches)
    return text[: match.start()] + rng.choice(replacements) + text[match.end():]


def main() -> int:
    src_root = pathlib.Path(sys.argv[1])
    gqa_opt = sys.argv[2]
    seeds = sorted((src_root / "test" / "Dialect" / "GQA").glob("ops.mlir"))
    seeds += [src_root / "test" / "Dialect" / "GQA" / "bufferize.mlir",
              src_root / "examples" / "llama3-70b-layer.mlir"]
    # Scheduled ops (through select-schedule, distribute and both pipelines)
    # and the tile ops themselves.
    seeds += [src_root / "test" / "Transforms" / "distribute.mlir",
              src_root / "test" / "Dialect" / "GQA" / "tile-ops.mlir"]
    pipelines_of = {"tile-ops.mlir": TILE_PIPELINES}
    rng = random.Random(SEED)
    runs = failures = 0
    for seed_file in seeds:
        text = seed_file.read_text()
        for index in range(MUTANTS_PER_FILE):
            mutant = mutate(text, rng)
            verified = None
            for extra in pipelines_of.get(seed_file.name, PIPELINES):
                runs += 1
                proc = subprocess.run([gqa_opt, "-", *extra], input=mutant.encode("utf-8", "replace"),
                                      capture_output=True, timeout=60)
                stderr = proc.stderr.decode("utf-8", "replace")
                crashed = proc.returncode < 0 or proc.returncode > 1 or "Stack dump" in stderr \
                    or "PLEASE submit a bug report" in stderr
                silent = proc.returncode == 1 and "error:" not in stderr
                if not extra:
                    verified = proc.returncode == 0
                # Input that parses and verifies must lower to LLVM.
                unlowered = verified and extra == ["--gqa-lower-to-cpu"] and proc.returncode != 0
                if crashed or silent or unlowered:
                    failures += 1
                    what = ("crashed" if crashed else "failed without a diagnostic" if silent
                            else "verified but did not lower")
                    print(f"FAIL: {seed_file.name} mutant {index} {extra}: gqa-opt {what} "
                          f"(exit {proc.returncode})\n--- input ---\n{mutant}\n--- stderr ---\n{stderr}")
    print(f"{runs} runs over {len(seeds)} seed files, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
