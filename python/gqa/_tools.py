"""Finding the project's executables and shared library.

The one place that knows where ``gqa-compile``, ``gqa-run`` and
``libgqa_runtime.so`` live: an environment variable first, then ``PATH``
(executables only), then the build directories of the source checkout this
package sits in (``<repo>/build*/``), then next to the package.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Optional, Type

from .errors import ToolNotFoundError

PACKAGE_DIR = Path(__file__).resolve().parent

#: Environment variables naming each tool explicitly.
ENV_COMPILE = "GQA_COMPILE"
ENV_RUN = "GQA_RUN"
ENV_RUNTIME_LIB = "GQA_RUNTIME_LIB"
ENV_COMPILER_LIB = "GQA_COMPILER_LIB"

RUNTIME_LIB_NAME = "libgqa_runtime.so"
COMPILER_LIB_NAME = "libgqa_compiler.so"


def repo_root() -> Optional[Path]:
    """The source checkout holding this package (``<repo>/python/gqa``), if it is one."""
    candidate = PACKAGE_DIR.parent.parent
    if (candidate / "python" / "gqa").is_dir() and (candidate / "docs").is_dir():
        return candidate
    return None


def _build_dirs() -> list[Path]:
    root = repo_root()
    if root is None:
        return []
    # build/ first, then other build* directories (build-release, build-debug, ...) by name.
    return sorted((p for p in root.glob("build*") if p.is_dir()), key=lambda p: (p.name != "build", p.name))


def _from_env(var: str, what: str, error: Type[ToolNotFoundError]) -> Optional[Path]:
    value = os.environ.get(var)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise error(f"{var} is set to {value!r}, but that is not a file ({what})")
    return path


def _first_existing(candidates: Iterable[Path], *, executable: bool) -> Optional[Path]:
    for path in candidates:
        if path.is_file() and (not executable or os.access(path, os.X_OK)):
            return path
    return None


def searched_locations(name: str, env_var: str) -> str:
    """A human-readable list of where :func:`find_executable` looks (for error messages)."""
    builds = ", ".join(str(d / "bin" / name) for d in _build_dirs()) or "<repo>/build/bin (not a source checkout)"
    return f"${env_var}, PATH, {builds}"


def find_executable(
    name: str, env_var: str, error: Type[ToolNotFoundError] = ToolNotFoundError
) -> Optional[Path]:
    """Locate a gqa executable: ``$env_var``, then ``PATH``, then ``<repo>/build*/bin/<name>``.

    Returns ``None`` when not found; raises ``error`` when ``$env_var`` names a missing file.
    """
    path = _from_env(env_var, f"the {name} executable", error)
    if path is not None:
        return path
    which = shutil.which(name)
    if which:
        return Path(which)
    return _first_existing((d / "bin" / name for d in _build_dirs()), executable=True)


def _find_library(name: str, env_var: str, subdir: str, error: Type[ToolNotFoundError]) -> Optional[Path]:
    """Locate a shared library: ``$env_var``, the repo's build dirs, then the package dir."""
    path = _from_env(env_var, name, error)
    if path is not None:
        return path
    candidates = []
    for d in _build_dirs():
        candidates += [d / "lib" / name, d / "lib" / subdir / name, d / name]
    candidates.append(PACKAGE_DIR / name)
    return _first_existing(candidates, executable=False)


def find_runtime_library() -> Optional[Path]:
    """Locate ``libgqa_runtime.so``: ``$GQA_RUNTIME_LIB``, the repo's build dirs, then the package dir."""
    from .errors import RuntimeLibraryNotFoundError

    return _find_library(RUNTIME_LIB_NAME, ENV_RUNTIME_LIB, "Runtime", RuntimeLibraryNotFoundError)


def find_compiler_library() -> Optional[Path]:
    """Locate ``libgqa_compiler.so``: ``$GQA_COMPILER_LIB``, the repo's build dirs, then the package dir."""
    from .errors import CompilerNotFoundError

    return _find_library(COMPILER_LIB_NAME, ENV_COMPILER_LIB, "CAPI", CompilerNotFoundError)
