"""A parser for the generic form of MLIR (``--mlir-print-op-generic``).

The simulator only reads what ``gqa-opt --mlir-print-op-generic`` prints: one
op per line, regions opened by ``({`` at the end of the op's line, separated by
``}, {`` and closed by ``})`` followed by the op's attributes and signature.
Ops are kept close to the text: attributes stay raw strings until a handler
asks for one (:meth:`Op.attr`), and types are parsed into the few shapes the
kernels use (:func:`parse_type`).  Anything else is a :class:`ParseError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional, Union

_OPENERS = {"(": ")", "[": "]", "{": "}", "<": ">"}
_CLOSERS = set(_OPENERS.values())

_OP_LINE = re.compile(r'^(?:(?P<results>%[^=]*?)\s*=\s*)?"(?P<name>[\w.$-]+)"\((?P<operands>[^)]*)\)(?P<rest>.*)$')
_BLOCK_LINE = re.compile(r"^\^bb(?P<index>\d+)(?:\((?P<args>.*)\))?:$")


class ParseError(ValueError):
    """The text is not generic-form MLIR of the shape this parser reads."""


# ----------------------------------------------------------------------------- bracket-aware scanning
def _closing_index(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``text[start]``."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = text.index('"', i + 1)
        elif ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS and not (ch == ">" and text[i - 1] == "-"):
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ParseError(f"unbalanced brackets in {text!r}")


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` at ``sep`` outside brackets and strings (``->`` is not a bracket)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = text.index('"', i + 1)
        elif ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS and not (ch == ">" and i > 0 and text[i - 1] == "-"):
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i].strip())
            start = i + len(sep)
            i = start
            continue
        i += 1
    tail = text[start:].strip()
    if tail or parts:
        parts.append(tail)
    return parts


def parse_dict(text: str) -> dict[str, str]:
    """``key = value, flag, ...`` (no braces) to ``{key: raw value}``; a bare flag maps to ``"unit"``."""
    out = {}
    for entry in split_top_level(text):
        key, eq, value = entry.partition(" = ")
        out[key.strip().strip('"')] = value.strip() if eq else "unit"
    return out


# ----------------------------------------------------------------------------- types
@dataclass(frozen=True)
class ScalarType:
    """``i1``/``i32``/``i64``/``index`` (``width`` 64) or ``f16``/``bf16``/``f32``/``f64``."""

    name: str

    @property
    def is_float(self) -> bool:
        return self.name in ("f16", "bf16", "f32", "f64")

    @property
    def width(self) -> int:
        """Bits of the type (``index`` is 64 bits, as in the GPU pipeline)."""
        if self.name == "index":
            return 64
        return int(self.name.lstrip("bfi"))


@dataclass(frozen=True)
class VectorType:
    """``vector<4x2xbf16>``: ``shape`` (4, 2) of ``elem``."""

    shape: tuple[int, ...]
    elem: ScalarType


@dataclass(frozen=True)
class MemRefType:
    """``memref<?xbf16>`` / ``memref<4096xbf16, 3>``: ``shape`` (None = dynamic) and memory space."""

    shape: tuple[Optional[int], ...]
    elem: ScalarType
    space: int


@dataclass(frozen=True)
class StructType:
    """``!llvm.struct<(f32, f32, f32, f32)>``."""

    fields: tuple["Type", ...]


@dataclass(frozen=True)
class OpaqueType:
    """Any other type (tokens, functions): kept as text."""

    text: str


Type = Union[ScalarType, VectorType, MemRefType, StructType, OpaqueType]

_IDENTITY_1D_LAYOUTS = ("strided<[1]>", "strided<[1],offset:0>")
_SCALAR = re.compile(r"^(i\d+|index|f16|bf16|f32|f64)$")


def parse_type(text: str) -> Type:
    """Parse one type of the few kinds the GPU kernels use; others become :class:`OpaqueType`."""
    text = text.strip()
    if _SCALAR.match(text):
        return ScalarType(text)
    if text.startswith("vector<") and text.endswith(">"):
        *dims, elem = text[len("vector<"):-1].split("x")
        return VectorType(tuple(int(d) for d in dims), ScalarType(elem))
    if text.startswith("memref<") and text.endswith(">"):
        body = split_top_level(text[len("memref<"):-1])
        *dims, elem = body[0].split("x")
        # A contiguous 1-D layout is the identity (the canonicalizer writes it for a static size).
        if len(dims) == 1 and len(body) > 1 and body[1].replace(" ", "") in _IDENTITY_1D_LAYOUTS:
            body = [body[0], *body[2:]]
        space = int(body[1]) if len(body) > 1 and body[1].isdigit() else 0
        if len(body) > 2 or (len(body) == 2 and not body[1].isdigit()):
            raise ParseError(f"memref with a layout is not supported: {text}")
        return MemRefType(tuple(None if d == "?" else int(d) for d in dims), ScalarType(elem), space)
    if text.startswith("!llvm.struct<(") and text.endswith(")>"):
        return StructType(tuple(parse_type(t) for t in split_top_level(text[len("!llvm.struct<("):-2])))
    return OpaqueType(text)


def _parse_signature(text: str) -> tuple[list[str], list[str]]:
    """``(T1, T2) -> R`` or ``(T1) -> (R1, R2)`` to (operand types, result types), as text."""
    arrow = split_top_level(text, "->")
    if len(arrow) != 2 or not arrow[0].startswith("("):
        raise ParseError(f"not a function type: {text!r}")
    inputs = split_top_level(arrow[0][1:-1])
    result = arrow[1].strip()
    outputs = split_top_level(result[1:-1]) if result.startswith("(") else [result]
    return inputs, outputs


# ----------------------------------------------------------------------------- ops
@dataclass
class Block:
    """A block: argument names and types, and its ops."""

    arg_names: list[str] = field(default_factory=list)
    arg_types: list[str] = field(default_factory=list)
    ops: list["Op"] = field(default_factory=list)


@dataclass
class Op:
    """One operation, as printed in generic form.

    ``results`` are SSA names as operands spell them (``%7``, or ``%7#0``,
    ``%7#1`` for an op with several results); ``regions`` hold at most one
    block each (``None`` for an empty region).
    """

    name: str
    results: list[str]
    operands: list[str]
    operand_types: list[str]
    result_types: list[str]
    props: str
    attrs: str
    regions: list[Optional[Block]]
    line: int
    #: What an interpreter decoded from the attributes once, for the next executions.
    decoded: dict = field(default_factory=dict, repr=False)

    @cached_property
    def _attributes(self) -> dict[str, str]:
        return {**parse_dict(self.props), **parse_dict(self.attrs)}

    def attr(self, key: str) -> Optional[str]:
        """The raw text of attribute or property ``key`` (``"unit"`` for a unit attribute), or None."""
        return self._attributes.get(key)

    def int_attr(self, key: str) -> int:
        """An integer attribute (``4 : i32`` -> 4); a missing one is a :class:`ParseError`."""
        raw = self.attr(key)
        if raw is None:
            raise ParseError(f"line {self.line}: {self.name} has no attribute {key!r}")
        return int(raw.split(":")[0])

    def array_attr(self, key: str) -> list[int]:
        """A dense integer array attribute (``array<i64: 0, 1>`` -> [0, 1])."""
        raw = self.attr(key)
        match = re.fullmatch(r"array<i\d+(?::\s*([-\d,\s]*))?>", raw or "")
        if not match:
            raise ParseError(f"line {self.line}: {self.name} attribute {key!r} is not an integer array: {raw!r}")
        return [int(x) for x in (match.group(1) or "").split(",") if x.strip()]

    @cached_property
    def result_type(self) -> Type:
        """The type of the single result."""
        if len(self.result_types) != 1:
            raise ParseError(f"line {self.line}: {self.name} has {len(self.result_types)} results, not 1")
        return parse_type(self.result_types[0])

    @cached_property
    def operand_type_list(self) -> list[Type]:
        """The operand types, parsed."""
        return [parse_type(t) for t in self.operand_types]

    def walk(self):
        """This op and every op nested in its regions, in order."""
        yield self
        for block in self.regions:
            for op in block.ops if block else ():
                yield from op.walk()


def _result_names(text: Optional[str]) -> list[str]:
    if not text:
        return []
    names = []
    for part in text.split(","):
        name, _, count = part.strip().partition(":")
        names += [f"{name}#{k}" for k in range(int(count))] if count else [name]
    return names


class _Reader:
    """Reads ops from the lines of a generic-form module."""

    def __init__(self, text: str) -> None:
        self.lines = [(n + 1, line.strip()) for n, line in enumerate(text.splitlines()) if line.strip()]
        self.pos = 0

    def error(self, message: str) -> ParseError:
        line_no, line = self.lines[min(self.pos, len(self.lines) - 1)]
        return ParseError(f"line {line_no}: {message}: {line[:200]}")

    def block(self) -> Optional[Block]:
        """Ops up to the line that closes the region (``}...``); None for an empty region."""
        block: Optional[Block] = None
        while self.pos < len(self.lines):
            line_no, line = self.lines[self.pos]
            if line.startswith("}"):
                return block
            header = _BLOCK_LINE.match(line)
            if header:
                if block is not None and (block.ops or header.group("index") != "0"):
                    raise self.error("regions with several blocks are not supported")
                block = Block()
                for arg in split_top_level(header.group("args") or ""):
                    name, _, ty = arg.partition(":")
                    block.arg_names.append(name.strip())
                    block.arg_types.append(ty.strip())
                self.pos += 1
                continue
            block = block or Block()
            block.ops.append(self.op())
        raise self.error("unterminated region")

    def op(self) -> Op:
        line_no, line = self.lines[self.pos]
        match = _OP_LINE.match(line)
        if not match:
            raise self.error("not a generic-form op")
        self.pos += 1
        rest = match.group("rest").strip()
        props, rest = self._take_group(rest, "<{", "}>")
        regions: list[Optional[Block]] = []
        attrs = ""
        if rest == "({":
            rest = self._regions(regions)
        attr_text, rest = self._take_group(rest, "{", "}")
        attrs = attr_text
        if not rest.startswith(":"):
            raise ParseError(f"line {line_no}: expected ': signature' after {match.group('name')}, got {rest[:80]!r}")
        operand_types, result_types = _parse_signature(rest[1:].strip())
        operands = [o.strip() for o in match.group("operands").split(",") if o.strip()]
        results = _result_names(match.group("results"))
        if result_types == ["()"] or (len(result_types) == 1 and result_types[0] == ""):
            result_types = []
        return Op(match.group("name"), results, operands, operand_types, result_types, props, attrs,
                  regions, line_no)

    def _regions(self, regions: list[Optional[Block]]) -> str:
        """Reads regions up to the closing ``})``; returns the rest of that line."""
        while True:
            regions.append(self.block())
            if self.pos >= len(self.lines):
                raise self.error("unterminated region list")
            _, line = self.lines[self.pos]
            self.pos += 1
            if line == "}, {":
                continue
            if line.startswith("})"):
                return line[2:].strip()
            raise self.error("expected '}, {' or '})'")

    @staticmethod
    def _take_group(text: str, opener: str, closer: str) -> tuple[str, str]:
        """Strip a leading ``opener ... closer`` group: (its inside, the rest)."""
        if not text.startswith(opener):
            return "", text
        end = _closing_index(text, 0)
        inside = text[len(opener):end + 1 - len(closer)]
        return inside, text[end + 1:].strip()


def parse_module(text: str) -> Op:
    """Parse the output of ``--mlir-print-op-generic`` into its top-level op."""
    reader = _Reader(text)
    top = reader.op()
    if reader.pos != len(reader.lines):
        raise reader.error("text after the top-level op")
    return top
