"""What a Session's call decides before anything runs: settings in, the parts of a Plan out.

In: the effective Settings of a call (``docvision.config``) and its arguments. Out: IngestOptions, the
engine's Settings, the Task of each command (ask, summarize, extract, render), checked folders and
schemas; and the pieces of ``Session.chat`` and ``Session.canvases``. Every policy a call applies lives
here, once, for the library and the CLI alike; problems are UsageErrors raised before anything runs.
"""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from docvision.document import IngestOptions, check_pages
from docvision.errors import DocvisionError, UsageError
import docvision.run.engine as engine

if TYPE_CHECKING:
    from PIL import Image

    from docvision.config import Settings
    from docvision.document import Document
    from docvision.sources import Entry

log = logging.getLogger("docvision")


# -- ingest and engine -------------------------------------------------------------------------------------
def ingest_options(chosen: "Settings", pages: str | None, password: str | None) -> IngestOptions:
    """The IngestOptions every ingestor reads, from the settings and the page range.

    OCR that cannot run here (no tesseract, no language pack) is an error when it was asked for by name,
    else one warning: pages without a text layer then get no words."""
    import docvision.ingest.ocr as ocr
    from docvision.ingest.web.site import check_root

    check_pages(pages)
    check_root(chosen.local_root)
    mode = chosen.ocr
    if mode != "never":
        problem = ocr.lang_problem(chosen.lang)
        asked = chosen.origins["ocr"] != "default" or chosen.origins["lang"] != "default"
        if problem and asked:
            raise UsageError(f"--lang {chosen.lang}: {problem}")
        if problem:
            log.warning(f"{problem}; pages without a text layer get no words (--ocr never hides this)")
            mode = "never"
    return IngestOptions(pages=pages, password=password, max_image_pixels=chosen.max_image_pixels,
                         timeout=chosen.timeout, viewport_width=chosen.viewport_width,
                         device_scale_factor=chosen.scale, browser=chosen.browser, offline=chosen.offline,
                         local_pages_online=chosen.local_pages_online, local_root=chosen.local_root, ocr=mode,
                         lang=chosen.lang)


def engine_settings(chosen: "Settings", unordered: bool, allow_partial: bool,
                    debug: Callable[[BaseException], None] | None) -> engine.Settings:
    """How the engine runs; concurrency only means something for a model server."""
    concurrency = chosen.concurrency
    if concurrency > 1 and chosen.backend != "openai":
        log.warning("--concurrency is for --backend openai (a model server); a local model answers one at a time")
        concurrency = 1
    return engine.Settings(concurrency=concurrency, ordered=not unordered, partial_ok=allow_partial,
                           progress=False, debug=debug or _log_failure)


def workers(chosen: "Settings") -> int:
    """Sources rendered at once in render worker processes (1: on a thread of this process)."""
    from docvision.run.workers import count

    return chosen.workers or count()


def cluster(chosen: "Settings"):
    """Where the call runs on Ray (docvision.run.cluster.Cluster), or None: in this process."""
    if not chosen.ray:
        return None
    from docvision.run.cluster import Cluster

    return Cluster(address=chosen.ray_address, gpus_per_actor=chosen.ray_gpus_per_actor)


def folder_path(folder: str | os.PathLike | None) -> Path | None:
    return Path(folder) if folder is not None else None


def _log_failure(exc: BaseException) -> None:
    """A failed source's traceback, for whoever listens at debug level (the CLI's --debug)."""
    log.debug("a source failed", exc_info=exc)


def output_path(output: str | os.PathLike | None) -> Path | None:
    """``output`` as a path ('-' is not a file: records already go to stdout)."""
    if output is not None and os.fspath(output) == "-":
        raise UsageError("--output - is not needed: records go to stdout already (use --json)")
    return Path(output) if output is not None else None


def check_folder(folder: str | os.PathLike | None, flag: str) -> Path | None:
    """Make sure a folder for pictures can be written before anything is drawn into it."""
    if folder is None:
        return None
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {folder} is a file, not a folder: choose a folder for the pictures")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"{flag} {folder}: cannot write there ({reason}); choose another folder") from None
    return folder


# -- tasks -----------------------------------------------------------------------------------------------
def questions(question: str | None, more: Iterable[str] | None) -> list[str]:
    """The call's questions, whitespace tidied and each once; at least one."""
    listed = ([question] if question is not None else []) + list(more or [])
    if isinstance(more, str):
        raise UsageError("questions= takes a list of questions; one question goes in question=")
    if not listed:
        raise UsageError("no question given: ask(sources, question) or ask(sources, questions=[...])")
    cleaned = [" ".join(str(q).split()) for q in listed]
    if not all(cleaned):
        raise UsageError("a question is empty")
    return list(dict.fromkeys(cleaned))


def _budget(chosen: "Settings"):
    from docvision.tasks.routing import Budget

    return Budget(pages=chosen.max_pages)


def ask_task(chosen: "Settings", asked: list[str], *, system, raw, ground, on_text, on_question, evidence_out,
             pages):
    from docvision.tasks.ask import AskTask
    from docvision.tasks.render import ViewFolders

    folder = check_folder(evidence_out, "--evidence-out")
    return AskTask(asked, hd=chosen.for_task("hd", "ask"), budget=_budget(chosen),
                   max_new_tokens=chosen.for_task("max_new_tokens", "ask"), system=system, raw=raw,
                   show_selected=bool(pages), on_text=on_text, ground=ground, announce=on_question,
                   evidence_out=ViewFolders(folder) if folder is not None else None)


def summarize_task(chosen: "Settings", system: str | None):
    from docvision.tasks.summarize import SummarizeTask

    return SummarizeTask(hd=chosen.for_task("hd", "summarize"), budget=_budget(chosen),
                         max_new_tokens=chosen.for_task("max_new_tokens", "summarize"), system=system)


def extract_task(chosen: "Settings", schema: dict, system: str | None):
    from docvision.tasks.extract import ExtractTask

    return ExtractTask(schema=schema, hd=chosen.for_task("hd", "extract"), budget=_budget(chosen),
                       max_new_tokens=chosen.for_task("max_new_tokens", "extract"), system=system)


def wanted_schema(fields: Mapping[str, str] | Iterable[str] | None, schema: Any) -> dict:
    """The JSON Schema of an extract call: from ``fields`` ({name: type} or ["name:type"]) or ``schema``
    (a dict, or the path of a JSON Schema file), exactly one of them."""
    from docvision.tasks.extract import check_schema, fields_schema, load_schema

    if (fields is None) == (schema is None):
        raise UsageError("give the fields with --field NAME[:TYPE] (repeatable) or --schema FILE, not both"
                         if fields is not None else "nothing to extract: add --field NAME[:TYPE] or --schema FILE")
    if fields is not None:
        specs = [f"{name}:{kind}" for name, kind in fields.items()] if isinstance(fields, Mapping) else list(fields)
        if isinstance(fields, str) or not specs:
            raise UsageError("fields= takes {name: type} or a list of 'name:type'")
        return fields_schema(specs)
    if isinstance(schema, Mapping):
        return check_schema(dict(schema), "the schema")
    return load_schema(Path(schema))


def render_task(chosen: "Settings", views: str | os.PathLike | None):
    """Render's task; a model named by the caller (not one from the environment) sets tile and tokens."""
    from docvision.tasks.render import RenderTask, ViewFolders

    family = model_id = None
    if chosen.model is not None and chosen.origins["model"] == "flag":
        import docvision.models.families as families
        import docvision.models.registry as registry

        registry.check_reference(chosen.model)
        resolved = registry.resolve(chosen.model, download=False)
        family, model_id = families.detect(resolved.config), resolved.model_id
    folder = check_folder(views, "--views")
    return RenderTask(hd=chosen.for_task("hd", "render"), tile=chosen.tile, family=family, model_id=model_id,
                      folders=ViewFolders(folder) if folder is not None else None)


def outside(views: str | os.PathLike | None) -> Callable[["Entry"], bool] | None:
    """Leave out our own views in --views: rendering `.` again must not render the last run's pictures."""
    if views is None:
        return None
    from docvision.ingest.checks import is_url
    from docvision.tasks.render import VIEW_SUFFIXES

    root = Path(views).resolve()

    def keep(entry) -> bool:
        path = Path(entry.source)
        return not (entry.error is None and not is_url(entry.source) and path.name.startswith("page-")
                    and path.name.endswith(VIEW_SUFFIXES) and path.resolve().parent.parent == root)

    return keep


# -- documents opened outside a Run: chat and canvases --------------------------------------------------------
def one_entry(source: str) -> "Entry":
    from docvision.sources import expand

    entries = expand([source])
    if len(entries) != 1:
        raise UsageError(f"{source}: give one file or URL, not a folder or a pattern")
    return entries[0]


@contextmanager
def open_document(entry: "Entry", ingest: IngestOptions, tools, cache: bool, pixels: bool,
                  say: Callable[[str], None]) -> Iterator["Document"]:
    """One source opened as the engine opens it (through the render cache); closed at the end."""
    from docvision.cache import RenderCache
    from docvision.ingest import load
    from docvision.ingest.ocr import with_ocr

    if entry.error is not None:
        raise entry.error
    document = (RenderCache(pixels=pixels, say=say).open(entry.source, ingest, tools) if cache
                else with_ocr(load(entry.source, ingest, tools), ingest.ocr, ingest.lang))
    with document:
        yield document


def open_all(sources: list[str], recursive: bool, ingest: IngestOptions, tools, cache: bool,
             say: Callable[[str], None]) -> tuple[list["Document"], list[tuple[str, DocvisionError]]]:
    """Every source opened (for a conversation), and those that failed with their errors."""
    from docvision.cache import RenderCache
    from docvision.ingest import load
    from docvision.ingest.ocr import with_ocr
    from docvision.sources import expand

    entries = expand(sources, recursive=recursive, say=say)
    if not entries:
        raise UsageError("no sources given")
    tools.expect([e.source for e in entries if e.error is None], {e.source: e.folder for e in entries if e.folder})
    store = RenderCache(pixels=True, say=say) if cache else None
    documents, failed = [], []
    for entry in entries:
        try:
            if entry.error is not None:
                raise entry.error
            documents.append(store.open(entry.source, ingest, tools) if store is not None
                             else with_ocr(load(entry.source, ingest, tools), ingest.ocr, ingest.lang))
        except DocvisionError as exc:
            failed.append((entry.source, exc))
    return documents, failed


class Chat:
    """A conversation about open documents; ``ask`` returns each answer as a record (task "chat")."""

    def __init__(self, name: str, documents: list["Document"], failed: list, backend, chosen: "Settings",
                 system: str | None, pages: str | None):
        from docvision.tasks.chat import Conversation

        self.name, self.documents, self.failed = name, documents, failed
        self.conversation = None
        if documents:
            self.conversation = Conversation(documents, backend, hd=chosen.for_task("hd", "chat"),
                                             budget=_budget(chosen), system=system,
                                             max_new_tokens=chosen.for_task("max_new_tokens", "chat"))
            if pages:
                self.conversation.set_pages(pages)

    def ask(self, question: str, on_text: Callable[[str], None] | None = None) -> dict:
        """The answer's record; a question that cannot be answered gets an error record."""
        if self.conversation is None:
            raise UsageError("no source of this conversation could be read: " + "; ".join(
                f"{source}: {exc.message}" for source, exc in self.failed))
        try:
            return self.record(self.conversation.ask(question, on_text=on_text))
        except DocvisionError as exc:
            return self.record({"question": " ".join(question.split())}, exc)

    def record(self, body: dict, error: BaseException | None = None) -> dict:
        import docvision.records as records

        if len(self.documents) == 1:
            document = self.documents[0]
            body = {**body, "document": {"type": document.kind, "page_count": document.page_count,
                                         "damaged_pages": list(document.damaged), "metadata": document.metadata}}
        return records.build(self.name, "chat", body, error)


# -- page pictures ----------------------------------------------------------------------------------------------
@dataclass
class Canvas:
    """One page as the model is shown it: ``image`` (the planned canvas), its plan, its text."""

    label: str
    number: int
    plan: dict
    image: "Image.Image"
    text: str = ""
    text_from: str | None = None  # "text" (the source's own), "ocr", "text+ocr"; None: no words

    def global_view(self) -> "Image.Image":
        """The whole canvas squashed to one tile, as 4KHD's global view."""
        import docvision.views as views
        from docvision.tiling import plan

        page_plan = plan(tuple(self.plan["source_size"]), self.plan["hd"], self.plan["tile"])
        return views.global_view(self.image, page_plan)


def canvases(document: "Document", task) -> Iterator[Canvas]:
    """The canvas of each page of ``document`` at the task's HD-N and tile."""
    import docvision.views as views
    from docvision.tasks.render import page_text
    from docvision.tiling import plan

    for page in document.pages():
        page_plan = plan(page.size, task.hd, task.tile, page.max_scale)
        text, origin = page_text(list(page.words))
        yield Canvas(page.label, page.number, page_plan.as_dict(), views.canvas(page, page_plan), text, origin)
