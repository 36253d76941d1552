"""Sources in object stores and other filesystems named by URI (``s3://bucket/reports/``, ``gs://``,
``abfs://``, ``hdfs://``, ``file://``), read through pyarrow's filesystems -- the ones Ray Data reads with.

In: a URI. Out: ``expand`` lists the supported files under a prefix (or the one object named), in natural
order, as sources of their own; ``load`` copies one object into a temporary folder (bounded in size, each
read under the run's timeout) and opens it with the ingestor its extension names, the Document keeping
the URI as its source and removing the copy when it closes. Credentials come from the environment, as
for any pyarrow user (AWS_ACCESS_KEY_ID, GOOGLE_APPLICATION_CREDENTIALS, ...). Such sources are not kept
in the render cache (an object can change under the same name, as a URL's page can).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from docvision.errors import DocvisionError, ExternalTimeout, FetchError, ImageTooLarge, SourceNotFound, UsageError

if TYPE_CHECKING:
    from docvision.document import Document, IngestOptions

SCHEMES = ("s3://", "gs://", "gcs://", "abfs://", "abfss://", "az://", "hdfs://", "file://")
MAX_BYTES = 2 * 1024**3  # one object copied at most: a file larger than any document docvision reads whole
CHUNK = 1 << 20


def is_object(source: str) -> bool:
    """Whether ``source`` names a file through a filesystem URI (not http(s), not a local path)."""
    return source.lower().startswith(SCHEMES)


def _filesystem(uri: str) -> tuple[Any, str]:
    try:
        import pyarrow.fs as pafs
    except ImportError:
        raise UsageError(f"{uri}: object-store sources are read with pyarrow, which is not installed: "
                         "pip install 'docvision[ray]' (or pyarrow)") from None
    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors are plain ArrowInvalid/OSError: say which URI
        raise FetchError(f"cannot open the filesystem of this URI: {' '.join(str(exc).split())[:200]}",
                         source=uri) from None


def expand(uri: str, recursive: bool, supported: Callable[[str], bool], order: Callable[[str], Any]) -> list[str]:
    """The object ``uri`` names, or the supported files under it when it is a prefix (a "folder"), as URIs
    sorted by ``order``; hidden names are left out, as in a folder walk."""
    import pyarrow.fs as pafs

    fs, path = _filesystem(uri)
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.File:
            return [uri]
        if info.type == pafs.FileType.NotFound:
            raise SourceNotFound("no such object or prefix", source=uri)
        listed = fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    except DocvisionError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreachable store or refused credentials: this source's error
        raise FetchError(f"cannot list it: {' '.join(str(exc).split())[:200]}", source=uri) from None
    # The listing names paths as from_uri gave ``path`` (s3: "bucket/key", file: "/dir/file"): the URI is
    # what stood before that path in ``uri`` ("s3://", "hdfs://host:8020") followed by the listed path.
    stem = path.rstrip("/")
    head = uri[: uri.find(stem)] if stem and stem in uri else uri.split("://")[0] + "://"
    names = [entry.path for entry in listed if entry.type == pafs.FileType.File
             and supported(Path(entry.path).name)
             and not any(part.startswith(".") for part in Path(entry.path[len(path):]).parts)]
    return sorted((head + name for name in names), key=order)


def load(uri: str, options: "IngestOptions", tools, open_local: Callable[[str], "Document"]) -> "Document":
    """The object copied to a temporary folder and opened there; the Document's source stays ``uri``."""
    fs, path = _filesystem(uri)
    folder = Path(tempfile.mkdtemp(prefix="docvision-object-"))
    local = folder / ("source" + Path(path).suffix.lower())
    try:
        _copy(fs, path, local, options.timeout, uri)
        document = open_local(str(local))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    document.source = uri
    closing = document.close

    def close() -> None:
        try:
            closing()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    document.close = close
    return document


def _copy(fs, path: str, target: Path, timeout: float, uri: str) -> None:
    """Copy one object, refusing one over MAX_BYTES and a read that stalls past ``timeout``."""
    try:
        size = fs.get_file_info(path).size
        if size is not None and size > MAX_BYTES:
            raise ImageTooLarge(f"the object is {size:,} bytes, over the {MAX_BYTES:,} docvision copies", source=uri)
        copied, last = 0, time.monotonic()
        with fs.open_input_stream(path) as stream, open(target, "wb") as out:
            while block := stream.read(CHUNK):
                copied += len(block)
                if copied > MAX_BYTES:
                    raise ImageTooLarge(f"the object is over the {MAX_BYTES:,} bytes docvision copies", source=uri)
                now = time.monotonic()
                if now - last > timeout:
                    raise ExternalTimeout(f"reading the object stalled for more than {timeout:g} s", source=uri)
                last = now
                out.write(block)
    except DocvisionError:
        raise
    except FileNotFoundError:
        raise SourceNotFound("no such object", source=uri) from None
    except Exception as exc:  # noqa: BLE001 - the store refused or broke off: this source's error
        raise FetchError(f"cannot read it: {' '.join(str(exc).split())[:200]}", source=uri) from None
