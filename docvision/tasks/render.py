"""``render``: plan every page of a source at HD-N and, on request, write what the model sees.

In: an open Document (the run engine opens it), N and the tile size (or a model family). Out: a record
body with each page's plan and, with a views folder, per page the canvas, the global view, an overview
with the tile grid drawn and numbered, and the page's words in canvas pixels. The task the engine runs
is ``RenderTask``; it needs no model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import docvision.views as views
from docvision.document import Document, Page
from docvision.errors import DamagedSource, OutputError
from docvision.tiling import DEFAULT_TILE, Plan, plan

if TYPE_CHECKING:
    from docvision.models.families import Family


VIEW_SUFFIXES = (".canvas.png", ".global.png", ".overview.png", ".anchors.json")


def page_anchors(page: Page, page_plan: Plan) -> list[dict]:
    """The page's words with boxes in canvas pixels (rounded to 0.1 px); OCR words say so."""
    return [
        {"text": w.text, "box": [round(v, 1) for v in page_plan.to_canvas(w.box)],
         **({"origin": w.origin} if w.origin != "text" else {}), **({"ref": w.ref} if w.ref else {})}
        for w in page.words
    ]


def page_text(words) -> tuple[str, str | None]:
    """(text, where it came from) for a page's words, in the order the source gives them (docs/records.md):
    words on a line joined by spaces, a new line where a word leaves the previous word's line; where is
    "text" (the source's own text: PDF text layer, web page, cells), "ocr" or "text+ocr" (None: no words)."""
    lines: list[list[str]] = []
    previous = None
    for word in words:
        middle = (word.box[1] + word.box[3]) / 2
        if previous is None or not previous.box[1] <= middle <= previous.box[3]:
            lines.append([])
        lines[-1].append(word.text)
        previous = word
    origins = sorted({w.origin for w in words}, key=("text", "ocr").index)
    return "\n".join(" ".join(line) for line in lines), "+".join(origins) or None


def _slug(source: str) -> str:
    """A folder name for a source's views: its file name, letters of any script kept, never . or .."""
    name = re.sub(r"[^\w.-]+", "_", Path(source.rstrip("/")).name)[:80]
    return name if name.strip(".") else "page"


class ViewFolders:
    """The folder of each source's views under ``root``: named after the file, unique within a run.

    Two sources with the same file name (a/report.pdf, b/report.pdf) get report.pdf and report.pdf-2
    instead of overwriting each other's pages (so does a name taken by a file, as with --out .); a folder's views from an earlier run are removed when
    this run first writes there, so no stale page of a longer document stays beside the new ones.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.taken: dict[str, str] = {}

    def folder(self, source: str) -> Path:
        base = _slug(source)
        name, count = base, 1
        # Taken by another source of this run, or a file (--out . holds report.pdf itself).
        while (name in self.taken and self.taken[name] != source) or (
                (self.root / name).exists() and not (self.root / name).is_dir()):
            count += 1
            name = f"{base}-{count}"
        folder = self.root / name
        if name not in self.taken and folder.is_dir():
            for old in folder.glob("page-*"):
                if old.is_file() and old.name.endswith(VIEW_SUFFIXES):
                    old.unlink()
        self.taken[name] = source
        return folder


def write_views(page: Page, page_plan: Plan, folder: Path) -> dict:
    """Save canvas, global view, overview and anchors of one page; return the file paths.

    The canvas is what the model is shown; the overview is drawn for people (grid, tile numbers,
    padding, the anchors found by the text layer and OCR). A folder that cannot take them (a full disk,
    a read-only folder) fails the source with an OutputError, its half-written files removed."""
    try:
        return _write_views(page, page_plan, folder)
    except OSError as exc:
        for half in folder.glob(f"page-{page.number:03d}.*"):
            half.unlink(missing_ok=True)
        raise cannot_write(folder, exc) from None


def cannot_write(folder: Path, exc: OSError) -> OutputError:
    """The one line for pictures that could not be written into ``folder``."""
    import errno

    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    reason = "the disk is full" if full else exc.strerror or type(exc).__name__
    return OutputError(f"cannot write the views to {folder} ({reason}); "
                       + ("free some space" if full else "choose another --views folder"))


def _write_views(page: Page, page_plan: Plan, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"page-{page.number:03d}"
    board = views.canvas(page, page_plan)
    files = {
        "canvas": folder / f"{stem}.canvas.png",
        "global": folder / f"{stem}.global.png",
        "overview": folder / f"{stem}.overview.png",
    }
    board.save(files["canvas"], optimize=False, compress_level=1)
    views.global_view(board, page_plan).save(files["global"])
    views.overview(board, page_plan, words=page.words).save(files["overview"], compress_level=3)
    if page.words:
        files["anchors"] = folder / f"{stem}.anchors.json"
        files["anchors"].write_text(json.dumps(page_anchors(page, page_plan), ensure_ascii=False))
    return {k: str(v) for k, v in files.items()}


@dataclass
class RenderTask:
    """Plan (and draw, or write the views of) every selected page; no model involved.

    With a model ``family`` (docvision.models.families) its tile size is used and each page's
    ``visual_tokens`` is the count that model's processor produces. One ``folders`` serves the whole
    batch so that view folders never collide.
    """

    hd: int = 25
    tile: int = DEFAULT_TILE
    family: "Family | None" = None
    model_id: str | None = None
    folders: ViewFolders | None = None
    name: str = "render"
    needs_model: bool = False

    def __post_init__(self) -> None:
        if self.family is not None:
            self.tile = self.family.tile

    def prepare(self, document: Document, backend=None) -> Iterator[dict]:
        """Producer side: one entry per page, drawn (or written to the view folder) as it goes."""
        try:
            folder = self.folders.folder(document.source) if self.folders is not None else None
        except OSError as exc:  # an earlier run's views that cannot be removed
            raise cannot_write(self.folders.root, exc) from None
        for page in document.pages():
            page_plan = plan(page.size, self.hd, self.tile, page.max_scale)
            # The page's words as --ocr says (OCR reads pages without a text layer unless it is "never").
            words = list(page.words)
            text, origin = page_text(words)
            entry = {"label": page.label, "number": page.number, "scanned": page.scanned,
                     "words": len(words), "text": text, "text_from": origin, "plan": page_plan.as_dict()}
            if self.family is not None:
                entry["plan"]["visual_tokens"] = self.family.visual_tokens(page_plan)
            if folder is not None:
                entry["files"] = write_views(page, page_plan, folder)
            else:
                # Draw the canvas anyway and drop it: a page that cannot be drawn (truncated image,
                # damaged PDF page) is found here, not later in front of a model.
                views.canvas(page, page_plan)
            if page.warnings:
                entry["warnings"] = list(page.warnings)
            yield entry

    def finish(self, job, backend=None) -> dict:
        """Worker side: the pages' entries and their totals."""
        pages = list(job.items())
        if not pages:  # every selected page was skipped as unreadable: nothing to show is a failure
            raise DamagedSource("no page could be read: the file is damaged beyond repair", source=job.source)
        model = None
        if self.family is not None:
            model = {"id": self.model_id, "backend": None, "family": self.family.name, "device": None,
                     "quant": None, "dtype": None, "base_url": None}
        return {
            "pages": pages,
            "model": model,
            "resolution": {
                "hd": self.hd, "tile": self.tile, "pages": len(pages),
                "tiles": sum(p["plan"]["tiles"] for p in pages),
                "grid": [p["plan"]["grid"] for p in pages],
                "canvas": [p["plan"]["canvas_size"] for p in pages],
                "visual_tokens": sum(p["plan"]["visual_tokens"] for p in pages),
            },
        }
