"""Kernel metadata JSON (docs/kernel-metadata.md): reading it, and checking it with the runtime's reader.

The contract has one validator, the runtime's own (``gqa_metadata_parse`` in
lib/Runtime, nlohmann-json underneath): :func:`validate_metadata` hands the
document to it through the runtime library this package already binds
(``gqa._runtime``), so a kernel Python accepts is exactly one the runtime
loads, and the messages are the runtime's, naming the key.  Both kinds of
kernel set are read: attention (``"format": "gqa.kernel"``) and the merge of
two partial attention results (``"format": "gqa.merge_states"``).  Errors are
:class:`~gqa.errors.MetadataError`; without a runtime library,
:class:`~gqa.errors.RuntimeLibraryNotFoundError` says where it was looked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

from .errors import MetadataError

FORMAT = "gqa.kernel"
#: The format of a merge_states kernel set.
MERGE_FORMAT = "gqa.merge_states"


def runtime_problem(text: bytes) -> Optional[str]:
    """What the runtime's reader finds wrong with metadata ``text`` (None when it accepts it)."""
    from ._runtime import get_library  # noqa: PLC0415 - the binding loads the library on first use

    return get_library().metadata_problem(text)


def validate_metadata(meta: Any, source: str = "") -> dict:
    """Check ``meta`` (parsed JSON) with the runtime's reader; return it unchanged.

    ``source`` (e.g. the file name) prefixes error messages.
    """
    prefix = f"{source}: " if source else ""
    if not isinstance(meta, dict):
        raise MetadataError(f"{prefix}metadata must be a JSON object, got {type(meta).__name__}")
    try:
        text = json.dumps(meta, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        raise MetadataError(f"{prefix}metadata is not JSON: {e}") from e
    problem = runtime_problem(text)
    if problem is not None:
        raise MetadataError(prefix + problem.removeprefix("metadata: "))
    return meta


def is_merge_states(meta: dict) -> bool:
    """Whether a validated metadata dict describes a merge_states kernel set (else attention)."""
    return meta.get("format") == MERGE_FORMAT


def effective_window(config: dict) -> tuple[int, int]:
    """The ``(left, right)`` window a validated ``config`` section describes (see gqa.options)."""
    mask = config["mask"]
    if mask == "none":
        return (-1, -1)
    if mask == "causal":
        return (config["window_left"], 0)
    return (config["window_left"], config["window_right"])


def load_metadata(path: Union[str, Path]) -> dict:
    """Read and validate a metadata JSON file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise MetadataError(f"cannot read kernel metadata {path}: {e.strerror or e}") from e
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise MetadataError(f"{path}: not valid JSON: {e}") from e
    return validate_metadata(meta, str(path))
