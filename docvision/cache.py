"""The render cache: a second question about the same 500-page PDF renders nothing again.

In: a local source and its IngestOptions. Out: a Document that behaves exactly like the ingestor's,
but whose page list, text anchors and rendered page images come from disk when this content was seen
before with the same options. Page images are stored lazily, per size the planner asked for, so only
pages that were really shown to a model are kept.

Key: sha256 of the file's bytes (streamed) + the options that change what is rendered (page range,
a hash of the password, dpi, viewport...). URLs are never cached: the page behind a URL changes.
Layout: ROOT/ab/abcdef.../manifest.json + p00003-1344x1680.png, and p00003.ocr-eng.json: the words OCR
read on that page in that language, once read (the manifest holds only the source's own text layer).
Writes are atomic (temp + rename); the cache is bounded (DOCVISION_CACHE_MAX_BYTES, default 2 GiB) by
evicting the least recently used entries (manifest mtime, touched on every hit).
DOCVISION_CACHE_DIR/renders is used instead when set (tests do).

The cache is an optimisation, never a reason to fail: a folder that cannot be written, a full disk, a
cache path that is a file, garbage or half-written manifests -- any fault gives one warning, and the
run goes on without the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import docvision.ingest as ingest
import docvision.ingest.remote as remote
from docvision.document import Document, IngestOptions, Page, Word
import docvision.ingest.ocr as ocr
from docvision.errors import DocvisionError, EmptySource

DEFAULT_MAX_BYTES = 2 * 1024**3
FORMAT = 4  # bump when the layout of an entry changes; old entries are simply never hit again
# Options that change neither the pages nor their pixels. OCR's language keys its own files in the entry
# (p00003.ocr-eng.json), and the OCR mode only decides which pages are read, so neither splits an entry.
_NEUTRAL_OPTIONS = {"timeout", "browser", "password", "ocr", "lang"}


def cache_root() -> Path:
    """Where rendered pages live: renders/ in $DOCVISION_CACHE_DIR, else in the user cache folder."""
    configured = os.environ.get("DOCVISION_CACHE_DIR")
    if configured:
        return Path(configured) / "renders"  # the folder is shared (quantized models live beside)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("docvision")) / "renders"


def max_bytes() -> int:
    """The size bound from DOCVISION_CACHE_MAX_BYTES (bytes), or 2 GiB."""
    value = os.environ.get("DOCVISION_CACHE_MAX_BYTES", "")
    return int(value) if value.strip().isdigit() else DEFAULT_MAX_BYTES


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's content, read in 1 MiB pieces so big files never sit in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def options_digest(options: IngestOptions) -> str:
    """A stable hash of the render-relevant options (the password only as its own hash)."""
    fields = {k: v for k, v in dataclasses.asdict(options).items() if k not in _NEUTRAL_OPTIONS}
    if options.password:
        fields["password_sha256"] = hashlib.sha256(options.password.encode()).hexdigest()
    fields["format"] = FORMAT
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write through a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RenderCache:
    """Opens sources through the cache; counts what it did in ``stats`` (hits, misses, renders)."""

    def __init__(self, root: Path | None = None, limit: int | None = None, pixels: bool = True,
                 say: Callable[[str], None] | None = None):
        """``pixels``: keep rendered page images too (not only page lists and anchors); ``say`` gets the
        one warning when the cache turns out to be unusable."""
        self.root = Path(root) if root is not None else cache_root()
        self.limit = limit if limit is not None else max_bytes()
        self.pixels = pixels
        self.say = say or (lambda message: None)
        self.disabled = False
        self.stats = {"hits": 0, "misses": 0, "renders": 0, "reused": 0}
        self._digests: dict[tuple, str] = {}

    def _fault(self, exc: BaseException) -> None:
        """Stop using the cache for the rest of the run, saying why once."""
        if not self.disabled:
            self.disabled = True
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            self.say(f"the render cache in {self.root} cannot be used ({reason}); going on without it")

    def entry(self, source: str, options: IngestOptions) -> Path | None:
        """The entry folder for a local file, or None when the source cannot be cached (URLs, objects)."""
        if ingest.is_url(source) or remote.is_object(source):
            return None
        path = Path(source)
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file() or stat.st_size == 0:
            return None
        memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if memo not in self._digests:
            try:
                self._digests[memo] = file_digest(path)
            except OSError:  # the source itself cannot be read: its ingestor says why
                return None
        key = hashlib.sha256((self._digests[memo] + options_digest(options)).encode()).hexdigest()
        return self.root / key[:2] / key

    def open(self, source: str, options: IngestOptions, tools=None) -> Document:
        """The source as a Document, from the cache when possible; records what it renders.

        Pages get OCR words as ``options.ocr`` and ``options.lang`` say (docvision.ingest.ocr), read when
        first looked at and kept in the entry."""
        uncached = lambda: ocr.with_ocr(ingest.load(source, options, tools), options.ocr, options.lang)  # noqa: E731
        if self.disabled:
            return uncached()
        try:
            folder = self.entry(source, options)
            manifest = _read_manifest(folder / "manifest.json") if folder is not None else None
            if manifest is not None:
                os.utime(folder / "manifest.json")  # least-recently-used order
        except OSError as exc:
            self._fault(exc)
            return uncached()
        if folder is None:
            return uncached()
        if manifest is not None:
            self.stats["hits"] += 1
            return self._from_manifest(source, options, folder, manifest, tools)
        self.stats["misses"] += 1
        return self._recording(ingest.load(source, options, tools), folder, options)

    # -- a document seen for the first time: pass pages through, remember them ---------------------
    def _recording(self, real: Document, folder: Path, options: IngestOptions) -> Document:
        document = Document(real.source, real.kind, real.page_count, lambda: iter(()), real.warnings,
                            real.metadata, None, real.damaged)

        def pages() -> Iterator[Page]:
            seen = []
            for page in real.pages():
                seen.append(_page_meta(page))
                page = ocr.attach(page, options.ocr, options.lang, _OcrFiles(self, folder))  # OCR draws unstored
                yield dataclasses.replace(page, render=self._storing(page.render, folder, page.number))
            doc = {"kind": real.kind, "page_count": real.page_count, "warnings": list(real.warnings),
                   "metadata": real.metadata, "damaged": list(real.damaged), "pages": seen}
            self._write(folder / "manifest.json",
                        lambda tmp: Path(tmp).write_text(json.dumps(doc, ensure_ascii=False, default=str)))

        def close() -> None:
            real.close()
            self.prune()

        document.iter_pages, document.closer = pages, close
        return document

    def _write(self, path: Path, write: Callable[[str], None]) -> None:
        """Write a cache file atomically; a failure disables the cache instead of failing the source."""
        if self.disabled:
            return
        try:
            _atomic_write(path, write)
        except OSError as exc:
            self._fault(exc)

    def _storing(self, render, folder: Path, number: int):
        def cached_render(width: int, height: int):
            target = folder / f"p{number:05d}-{width}x{height}.png"
            image = _load_png(target) if self.pixels and not self.disabled else None
            if image is not None:
                self.stats["reused"] += 1
                return image
            image = render(width, height)
            self.stats["renders"] += 1
            if self.pixels:
                self._write(target, lambda tmp: image.save(tmp, format="PNG", compress_level=1))
            return image

        return cached_render

    # -- a document seen before: pages from the manifest, the real file opened only if needed ---------
    def _from_manifest(self, source: str, options: IngestOptions, folder: Path, manifest: dict,
                       tools) -> Document:
        reopened = _Reopener(source, options, tools)

        def pages() -> Iterator[Page]:
            for meta in manifest["pages"]:
                number = meta["number"]
                page = Page(
                    label=meta["label"], number=number, size=tuple(meta["size"]),
                    render=lambda w, h, n=number: reopened.render(n, w, h),
                    words=[_word(w) for w in meta["words"]],
                    scanned=meta["scanned"], warnings=list(meta["warnings"]), facts=list(meta.get("facts", [])),
                    max_scale=meta.get("max_scale"),
                )
                page = ocr.attach(page, options.ocr, options.lang, _OcrFiles(self, folder))
                yield dataclasses.replace(page, render=self._storing(page.render, folder, number))

        def close() -> None:
            reopened.close()
            self.prune()

        return Document(source, manifest["kind"], manifest["page_count"], pages, list(manifest["warnings"]),
                        dict(manifest.get("metadata") or {}), close, list(manifest.get("damaged") or []))

    def prune(self) -> None:
        """Evict least recently used entries until the cache holds at most ``limit`` bytes."""
        if self.disabled or not self.root.is_dir():
            return
        try:
            self._prune()
        except OSError as exc:  # another run removing entries at the same time, a folder gone read-only
            self._fault(exc)

    def _prune(self) -> None:
        entries = []
        total = 0
        for shard in self.root.iterdir():
            if not (shard.is_dir() and len(shard.name) == 2):  # only our own ab/abcdef... entries
                continue
            for folder in shard.iterdir():
                size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
                marker = folder / "manifest.json"
                used = marker.stat().st_mtime if marker.exists() else folder.stat().st_mtime
                entries.append((used, size, folder))
                total += size
        for _used, size, folder in sorted(entries, key=lambda e: (e[0], str(e[2]))):
            if total <= self.limit:
                break
            shutil.rmtree(folder, ignore_errors=True)
            total -= size


class _Reopener:
    """Opens the real source for page images the cache lacks, at the first page needed (where the
    ingestor's page range can start there: PDFs, frames, segments), then walks forward to later ones."""

    WALK = 16  # pages worth walking forward through rather than opening the file again

    def __init__(self, source: str, options: IngestOptions, tools=None):
        self.source, self.options, self.tools = source, options, tools
        self.document: Document | None = None
        self.pages: Iterator[Page] | None = None
        self.current: Page | None = None

    def render(self, number: int, width: int, height: int):
        return self._page(number).render(width, height)

    def _page(self, number: int) -> Page:
        near = self.current is not None and 0 <= number - self.current.number <= self.WALK
        if not near:
            self._open(f"{number}-")
        while self.current is not None and self.current.number < number:
            self.current = next(self.pages, None)
        if self.current is None or self.current.number != number:
            self._open(None)  # the ingestor numbers pages differently: walk from the start
            self.current = next((p for p in self.pages if p.number == number), None)
            if self.current is None:
                raise EmptySource(f"page {number} is no longer in the file", source=self.source)
        return self.current

    def _open(self, start: str | None) -> None:
        self.close()
        options = dataclasses.replace(self.options, pages=start) if start else self.options
        try:
            self.document = ingest.load(self.source, options, self.tools)
        except DocvisionError:
            if start is None:
                raise
            self.document = ingest.load(self.source, self.options, self.tools)
        self.pages = self.document.pages()
        self.current = next(self.pages, None)

    def close(self) -> None:
        if self.document is not None:
            self.document.close()
        self.document = self.pages = self.current = None


class _OcrFiles:
    """OCR words of an entry's pages, one file per page and language (docvision.ingest.ocr's store)."""

    def __init__(self, cache: RenderCache, folder: Path):
        self.cache, self.folder = cache, folder

    def _path(self, number: int, lang: str) -> Path:
        return self.folder / f"p{number:05d}.ocr-{lang}.json"

    def load(self, number: int, lang: str) -> list[Word] | None:
        if self.cache.disabled:
            return None
        try:
            stored = json.loads(self._path(number, lang).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(stored, list) or not all(isinstance(w, list) and len(w) >= 5 for w in stored):
            return None
        return [_word(w) for w in stored]

    def save(self, number: int, lang: str, words) -> None:
        data = json.dumps([_stored_word(w) for w in words], ensure_ascii=False)
        self.cache._write(self._path(number, lang), lambda tmp: Path(tmp).write_text(data, encoding="utf-8"))


def _stored_word(w: Word) -> list:
    return [w.text, *w.box, *([w.ref, w.origin] if w.ref or w.origin != "text" else [])]


def _page_meta(page: Page) -> dict:
    return {
        "label": page.label, "number": page.number, "size": list(page.size), "scanned": page.scanned,
        "warnings": list(page.warnings), "facts": list(page.facts), "max_scale": page.max_scale,
        "words": [_stored_word(w) for w in ocr.text_layer(page)],  # OCR words have files of their own
    }


def _word(stored: list) -> Word:
    """A Word back from its manifest form: [text, x0, y0, x1, y1] or [..., ref, origin]."""
    if len(stored) > 5:
        return Word(stored[0], tuple(stored[1:5]), stored[5], stored[6])
    return Word(stored[0], tuple(stored[1:5]))


def _read_manifest(path: Path) -> dict | None:
    """The manifest if it is whole and well formed; None (a miss) for a missing, torn or foreign one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError, IsADirectoryError):
        return None
    return data if _well_formed(data) else None


def _well_formed(data) -> bool:
    try:
        return (isinstance(data, dict) and isinstance(data["kind"], str) and isinstance(data["page_count"], int)
                and isinstance(data["warnings"], list) and all(
                    isinstance(p["label"], str) and isinstance(p["number"], int) and len(p["size"]) == 2
                    and isinstance(p["words"], list) and all(isinstance(w, list) and len(w) >= 5 for w in p["words"])
                    and isinstance(p["warnings"], list) for p in data["pages"]))
    except (KeyError, TypeError):
        return False


def _load_png(path: Path):
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB") if image.mode != "RGB" else image.copy()
    except (OSError, ValueError):
        return None
