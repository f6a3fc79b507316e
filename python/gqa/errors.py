"""Exception types raised by the gqa package.

Every error derives from :class:`GQAError` and from the closest built-in
exception, so callers can catch either ``gqa.GQAError`` or e.g. ``ValueError``.
"""

from __future__ import annotations


class GQAError(Exception):
    """Base class of all errors raised by gqa."""


class MetadataError(GQAError, ValueError):
    """Kernel metadata JSON does not follow docs/kernel-metadata.md."""


class ConfigMismatchError(GQAError, ValueError):
    """A kernel's metadata does not describe the configuration asked for."""


class ToolNotFoundError(GQAError, FileNotFoundError):
    """A gqa executable (gqa-compile, gqa-run) or library could not be found."""


class CompilerNotFoundError(ToolNotFoundError):
    """gqa-compile is not available and no cached kernel matches."""


class RuntimeLibraryNotFoundError(ToolNotFoundError):
    """libgqa_runtime.so could not be found."""


class CompileError(GQAError, RuntimeError):
    """gqa-compile ran but failed (its stderr is part of the message)."""


class ToolError(GQAError, RuntimeError):
    """A gqa tool other than the compiler (e.g. gqa-run) failed."""


class LaunchError(GQAError, RuntimeError):
    """The runtime library reported an error (its last-error string is the message)."""
