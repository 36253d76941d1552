"""docvision as a library: a Session holds a model, a browser, LibreOffice and PDF workers between calls.

In: settings by the CLI's names (``Session(model="small", hd=25)``), layered as the CLI layers them:
arguments over DOCVISION_* variables over the config file over defaults. Out: per call (``ask``,
``summarize``, ``extract``, ``render``) a ``Run``, an iterator of the exact records ``--json`` writes
(plain dicts, schema 2), and ``chat`` / ``canvases`` for conversations and page pictures. The model is
loaded on the first call that needs it and kept, with the encodings of the pages it was shown, so a
second question about the same pages starts at once; everything is closed by ``close()`` or the end of
a ``with`` block, also when it ends in an exception. The CLI is a thin layer over this: docs/api.md.

Nothing here prints: run-level warnings go to the ``docvision`` logger, source-level ones into records.
Bad settings raise ``UsageError`` when the Session or the call is made, before anything runs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Mapping, Union

import docvision.run.calls as calls
from docvision.config import SPECS, Settings, resolve
from docvision.document import IngestOptions
from docvision.errors import DocvisionError, UsageError
from docvision.run.batch import Plan, Progress, Run

log = logging.getLogger("docvision")

Sources = Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]
Where = Union[str, os.PathLike, None]  # a file or folder to write
# Settings fixed for a Session's life: they choose what it loads and starts. Every other setting may also
# be given to one call (``session.ask(..., hd=55)``).
SESSION_ONLY = frozenset({"backend", "model", "quant", "device", "dtype", "base_url", "api_key",
                          "request_timeout", "connect_timeout", "retries", "prefix_cache_mb", "hub_kernels",
                          "max_context", "browser", "ray", "ray_address"})


class Session:
    """Documents in, records out, with a model and tools that live as long as the Session.

    ``Session(**settings)`` takes the settings ``docvision config`` lists (model, backend, base_url,
    api_key, hd, quant, device, max_pages, max_new_tokens, ocr, lang, timeout, concurrency, offline, ...)
    plus ``config`` (a settings file) and ``cache`` (False: no render cache). Not thread-safe: one call at
    a time; starting a call stops an earlier one that was not iterated to its end.
    """

    def __init__(self, *, config: str | os.PathLike | None = None, cache: bool = True,
                 environ: Mapping[str, str] | None = None, **settings: Any):
        _check_names(settings)
        self._flags = settings
        self._config = os.fspath(config) if config is not None else None
        self._environ = dict(os.environ if environ is None else environ)
        self.settings: Settings = resolve(settings, config=self._config, environ=self._environ)
        if self.settings.backend == "transformers":
            import docvision.models.registry as registry

            registry.check_reference(self.settings.model)
        self.cache = cache
        self._tools: Any = None
        self._pool: Any = None  # render workers (docvision.run.workers.Pool), started by the first call that needs them
        self._backend: Any = None
        self._ray = False  # this Session started (or connected) Ray, and stops it when it closes
        self._active: Run | None = None
        self._closed = False
        self._single_call = False  # the CLI's and docvision.ask()'s: tools stop as soon as rendering ends
        self._debug: Callable[[BaseException], None] | None = None
        self._on_status: Callable[[str], None] | None = None

    # -- calls -----------------------------------------------------------------------------------------------
    # Every call also takes: pages, password, recursive, output (a JSON Lines file) or output_dir (shards),
    # resume, allow_partial, unordered (records as they finish), progress, and call-level settings.
    def ask(self, sources: Sources, question: str | None = None, *, questions: Iterable[str] | None = None,
            system: str | None = None, raw: bool = False, ground: bool = False, evidence_out: Where = None,
            on_text: Callable[[str], None] | None = None, on_question: Callable[[str, str], None] | None = None,
            pages: str | None = None, password: str | None = None, recursive: bool = False, output: Where = None,
            output_dir: Where = None, resume: bool = False, allow_partial: bool = False, unordered: bool = False,
            progress: Progress | None = None, on_status: Callable[[str], None] | None = None,
            **settings: Any) -> Run:
        """Answer ``question`` (or each of ``questions``) about each source: one record per source and
        question. ``on_text`` gets the answer's text piece by piece as the model writes it;
        ``on_question(source, question)`` is called before each answer starts; ``on_status`` gets a line
        for people about long model work (loading, encoding N visual tokens, tokens written and tokens/s)."""
        chosen = self._call_settings(settings, on_status=on_status)
        if on_text is not None and chosen.concurrency > 1 and chosen.backend == "openai":
            raise UsageError("on_text streams one answer at a time: use concurrency 1 with it")
        if evidence_out is not None and chosen.ray:
            raise UsageError("--evidence-out writes pictures on this machine: leave out --ray to use it")
        asked = calls.questions(question, questions)
        task = calls.ask_task(chosen, asked, system=system, raw=raw, ground=ground, on_text=on_text,
                              on_question=on_question, evidence_out=evidence_out, pages=pages)
        return self._run(task, sources, chosen, pages=pages, password=password, recursive=recursive, output=output,
                         output_dir=output_dir, resume=resume, allow_partial=allow_partial, unordered=unordered,
                         progress=progress)

    def summarize(self, sources: Sources, *, system: str | None = None, pages: str | None = None,
                  password: str | None = None, recursive: bool = False, output: Where = None,
                  output_dir: Where = None, resume: bool = False, allow_partial: bool = False,
                  unordered: bool = False, progress: Progress | None = None,
                  on_status: Callable[[str], None] | None = None, **settings: Any) -> Run:
        """A summary of each source: section by section for long documents, then combined (``on_status``:
        as ``ask``'s)."""
        chosen = self._call_settings(settings, on_status=on_status)
        return self._run(calls.summarize_task(chosen, system), sources, chosen, pages=pages, password=password,
                         recursive=recursive, output=output, output_dir=output_dir, resume=resume,
                         allow_partial=allow_partial, unordered=unordered, progress=progress)

    def extract(self, sources: Sources, *, fields: Mapping[str, str] | Iterable[str] | None = None,
                schema: Mapping[str, Any] | Where = None, system: str | None = None, pages: str | None = None,
                password: str | None = None, recursive: bool = False, output: Where = None,
                output_dir: Where = None, resume: bool = False, allow_partial: bool = False,
                unordered: bool = False, progress: Progress | None = None,
                on_status: Callable[[str], None] | None = None, **settings: Any) -> Run:
        """Fields as a validated object per source: ``fields={"total": "number"}`` (or ``["total:number"]``)
        or a JSON Schema (a dict, or the path of a file); a field the document does not give is None
        (``on_status``: as ``ask``'s)."""
        chosen = self._call_settings(settings, on_status=on_status)
        task = calls.extract_task(chosen, calls.wanted_schema(fields, schema), system)
        return self._run(task, sources, chosen, pages=pages, password=password, recursive=recursive, output=output,
                         output_dir=output_dir, resume=resume, allow_partial=allow_partial, unordered=unordered,
                         progress=progress)

    def render(self, sources: Sources, *, views: Where = None, pages: str | None = None,
               password: str | None = None, recursive: bool = False, output: Where = None,
               output_dir: Where = None, resume: bool = False, allow_partial: bool = False,
               progress: Progress | None = None, **settings: Any) -> Run:
        """Each page's HD-N plan and text, without a model; ``views`` writes the pictures the model would
        see (canvas, global view, overview) into that folder. A model given to the Session or the call
        sets the tile size and the visual-token count."""
        chosen = self._call_settings(settings, allowed=("model",))
        task = calls.render_task(chosen, views)
        return self._run(task, sources, chosen, pages=pages, password=password, recursive=recursive, output=output,
                         output_dir=output_dir, resume=resume, allow_partial=allow_partial, progress=progress,
                         keep=calls.outside(views),
                         left_out=f"left out {{n}} view picture(s) of an earlier run in --views {views}")

    def canvases(self, source: str | os.PathLike, *, pages: str | None = None, password: str | None = None,
                 **settings: Any) -> Iterator["calls.Canvas"]:
        """The pictures the model is shown of each page of one source (PIL images), with its plan and
        text; an unreadable source raises its DocvisionError."""
        chosen = self._call_settings(settings, allowed=("model",))
        ingest = calls.ingest_options(chosen, pages, password)
        task = calls.render_task(chosen, None)
        with self._document(os.fspath(source), ingest, pixels=True) as document:
            yield from calls.canvases(document, task)

    @contextmanager
    def chat(self, sources: Sources, *, pages: str | None = None, password: str | None = None,
             recursive: bool = False, system: str | None = None, on_status: Callable[[str], None] | None = None,
             **settings: Any) -> Iterator["calls.Chat"]:
        """A conversation about the sources (``with session.chat(...) as talk: talk.ask(...)``): each
        question routed over every document's pages and answered with the conversation so far; each
        answer a record. Sources that cannot be read are in ``talk.failed`` (``on_status``: as ``ask``'s)."""
        chosen = self._call_settings(settings, on_status=on_status)
        ingest = calls.ingest_options(chosen, None, password)
        self._begin(None)
        tools = self._tools_for(ingest)
        documents, failed = [], []
        listed = _listed(sources)
        try:
            documents, failed = calls.open_all(listed, recursive, ingest, tools, self.cache, log.warning)
            backend = self.backend("chat") if documents else None
            yield calls.Chat(", ".join(listed), documents, failed, backend, chosen, system, pages)
        finally:
            for document in documents:
                document.close()

    # -- resources a Run borrows (docvision.run.batch.Resources) ---------------------------------------------
    @property
    def single_call(self) -> bool:
        return self._single_call

    def begin(self, run: Run) -> None:
        self._begin(run)

    def tools(self, options: IngestOptions) -> Any:
        return self._tools_for(options)

    def backend(self, task: str | None = None) -> Any:
        """The model backend, loaded on first use and kept until ``close()``; a model server is checked
        at the HD-N of ``task``, the command of the call that first needs it."""
        if self._closed:
            raise UsageError("this Session is closed")
        if self._backend is None:
            from docvision.models import load_backend

            if self._on_status is not None:
                self._on_status(f"loading the model {self.settings.model or 'default'} ({self.settings.backend})")
            self._backend = load_backend(self.settings.backend_settings(task))
        self._backend.on_status = self._on_status  # the current call's
        return self._backend

    def pool(self, size: int) -> Any:
        """The Session's render workers, started again when a call wants another number of them."""
        import docvision.run.workers as workers

        if self._pool is not None and (self._pool.closed or self._pool.size != size):
            self._pool.close()
            self._pool = None
        if self._pool is None:
            self._pool = workers.Pool(size)
        return self._pool

    def backend_settings(self, task: str | None = None) -> Any:
        return self.settings.backend_settings(task)

    def ray(self, cluster: Any) -> None:
        """Ray, started or connected once for the Session's calls."""
        import docvision.run.cluster as clusters

        self._ray = clusters.start(cluster) or self._ray

    def release(self) -> None:
        """After a call: tools or workers it stopped (a call stopped mid-source) are started anew next time."""
        if self._tools is not None and self._tools.closed:
            self._tools = None
        if self._pool is not None and self._pool.closed:
            self._pool = None

    def end(self, run: Run) -> None:
        if self._active is run:
            self._active = None

    # -- the Session's life ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the browser, LibreOffice and the PDF workers and unload the model; safe to call twice."""
        self._closed = True
        active, self._active = self._active, None
        tools, self._tools = self._tools, None
        pool, self._pool = self._pool, None
        backend, self._backend = self._backend, None
        try:
            if active is not None:
                active.close()
        finally:
            try:
                for stopping in (tools, pool):
                    if stopping is not None:
                        stopping.close()
            finally:
                if backend is not None:
                    backend.close()
                if self._ray:
                    import docvision.run.cluster as clusters

                    clusters.stop()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- inside ----------------------------------------------------------------------------------------------
    def _call_settings(self, settings: Mapping[str, Any], allowed: tuple[str, ...] = (),
                       on_status: Callable[[str], None] | None = None) -> Settings:
        """The Session's settings with one call's own on top (the same checks as the Session's)."""
        if self._closed:
            raise UsageError("this Session is closed")
        self._on_status = on_status  # a call at a time: the status of the call being made
        _check_names(settings)
        fixed = sorted(set(settings) & SESSION_ONLY - set(allowed))
        if fixed:
            raise UsageError(f"{', '.join(fixed)}: set {'it' if len(fixed) == 1 else 'them'} on the Session, "
                             "not on one call (it chooses what the Session loads)")
        if not settings:
            return self.settings
        return resolve({**self._flags, **settings}, config=self._config, environ=self._environ)

    def _run(self, task, sources: Sources, chosen: Settings, *, pages, password, recursive, output, output_dir,
             resume, allow_partial, progress, unordered: bool = False, keep=None, left_out: str = "") -> Run:
        ingest = calls.ingest_options(chosen, pages, password)
        plan = Plan(_listed(sources), task, ingest, recursive=recursive, workers=calls.workers(chosen),
                    cluster=calls.cluster(chosen), output_dir=calls.folder_path(output_dir),
                    output=calls.output_path(output), resume=resume, cache=self.cache,
                    timings=not chosen.no_timings, keep=keep, left_out=left_out or "left out {n} source(s)",
                    engine=calls.engine_settings(chosen, unordered, allow_partial, self._debug))
        return Run(plan, self, log.warning, progress)

    def _begin(self, run: Run | None) -> None:
        """One call at a time: an earlier call still open is stopped (what it finished stays written)."""
        if self._closed:
            raise UsageError("this Session is closed")
        active, self._active = self._active, run
        if active is not None and active is not run and not active.finished:
            log.warning("an earlier call of this Session was not iterated to its end; it was stopped")
            active.close()

    def _tools_for(self, options: IngestOptions) -> Any:
        """The Session's Tools, started again when a call needs other browser or converter options."""
        from docvision.ingest.tools import Tools

        wanted = dataclasses.replace(options, pages=None, password=None)
        if self._tools is not None and (self._tools.closed or self._tools.options != wanted):
            self._tools.close()
            self._tools = None
        if self._tools is None:
            self._tools = Tools(wanted)
        return self._tools

    @contextmanager
    def _document(self, source: str, ingest: IngestOptions, pixels: bool):
        """One source opened through the Session's tools (and the render cache)."""
        self._begin(None)
        tools = self._tools_for(ingest)
        entry = calls.one_entry(source)
        with calls.open_document(entry, ingest, tools, self.cache, pixels, log.warning) as document:
            yield document


def _check_names(settings: Mapping[str, Any]) -> None:
    unknown = sorted(set(settings) - set(SPECS))
    if unknown:
        raise UsageError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                         f"(settings: {', '.join(SPECS)}, config, cache)")


def _listed(sources: Sources) -> list[str]:
    """A source or several, as the strings the CLI would have been given."""
    if isinstance(sources, (str, os.PathLike)):
        return [os.fspath(sources)]
    listed = [os.fspath(s) for s in sources]
    if not all(isinstance(s, str) for s in listed):
        raise UsageError("sources are paths or URLs (str or pathlib.Path)")
    return listed


def one_call(*, debug: Callable[[BaseException], None] | None = None, **settings: Any) -> Session:
    """A Session for a single call (the CLI's, ``docvision.ask()``'s): its browser and converter stop as
    soon as the call has rendered its last source; ``debug`` is shown each failed source's exception."""
    session = Session(**settings)
    session._single_call = True
    session._debug = debug
    return session


def _one_call(method: str, sources: Sources, args: tuple, kwargs: dict) -> list[dict]:
    """A Session opened for one call and closed again; the records as a list."""
    session_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in SESSION_ONLY or k in ("config", "cache")}
    with one_call(**session_kw) as session:
        return list(getattr(session, method)(sources, *args, **kwargs))


def ask(sources: Sources, question: str | None = None, **kwargs: Any) -> list[dict]:
    """``Session(...).ask(...)`` in one call: the records as a list (Session settings and call arguments
    may be mixed in ``kwargs``)."""
    return _one_call("ask", sources, (question,), kwargs)


def summarize(sources: Sources, **kwargs: Any) -> list[dict]:
    """``Session(...).summarize(...)`` in one call: the records as a list."""
    return _one_call("summarize", sources, (), kwargs)


def extract(sources: Sources, **kwargs: Any) -> list[dict]:
    """``Session(...).extract(...)`` in one call: the records as a list."""
    return _one_call("extract", sources, (), kwargs)


def render(sources: Sources, **kwargs: Any) -> list[dict]:
    """``Session(...).render(...)`` in one call: the records as a list."""
    return _one_call("render", sources, (), kwargs)


__all__ = ["Run", "Session", "ask", "extract", "render", "summarize", "DocvisionError", "UsageError"]
