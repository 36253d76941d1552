"""Errors for people: what went wrong, where, and what to do about it.

Every error a user can cause or meet is a DocvisionError with a one-line message and a short
``kind`` that lands in error records. ``docvision.run.status`` is the one place that turns them into
exit codes.
"""

from __future__ import annotations


class DocvisionError(Exception):
    """Base of every error docvision reports to a person (one line, no traceback)."""

    kind = "error"

    def __init__(self, message: str, *, source: str | None = None, body: dict | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.body = body  # what was known when it failed (extract's valid fields), for the error record

    def __str__(self) -> str:
        if self.source and self.source not in self.message:
            return f"{self.source}: {self.message}"
        return self.message


class UsageError(DocvisionError):
    """The command line itself is wrong (exit 2)."""

    kind = "usage"


class SourceNotFound(DocvisionError):
    kind = "not_found"


class UnsupportedSource(DocvisionError):
    kind = "unsupported"


class EmptySource(DocvisionError):
    kind = "empty"


class DamagedSource(DocvisionError):
    """The file is not what its name says, or is broken beyond use."""

    kind = "damaged"


class PasswordRequired(DocvisionError):
    kind = "password"


class PageRangeError(DocvisionError):
    kind = "page_range"


class ImageTooLarge(DocvisionError):
    """Over the decompression-bomb limit."""

    kind = "too_large"


class FetchError(DocvisionError):
    """A web page could not be fetched (connection, DNS, HTTP status)."""

    kind = "fetch"


class ExternalTimeout(DocvisionError):
    """An external step (browser, converter, server) did not finish in time."""

    kind = "timeout"


class ToolMissing(DocvisionError):
    """A system tool (Chromium, LibreOffice) is not installed."""

    kind = "tool_missing"


class ModelError(DocvisionError):
    """The model cannot be found, loaded or used."""

    kind = "model"


class OutOfMemory(DocvisionError):
    kind = "out_of_memory"


class BackendError(DocvisionError):
    """The model backend (local or a server) failed while answering."""

    kind = "backend"


class OutputError(DocvisionError):
    """What docvision writes could not be written: records to stdout, pictures to --views (a full disk,
    a read-only folder, an I/O error)."""

    kind = "output"


class ValidationFailed(DocvisionError):
    """The model's output did not validate against the requested fields or schema."""

    kind = "validation"
