"""gpusim: run the GPU kernels that ``convert-gqa-to-gpu`` emits on the CPU, lane by lane.

The simulator takes the GPU-stage IR (``gqa-opt --convert-gqa-to-gpu
--canonicalize --cse --mlir-print-op-generic``), executes every ``gpu.func`` CTA
by CTA with numpy models of the hardware primitives (``ldmatrix``,
``mma.sync.m16n8k16``, ``cp.async``, warp shuffles, barriers) and compares the
output with the float64 reference of the ``gqa`` Python package.  While it runs
it checks shared-memory hazards, bounds, alignment, warp convergence, integer
overflow and bank conflicts.  See README.md.

Modules:

* :mod:`gpusim.ir`: a parser for generic-form MLIR;
* :mod:`gpusim.backend`: one CTA: memories, hazard tracking and the lane models;
* :mod:`gpusim.interpreter`: the semantics of each op the kernels use;
* :mod:`gpusim.runner`: a configuration -> gqa-opt -> simulation -> comparison;
* :mod:`gpusim.cli`: the ``gqa-gpu-sim`` command line (``python utils/gpusim``).
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The source checkout this package lives in (``<repo>/utils/gpusim``).
REPO_ROOT = Path(__file__).resolve().parents[2]

# The float64 reference, dtype conversions and configuration checks come from
# the repository's own Python package (python/gqa), which needs only numpy.
if str(REPO_ROOT / "python") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "python"))
