"""One CTA in numpy: its threads in lockstep, its memories and the warp-level primitives.

Per-thread values are arrays of shape ``(threads,)`` (or ``(threads, ...)`` for
vectors); a value every thread shares may stay a Python scalar.  The
primitives follow the PTX ISA, written from its definitions and not from the
kernel builder:

* ``ldmatrix.sync.aligned.m8n8.x4.b16`` (``.trans``): lanes 8q..8q+7 give the
  8 row addresses (16 bytes each) of matrix q; lane l receives in register q
  row l/4, columns 2(l%4) and 2(l%4)+1 of matrix q (with ``.trans``: column
  l/4, rows 2(l%4) and 2(l%4)+1).
* ``mma.sync.aligned.m16n8k16.row.col.f32`` with groupID g = l/4 and
  t = l%4: A a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..);
  B b0 (k = 2t..2t+1, n = g), b1 (k = 2t+8.., n = g); C/D c0,c1 (g, 2t..),
  c2,c3 (g+8, 2t..).
* ``cp.async``: the copy lands at ``cp.async.wait_group``; a source size below
  the copy size zero-fills the rest.  Stricter than the ISA, the whole source
  range must be in bounds even for a source size of 0 (the kernels clamp
  out-of-range rows before zero-filling them).
* ``shfl.sync`` (``bfly``, ``idx``) over a full warp.

The checks, each a :class:`Violation` naming what went wrong:

* shared memory, per byte: a read of data another thread wrote since the last
  barrier (RAW), a write over data another thread read or wrote since then
  (WAR/WAW), any access to bytes a ``cp.async`` is still filling (a missing
  wait), a read of bytes never written; two threads writing one location in
  one instruction;
* bounds of every view and buffer, alignment (16 bytes for ``cp.async``
  and ``ldmatrix`` rows, the ``alignment`` of vector accesses, the element
  size otherwise);
* a barrier reached by part of the CTA, a warp-collective op (``ldmatrix``,
  ``mma.sync``, shuffles) reached by part of a warp;
* a global element written twice in one launch (the kernels write each
  output element once);
* i32 overflow and unsigned operations on negative values (in the interpreter).

Bank conflicts are counted, not raised (the runner fails a run that has
any): every shared-memory access is split
into the phases the hardware serves together (32 lanes for accesses up to 4
bytes, 16 for 8 bytes, 8 for 16 bytes and for each ``ldmatrix`` matrix) and
each phase costs as many wavefronts as the most distinct 4-byte words one of
the 32 banks holds.  ``bank_conflicts`` sums the wavefronts beyond one per
phase.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from gqa import dtypes

WARP = 32
BANKS = 32
#: A reader or writer that stands for several threads (ldmatrix rows feed the whole warp).
MANY_THREADS = -2
NO_THREAD = -1

ELEM_BYTES = {"i8": 1, "bf16": 2, "f16": 2, "f32": 4, "i32": 4, "i64": 8, "index": 8}


class SimError(Exception):
    """Base of the errors the simulator raises."""


class Violation(SimError):
    """The kernel broke a rule the hardware or the launch contract imposes.

    ``kind`` is one of ``hazard``, ``out_of_bounds``, ``misaligned``,
    ``divergence``, ``overflow``, ``uninitialized``, ``race``, ``invalid``,
    ``outstanding_async`` (cp.async copies in flight when the kernel exits).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


class UnsupportedIR(SimError):
    """The IR uses an op or a form of an op the simulator does not model."""


# ----------------------------------------------------------------------------- numerics
@dataclass(frozen=True)
class Numerics:
    """How floating-point values are computed.

    ``exact=False`` (device): f32 arithmetic, and ``arith.truncf`` rounds to
    bf16/f16 as the GPU does.  ``exact=True``: every value is float64 and
    nothing is rounded, so the kernel's algorithm alone is compared with the
    reference, with a tight tolerance.
    """

    exact: bool

    @property
    def float_type(self) -> type:
        return np.float64 if self.exact else np.float32

    def floats(self, x: Any) -> np.ndarray:
        """``x`` as the simulator's float type."""
        return np.asarray(x, dtype=self.float_type)

    def round_to(self, x: Any, elem: str) -> np.ndarray:
        """``x`` rounded to element type ``elem`` (identity in exact mode)."""
        if self.exact:
            return np.asarray(x, dtype=np.float64)
        if elem == "bf16":
            return dtypes.bf16_to_f32(dtypes.f32_to_bf16(np.asarray(x, dtype=np.float32)))
        if elem == "f16":
            return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)
        if elem == "f32":
            return np.asarray(x, dtype=np.float32)
        raise UnsupportedIR(f"rounding to {elem} is not modelled")


# ----------------------------------------------------------------------------- memories
class GlobalBuffer:
    """A kernel argument in global memory: flat values (float64, or int64 for integers)."""

    def __init__(self, name: str, elem: str, data: np.ndarray, absent: bool = False) -> None:
        self.name = name
        self.elem = elem
        self.data = data
        #: A null pointer (no allocation): views of any size may be made, every access is out of bounds.
        self.absent = absent
        self.writes = np.zeros(data.size, dtype=np.int32)

    def start_launch(self) -> None:
        """Forget which elements were written (the write-once check is per launch)."""
        self.writes[:] = 0


@dataclass(frozen=True)
class GlobalView:
    """``memref<?xT>`` over a :class:`GlobalBuffer` (``memref.reinterpret_cast`` of a kernel argument)."""

    buffer: GlobalBuffer
    size: int

    @property
    def elem(self) -> str:
        return self.buffer.elem

    @property
    def esize(self) -> int:
        return ELEM_BYTES[self.buffer.elem]


class SharedMemory:
    """The CTA's dynamic shared memory, byte-addressed, with what the hazard checks need per byte.

    Per byte: its state (never written, written, or pending: a cp.async is
    filling it) and who last wrote and read it, as a stamp
    ``epoch * STAMP + thread + 2`` where the epoch counts the barriers so far
    and the thread is MANY_THREADS when several threads touched it.  Epochs
    only grow, so a stamp at or above ``epoch * STAMP`` is from this epoch.
    """

    STAMP = 1 << 20
    EMPTY, WRITTEN, PENDING = 0, 1, 2

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.value = np.zeros(nbytes)  # the value of the element that starts at this byte
        self.elem_size = np.zeros(nbytes, dtype=np.int8)  # size of that element, 0 inside one
        self.state = np.full(nbytes, self.EMPTY, dtype=np.int8)
        self.w_stamp = np.full(nbytes, self.stamp(-1, NO_THREAD))
        self.r_stamp = np.full(nbytes, self.stamp(-1, NO_THREAD))

    @classmethod
    def stamp(cls, epoch: int, thread: Any) -> Any:
        return epoch * cls.STAMP + np.asarray(thread) + 2

    def read(self, starts: np.ndarray, esize: int, readers: np.ndarray, epoch: int) -> np.ndarray:
        """Values of the elements starting at byte ``starts`` (lanes x elements), after the checks."""
        nbytes = (starts[..., None] + np.arange(esize)).reshape(len(starts), -1)
        state = self.state[nbytes]
        if (state == self.PENDING).any():
            raise Violation("hazard", "reads shared memory that a cp.async is still filling "
                                      "(no cp.async.wait_group before the read)")
        if (state != self.WRITTEN).any():
            raise Violation("uninitialized", "reads shared memory that was never written")
        if (self.elem_size[starts] != esize).any():
            raise UnsupportedIR(f"shared memory read as {esize}-byte elements but written otherwise")
        now, mine = self.stamp(epoch, MANY_THREADS), self.stamp(epoch, readers)[:, None]
        written = self.w_stamp[nbytes]
        if ((written >= now) & (written != mine)).any():
            raise Violation("hazard", "reads shared memory another thread wrote since the last barrier "
                                      "(RAW: missing gpu.barrier)")
        self._note_readers(nbytes.ravel(), np.broadcast_to(mine, nbytes.shape).ravel(), now)
        return self.value[starts]

    def check_write(self, nbytes: np.ndarray, writers: np.ndarray, epoch: int) -> None:
        """Raise if writing ``nbytes`` (lanes x bytes) now would race with other threads."""
        if (self.state[nbytes] == self.PENDING).any():
            raise Violation("hazard", "writes shared memory that a cp.async is still filling")
        now, mine = self.stamp(epoch, MANY_THREADS), self.stamp(epoch, writers)[:, None]
        read, written = self.r_stamp[nbytes], self.w_stamp[nbytes]
        if ((read >= now) & (read != mine)).any():
            raise Violation("hazard", "overwrites shared memory another thread read since the last barrier "
                                      "(WAR: missing gpu.barrier)")
        if ((written >= now) & (written != mine)).any():
            raise Violation("hazard", "overwrites shared memory another thread wrote since the last barrier "
                                      "(WAW: missing gpu.barrier)")
        flat = np.sort(nbytes.ravel())
        if (flat[1:] == flat[:-1]).any():
            raise Violation("race", "two threads write the same shared memory in one instruction")

    def mark_pending(self, nbytes: np.ndarray) -> None:
        """A cp.async will fill ``nbytes``: nobody may touch them until it lands."""
        self.state[nbytes] = self.PENDING

    def land(self, starts: np.ndarray, esize: int, values: np.ndarray, writers: np.ndarray, epoch: int) -> None:
        """Store ``values`` at the elements starting at ``starts`` (lanes x elements)."""
        nbytes = (starts[..., None] + np.arange(esize)).reshape(len(starts), -1)
        self.value[starts] = values
        self.elem_size[nbytes] = 0
        self.elem_size[starts] = esize
        self.state[nbytes] = self.WRITTEN
        self.w_stamp[nbytes] = self.stamp(epoch, writers)[:, None]

    def _note_readers(self, flat: np.ndarray, mine: np.ndarray, now: int) -> None:
        """Stamp the bytes ``flat`` as read by ``mine``; bytes read by two threads this epoch get MANY."""
        before = self.r_stamp[flat]
        stamped = np.where((before < now) | (before == mine), mine, now)
        self.r_stamp[flat] = stamped
        self.r_stamp[flat[self.r_stamp[flat] != stamped]] = now  # two lanes of this access


@dataclass(frozen=True)
class SharedRoot:
    """``memref.get_global @gqa_smem``: the dynamic shared memory the launch gives the CTA."""

    memory: SharedMemory


@dataclass(frozen=True)
class SharedView:
    """A typed view of shared memory: ``count`` elements of ``elem`` from byte ``offset``."""

    memory: SharedMemory
    offset: int
    elem: str
    count: int

    @property
    def esize(self) -> int:
        return ELEM_BYTES[self.elem]


@dataclass
class _AsyncCopy:
    memory: SharedMemory
    starts: np.ndarray
    esize: int
    values: np.ndarray
    writers: np.ndarray


_BANK_CONFLICTS: dict[tuple[int, bytes], int] = {}


def _extra_wavefronts(addr: np.ndarray, width: int) -> int:
    """Wavefronts beyond one per phase when each lane accesses ``width`` bytes at ``addr`` (-1: inactive)."""
    per_phase = WARP if width <= 4 else 16 if width <= 8 else 8
    words = addr[:, None] // 4 + np.arange(max(1, width // 4))
    words[addr < 0] = -1
    words = np.sort(words.reshape(addr.size // per_phase, -1), axis=1)
    first = words >= 0
    first[:, 1:] &= words[:, 1:] != words[:, :-1]
    phases = np.broadcast_to(np.arange(words.shape[0])[:, None], words.shape)
    per_bank = np.bincount((phases * BANKS + words % BANKS)[first], minlength=words.shape[0] * BANKS)
    return int(np.maximum(per_bank.reshape(-1, BANKS).max(axis=1) - 1, 0).sum())


def _fragment_maps() -> tuple[dict[bool, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Where each (register, lane, half) of the PTX fragment layouts lives, as flat matrix indices.

    ldmatrix: lane l, register q, half e reads matrix q at (row l/4, column
    2(l%4)+e), or (row 2(l%4)+e, column l/4) with ``.trans``; the source index
    is into the warp's 4 x 8 x 8 rows.  mma.m16n8k16 with g = l/4, t = 2(l%4):
    A register q holds (g + 8(q%2), t + e + 8(q/2)) of the 16 x 16 A; B register
    q holds (k = t + e + 8q, n = g) of the 16 x 8 B; C/D register q holds
    (g + 8(q/2), t + q%2) of the 16 x 8 C.
    """
    lane = np.arange(WARP)[None, :, None]
    q = np.arange(4)[:, None, None]
    e = np.arange(2)[None, None, :]
    g, t = lane // 4, 2 * (lane % 4)
    ldmatrix = {
        False: (q * 64 + g * 8 + t + e).transpose(1, 0, 2).ravel(),
        True: (q * 64 + (t + e) * 8 + g).transpose(1, 0, 2).ravel(),
    }
    a = ((g + 8 * (q % 2)) * 16 + t + e + 8 * (q // 2)).ravel()
    b = ((t + e + 8 * q[:2]) * 8 + g).ravel()
    c = ((g + 8 * (q // 2)) * 8 + t + q % 2)[..., 0].ravel()
    return ldmatrix, a, b, c


_LDMATRIX_SOURCE, _MMA_A, _MMA_B, _MMA_C = _fragment_maps()


# ----------------------------------------------------------------------------- the CTA
class CTA:
    """One thread block: its threads in lockstep under a stack of active-lane masks.

    A block that is not a whole number of warps gets lanes up to the next warp
    that never run (they are not ``live``); warp-collective ops need whole warps.
    """

    def __init__(self, threads: int, block_id: tuple[int, int, int], numerics: Numerics,
                 shared_bytes: int) -> None:
        self.threads = -(-threads // WARP) * WARP  # lanes, whole warps; those past the block never run
        self.block_id = block_id
        self.numerics = numerics
        self.shared = SharedMemory(shared_bytes)
        self.tid = np.arange(self.threads, dtype=np.int64)
        self.live = self.tid < threads
        self.masks = [self.live]
        self.active_lanes = [np.nonzero(self.live)[0]]  # the indices of each mask's active lanes
        self.epoch = 0
        self.committed: list[list[_AsyncCopy]] = []
        self.uncommitted: list[_AsyncCopy] = []
        self.stats: Counter = Counter()

    # -- lanes and masks
    @property
    def mask(self) -> np.ndarray:
        """The lanes executing now."""
        return self.masks[-1]

    def push_mask(self, lanes: np.ndarray) -> None:
        self.masks.append(self.mask & lanes)
        self.active_lanes.append(np.nonzero(self.masks[-1])[0])

    def pop_mask(self) -> None:
        self.masks.pop()
        self.active_lanes.pop()

    def lanes(self, x: Any) -> np.ndarray:
        """``x`` broadcast to one value per thread (shape ``(threads, ...)``)."""
        a = np.asarray(x)
        if a.ndim and a.shape[0] == self.threads:
            return a
        return np.broadcast_to(a, (self.threads,) + a.shape)

    def active(self, x: Any) -> np.ndarray:
        """The values of the active lanes of ``x`` (a uniform ``x`` gives one value)."""
        a = np.asarray(x)
        return a[self.mask] if a.ndim and a.shape[0] == self.threads else a.reshape(1)

    def require_warps_converged(self, what: str) -> None:
        """A warp-collective op: each warp must run it with all 32 lanes or none."""
        warps = self.mask.reshape(-1, WARP)
        partial = np.nonzero(warps.any(axis=1) & ~warps.all(axis=1))[0]
        if partial.size:
            raise Violation("divergence", f"{what} reached by part of warp {int(partial[0])} "
                                          "(it needs all 32 lanes)")

    def require_cta_converged(self, what: str) -> None:
        if (self.mask != self.live).any():
            raise Violation("divergence", f"{what} reached by part of the CTA "
                                          f"({int(self.mask.sum())} of {int(self.live.sum())} threads)")

    # -- synchronisation
    def barrier(self) -> None:
        self.require_cta_converged("gpu.barrier")
        self.stats["barriers"] += 1
        self.epoch += 1

    # -- global memory
    def _global_elements(self, view: GlobalView, idx: Any, count: int, align: int, what: str) -> tuple:
        lanes = self.active_lanes[-1]
        first = self.lanes(np.asarray(idx, dtype=np.int64))[lanes]
        size = 0 if view.buffer.absent else view.size
        if ((first < 0) | (first + count > size)).any():
            bad = int(first[(first < 0) | (first + count > size)][0])
            raise Violation("out_of_bounds", f"{what} of {view.buffer.name}[{bad}..+{count}] "
                                             f"outside its {size} elements")
        if ((first * ELEM_BYTES[view.elem]) % align).any():
            raise Violation("misaligned", f"{what} of {view.buffer.name} not {align}-byte aligned")
        return lanes, first[:, None] + np.arange(count)

    def global_read(self, view: GlobalView, idx: Any, count: int, align: int) -> np.ndarray:
        """``count`` consecutive elements per active lane (inactive lanes read 0)."""
        lanes, elems = self._global_elements(view, idx, count, align, "load")
        out = np.zeros((self.threads, count), dtype=view.buffer.data.dtype)
        out[lanes] = view.buffer.data[elems]
        return out

    def global_write(self, view: GlobalView, idx: Any, values: Any, count: int, align: int) -> None:
        """Store ``count`` consecutive elements per active lane; each element once per launch."""
        lanes, elems = self._global_elements(view, idx, count, align, "store")
        flat = elems.ravel()
        np.add.at(view.buffer.writes, flat, 1)
        twice = flat[view.buffer.writes[flat] > 1]
        if twice.size:
            raise Violation("race", f"{view.buffer.name}[{int(twice[0])}] written twice in one launch")
        view.buffer.data[flat] = np.asarray(self.lanes(values)).reshape(self.threads, count)[lanes].ravel()

    # -- shared memory
    def _shared_starts(self, view: SharedView, idx: Any, count: int, align: int, what: str) -> tuple:
        lanes = self.active_lanes[-1]
        first = self.lanes(np.asarray(idx, dtype=np.int64))[lanes]
        if ((first < 0) | (first + count > view.count)).any():
            raise Violation("out_of_bounds", f"{what} of shared elements [{int(first.min())}, "
                                             f"{int(first.max()) + count}) outside a view of {view.count}")
        starts = view.offset + (first[:, None] + np.arange(count)) * view.esize
        if (starts[:, 0] % align).any():
            raise Violation("misaligned", f"{what} of shared memory not {align}-byte aligned")
        self._count_bank_conflicts(lanes, starts[:, 0], count * view.esize)
        return lanes, starts

    def shared_read(self, view: SharedView, idx: Any, count: int, align: int, what: str,
                    by_warp: bool = False) -> np.ndarray:
        """``count`` consecutive elements per active lane; ``by_warp``: the data feeds other lanes."""
        lanes, starts = self._shared_starts(view, idx, count, align, what)
        readers = np.full(lanes.size, MANY_THREADS) if by_warp else lanes
        out = np.zeros((self.threads, count), dtype=self.numerics.float_type)
        out[lanes] = view.memory.read(starts, view.esize, readers, self.epoch)
        return out

    def shared_write(self, view: SharedView, idx: Any, values: Any, count: int, align: int) -> None:
        lanes, starts = self._shared_starts(view, idx, count, align, "store")
        nbytes = (starts[..., None] + np.arange(view.esize)).reshape(lanes.size, -1)
        view.memory.check_write(nbytes, lanes, self.epoch)
        data = np.asarray(self.lanes(values)).reshape(self.threads, count)[lanes]
        view.memory.land(starts, view.esize, data, lanes, self.epoch)

    def _count_bank_conflicts(self, lanes: np.ndarray, first_byte: np.ndarray, width: int) -> None:
        """Add the wavefronts beyond one per phase of this access to ``stats['bank_conflicts']``."""
        addr = np.full(self.threads, -1, dtype=np.int64)
        addr[lanes] = first_byte
        # Moving every address by the same number of words only renames the banks, so the
        # count depends on the addresses relative to the lowest word (loops repeat patterns).
        base = (int(first_byte.min()) // 4) * 4 if lanes.size else 0
        key = (width, np.where(addr >= 0, addr - base, -1).tobytes())
        extra = _BANK_CONFLICTS.get(key)
        if extra is None:
            extra = _BANK_CONFLICTS[key] = _extra_wavefronts(addr, width)
        self.stats["bank_conflicts"] += extra

    # -- cp.async
    def cp_async(self, dst: SharedView, dst_idx: Any, src: GlobalView, src_idx: Any, count: int,
                 src_count: Any) -> None:
        """``cp.async`` of ``count`` elements per active lane; elements past ``src_count`` are zero."""
        if dst.elem != src.elem:
            raise UnsupportedIR(f"cp.async from {src.elem} to {dst.elem}")
        nbytes = count * dst.esize
        if nbytes not in (4, 8, 16):
            raise Violation("invalid", f"cp.async of {nbytes} bytes (4, 8 or 16 only)")
        lanes = self.active_lanes[-1]
        n_src = self.lanes(np.asarray(src_count, dtype=np.int64))[lanes]
        if ((n_src < 0) | (n_src > count)).any():
            raise Violation("invalid", f"cp.async source size outside [0, {count}] elements")
        first = self.lanes(np.asarray(src_idx, dtype=np.int64))[lanes]
        if ((first * src.esize) % nbytes).any():
            raise Violation("misaligned", f"cp.async source in {src.buffer.name} not {nbytes}-byte aligned")
        # Stricter than the ISA, as the kernels promise: the whole source range is in bounds
        # even where the source size is 0 (out-of-range rows are clamped, then zero-filled).
        if ((first < 0) | (first + count > src.size)).any():
            raise Violation("out_of_bounds", f"cp.async source outside the {src.size} elements of {src.buffer.name}")
        cols = np.arange(count)
        take = cols[None, :] < n_src[:, None]
        values = np.where(take, src.buffer.data[np.where(take, first[:, None] + cols, 0)], 0.0)
        _, starts = self._shared_starts(dst, dst_idx, count, nbytes, "cp.async")
        byte_ix = (starts[..., None] + np.arange(dst.esize)).reshape(lanes.size, -1)
        dst.memory.check_write(byte_ix, lanes, self.epoch)
        dst.memory.mark_pending(byte_ix)
        self.uncommitted.append(_AsyncCopy(dst.memory, starts, dst.esize, values, lanes))
        self.stats["cp_async"] += 1

    def cp_async_commit(self) -> None:
        self.require_cta_converged("cp.async.commit_group")
        self.committed.append(self.uncommitted)
        self.uncommitted = []

    def cp_async_wait(self, keep: int) -> None:
        """``cp.async.wait_group keep``: all but the ``keep`` newest committed groups land now."""
        self.require_cta_converged("cp.async.wait_group")
        landing = self.committed[:len(self.committed) - keep] if keep else self.committed
        self.committed = self.committed[len(landing):]
        for group in landing:
            for copy in group:
                copy.memory.land(copy.starts, copy.esize, copy.values, copy.writers, self.epoch)

    def require_async_copies_drained(self, kernel: str) -> None:
        """At the kernel's exit every cp.async has landed: none uncommitted, no group unwaited
        (a CTA that exits with copies in flight leaves its shared memory to the next CTA)."""
        groups, loose = len(self.committed), len(self.uncommitted)
        if groups or loose:
            raise Violation("outstanding_async", f"{kernel} exits with {groups} cp.async group(s) committed "
                                                 f"and never waited on, and {loose} copies never committed")

    # -- warp-level primitives
    def ldmatrix_x4(self, view: SharedView, idx: Any, transpose: bool) -> np.ndarray:
        """``ldmatrix.x4`` (``.trans``): four 8x8 b16 matrices; returns (threads, 4 registers, 2 halves)."""
        self.require_warps_converged("ldmatrix")
        if view.esize != 2:
            raise UnsupportedIR(f"ldmatrix of {view.elem} elements (b16 only)")
        rows = self.shared_read(view, idx, 8, 16, "ldmatrix", by_warp=True)
        self.stats["ldmatrix"] += 1
        # Per warp, the rows of lanes 0..31 are matrices 0..3 (8 rows of 8 columns each).
        return rows.reshape(-1, 256)[:, _LDMATRIX_SOURCE[transpose]].reshape(self.threads, 4, 2)

    def mma_m16n8k16(self, a: Sequence[np.ndarray], b: Sequence[np.ndarray],
                     c: Sequence[Any]) -> tuple[np.ndarray, ...]:
        """``mma.sync.m16n8k16.row.col`` with f32 accumulators: a (4 x pairs), b (2 x pairs), c (4 x f32)."""
        self.require_warps_converged("mma.sync")
        warps = self.threads // WARP
        A = np.empty((warps, 16 * 16))
        B = np.empty((warps, 16 * 8))
        C = np.empty((warps, 16 * 8))
        A[:, _MMA_A] = np.stack([self.lanes(x).reshape(warps, WARP, 2) for x in a], axis=1).reshape(warps, -1)
        B[:, _MMA_B] = np.stack([self.lanes(x).reshape(warps, WARP, 2) for x in b], axis=1).reshape(warps, -1)
        C[:, _MMA_C] = np.stack([self.lanes(self.numerics.floats(x)).reshape(warps, WARP) for x in c],
                                axis=1).reshape(warps, -1)
        D = A.reshape(warps, 16, 16) @ B.reshape(warps, 16, 8) + C.reshape(warps, 16, 8)
        d = D.reshape(warps, -1)[:, _MMA_C.reshape(4, WARP)]  # (warps, register, lane)
        self.stats["mma"] += 1
        return tuple(self.numerics.floats(d[:, q].reshape(self.threads)) for q in range(4))

    def shuffle(self, value: Any, arg: Any, width: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """``gpu.shuffle`` over full warps: (value from the source lane, whether that lane is valid)."""
        self.require_warps_converged("gpu.shuffle")
        if width != WARP:
            raise UnsupportedIR(f"gpu.shuffle with width {width} (32 only)")
        lane = self.tid % WARP
        if mode == "xor":
            src = lane ^ np.asarray(arg, dtype=np.int64)
        elif mode == "idx":
            src = self.lanes(np.asarray(arg, dtype=np.int64))
        else:
            raise UnsupportedIR(f"gpu.shuffle mode {mode}")
        valid = (src >= 0) & (src < width)
        values = self.lanes(value)
        self.stats["shuffles"] += 1
        return np.where(valid, values[self.tid - lane + np.clip(src, 0, WARP - 1)], values), valid

    # -- integer checks
    def require_range(self, x: Any, low: int, high: int, what: str) -> None:
        """Every active lane's ``x`` must lie in [low, high]."""
        vals = self.active(x)
        if vals.size and (vals.min() < low or vals.max() > high):
            raise Violation("overflow", f"{what}: {int(vals.min())}..{int(vals.max())} outside [{low}, {high}]")

    def uniform(self, x: Any) -> Optional[int]:
        """The common value of ``x`` over the active lanes, or None if they differ (or none is active)."""
        vals = self.active(x)
        if vals.size == 0 or (vals != vals[0]).any():
            return None
        return int(vals[0])
