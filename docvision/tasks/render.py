"""``docvision render``: plan every page of a source at HD-N and, on request, write what the model sees.

In: a source, ingest options, N and the tile size. Out: a record body with each page's plan and,
with an output folder, per page the canvas, the global view, an overview with the tile grid drawn and
numbered, and the page's words in canvas pixels.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from docvision import ingest, views
from docvision.errors import DamagedSource
from docvision.document import IngestOptions, Page
from docvision.tiling import DEFAULT_TILE, Plan, plan

if TYPE_CHECKING:
    from docvision.models.families import Family


VIEW_SUFFIXES = (".canvas.png", ".global.png", ".overview.png", ".anchors.json")


def page_anchors(page: Page, page_plan: Plan) -> list[dict]:
    """The page's words with boxes in canvas pixels (rounded to 0.1 px); OCR words say so."""
    return [
        {"text": w.text, "box": [round(v, 1) for v in page_plan.to_canvas(w.box)],
         **({"origin": w.origin} if w.origin != "text" else {})}
        for w in page.words
    ]


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

    ``model_input`` names the canvas again (what the model is shown) and ``annotated`` the overview
    (drawn for people: grid, tile numbers, padding, the anchors found by the text layer and OCR)."""
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
    files["model_input"], files["annotated"] = files["canvas"], files["overview"]
    return {k: str(v) for k, v in files.items()}


def render_source(
    source: str,
    options: IngestOptions,
    hd: int = 25,
    tile: int = DEFAULT_TILE,
    out_dir: Path | None = None,
    family: "Family | None" = None,
    folders: ViewFolders | None = None,
    tools=None,
) -> dict:
    """Plan (and with ``out_dir`` draw) every selected page of ``source``; return the record body.

    With a model ``family`` (docvision.models.families) its tile size is used and each page's ``tokens`` is
    the visual-token count that model's processor produces. A batch passes one ``folders`` for all
    its sources so that their view folders never collide.
    """
    if family is not None:
        tile = family.tile
    started = time.perf_counter()
    pages = []
    with ingest.load(source, options, tools) as document:
        if folders is None and out_dir is not None:
            folders = ViewFolders(out_dir)
        folder = folders.folder(source) if folders is not None else None
        for page in document.pages():
            page_plan = plan(page.size, hd, tile)
            entry = {
                "label": page.label,
                "number": page.number,
                "scanned": page.scanned,
                "words": len(page.words),
                "plan": page_plan.as_dict(),
            }
            if family is not None:
                entry["plan"]["tokens"] = family.visual_tokens(page_plan)
            if folder is not None:
                entry["files"] = write_views(page, page_plan, folder)
            else:
                # Draw the canvas anyway and drop it: a page that cannot be drawn (truncated
                # image, damaged PDF page) is found here, not later in front of a model.
                views.canvas(page, page_plan)
            if page.warnings:
                entry["warnings"] = list(page.warnings)
            pages.append(entry)
        warnings = list(document.warnings)
        kind, page_count = document.kind, document.page_count
    if not pages:  # every selected page was skipped as unreadable: nothing to show is a failure
        raise DamagedSource("no page could be read: the file is damaged beyond repair", source=source)
    return {
        "kind": kind,
        "page_count": page_count,
        "pages": pages,
        "resolution": {
            "hd": hd,
            "tile": tile,
            "pages": len(pages),
            "tiles": sum(p["plan"]["tiles"] for p in pages),
            "tokens": sum(p["plan"]["tokens"] for p in pages),
            **({"family": family.name, "model_type": family.model_type} if family is not None else {}),
        },
        "warnings": warnings,
        "timings": {"render_s": round(time.perf_counter() - started, 3)},
    }
