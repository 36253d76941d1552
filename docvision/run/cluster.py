"""A call on a Ray cluster: sources rendered in CPU tasks across the cluster, answered by the model server or
by the local model in GPU actors, records written by docvision in input order (docs/cluster.md).

In: the call's sources (listed here, on the driver: paths on a shared filesystem, URLs), its task, ingest
options and model settings, and where Ray is (an address, or none: a Ray of its own on this machine).
Out: each source with its records, in input order, exactly as the engine yields them in one process.

Built on Ray Data, with docvision's one engine inside each stage:

- render only, or ``--backend openai``: one stage of CPU actors; each keeps its own tools (Chromium,
  LibreOffice, PDF worker) and server connection, takes ``concurrency`` sources at a time and runs them
  through ``engine.stream`` as a plain run would (so at most that many requests per actor are in flight);
- a local model: a stage of CPU actors that open and draw each source (``engine.produce``, the producer's
  half) and a stage of model actors (``--ray-gpus-per-actor`` GPUs each, one model per actor) that answer
  from what was drawn (``engine.stream`` replaying those messages).

Ray retries a task whose worker or node was lost; the records reach this process once, and only here are
they written, so a source is never written twice. Ray's own progress bars and logs are turned off: the
call's ``progress`` and warnings are docvision's. Ray is imported only here, only when asked for.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from dataclasses import dataclass, replace
from typing import Any, Iterator

import docvision.run.engine as engine
from docvision.document import IngestOptions
from docvision.errors import UsageError
from docvision.sources import Entry

INSTALL = "--ray needs Ray, which is not installed here: pip install 'docvision[ray]'"


@dataclass(frozen=True)
class Cluster:
    """Where and how a call runs on Ray."""

    address: str | None = None  # None: RAY_ADDRESS, else a Ray started for this call on this machine
    gpus_per_actor: float = 1.0  # each model actor's GPUs (a local model); 0 runs it on CPUs
    actors: int | None = None  # most actors per stage (None: as many as the cluster's resources allow)


def start(cluster: Cluster) -> bool:
    """Connect to Ray (or start one on this machine), quiet: no progress bars, no worker logs on stderr.
    True when this call started or connected it (the Session then shuts it down when it closes)."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError(INSTALL) from None
    # Ray logs through the standard logging module (Ray Data with handlers of its own); the call's
    # warnings are docvision's, so only Ray's errors get through. (Its C++ core writes to the process's
    # stderr itself: the CLI points that at a file, docs/cluster.md.)
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    started = not ray.is_initialized()
    if started:
        _check_reachable(cluster.address)
        try:
            _init(ray, cluster)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
            # A cluster with token authentication refuses a driver that sends no token: send the one this
            # machine holds, as Ray itself does for the clusters it starts (never before: a cluster without
            # authentication would then refuse its workers' calls to this driver).
            if not (cluster.address and _refused_for_token(exc) and _use_token_if_there()):
                raise _unreachable(cluster, exc) from None
            ray.shutdown()
            try:
                _init(ray, cluster)
            except (ConnectionError, TimeoutError, RuntimeError, ValueError) as again:
                raise _unreachable(cluster, again) from None
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # records in input order, as in one process
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    return started


def _check_reachable(address: str | None, timeout: float = 10.0) -> None:
    """A cluster address that accepts no connection is one line now (Ray would retry for minutes)."""
    import re
    import socket

    found = re.fullmatch(r"(?:ray://)?\[?([^\]]+?)\]?:(\d+)", (address or "").strip())
    if found is None:
        return  # none (a Ray of our own), "auto", or a form Ray resolves itself
    try:
        socket.create_connection((found.group(1), int(found.group(2))), timeout=timeout).close()
    except OSError as exc:
        raise UsageError(f"--ray: nothing answers at {address} ({exc.strerror or type(exc).__name__}): check "
                         "--ray-address / RAY_ADDRESS, or start the cluster there (ray start --head)") from None


def _init(ray, cluster: Cluster) -> None:
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             configure_logging=False)


def _unreachable(cluster: Cluster, exc: BaseException) -> UsageError:
    where = f"the Ray cluster at {cluster.address}" if cluster.address else "a Ray on this machine"
    return UsageError(f"--ray: cannot connect to {where}: {' '.join(str(exc).split())[:300]} "
                      "(check --ray-address / RAY_ADDRESS, or start it: ray start --head)")


def _refused_for_token(exc: BaseException) -> bool:
    cause = exc.__cause__ or exc.__context__
    return cause is not None and ("AuthenticationError" in type(cause).__name__ or "auth" in str(cause).lower())


def _use_token_if_there() -> bool:
    """Send this machine's Ray token (~/.ray/auth_token, RAY_AUTH_TOKEN...) when RAY_AUTH_MODE does not
    say otherwise; whether there is one to send."""
    if os.environ.get("RAY_AUTH_MODE"):
        return False
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return False
    return bool(maybe_enable_token_auth_if_token_available(warn_if_disabled=False))


def stop() -> None:
    import ray

    ray.shutdown()


def check_model(settings) -> Any:
    """Fail here, once, when the model cannot be had (its actors would fail on every node); the Shape the
    drawing needs (a local model's family, read from its config.json, no weights loaded)."""
    from docvision.models import LocalSettings, load_backend
    from docvision.models.base import Shape

    if isinstance(settings, LocalSettings):
        import docvision.models.families as families
        import docvision.models.registry as registry

        family = families.detect(registry.resolve(settings.model).config)
        return Shape(family.tile, family)
    load_backend(settings).close()  # the server answers and serves the model
    return None


def stream(todo: list[Entry], task, *, options: IngestOptions, cache: bool, backend_settings: Any,
           settings: engine.Settings, cluster: Cluster, shape: Any = None) -> Iterator[tuple[Entry, list[dict]]]:
    """Each source of ``todo`` with its records, in input order, the work done on the cluster (Ray is
    started: ``start``)."""
    import ray.data

    from docvision.models import LocalSettings
    from docvision.run.workers import render_half

    quiet = replace(settings, debug=None, progress=False)
    rows = [{"position": n, "source": e.source} for n, e in enumerate(todo) if e.error is None]
    worker_task = render_half(task, [row["source"] for row in rows])
    results: dict[int, list[dict]] = {}
    if rows:
        data = ray.data.from_items(rows)
        if task.needs_model and isinstance(backend_settings, LocalSettings):
            data = data.map(Drawer, fn_constructor_args=(worker_task, shape, options, cache, os.getcwd()),
                            concurrency=_pool(cluster), num_cpus=1)
            data = data.map(Answerer, fn_constructor_args=(worker_task, backend_settings, quiet, os.getcwd()),
                            concurrency=_pool(cluster), num_cpus=0 if cluster.gpus_per_actor else 1,
                            num_gpus=cluster.gpus_per_actor)
        else:
            batch = max(1, settings.concurrency)
            data = data.map_batches(Runner, fn_constructor_args=(worker_task, options, cache, backend_settings, quiet,
                                                                 os.getcwd()),
                                    batch_size=batch, concurrency=_pool(cluster), num_cpus=1)
        rows_done = iter(data.iter_rows())
    else:
        rows_done = iter(())
    for position, entry in enumerate(todo):
        if entry.error is not None:
            yield entry, [_error(entry, task)]
            continue
        while position not in results:
            row = next(rows_done)
            results[int(row["position"])] = json.loads(row["records"])
        yield entry, results.pop(position)


def _pool(cluster: Cluster) -> tuple[int, int] | int | None:
    return (1, cluster.actors) if cluster.actors else None


def _error(entry: Entry, task) -> dict:
    import docvision.records as records

    return records.error(entry.source, task.name, entry.error)


def _work_in(cwd: str) -> None:
    """An actor works in the driver's folder (on the shared filesystem), so that the paths the user typed
    there -- sources, a model folder -- name the same files, and records keep them as typed."""
    try:
        os.chdir(cwd)
    except OSError:  # not mounted on this node: absolute paths and URLs still work
        pass


class _Tools:
    """An actor's tools and opener, kept for every source it takes."""

    def __init__(self, options: IngestOptions, cache: bool, pixels: bool, cwd: str):
        from docvision.cache import RenderCache
        from docvision.ingest import load
        from docvision.ingest.ocr import with_ocr
        from docvision.ingest.tools import Tools

        _work_in(cwd)
        self.tools = Tools(options)
        if cache:
            store = RenderCache(pixels=pixels)
            self.opener = lambda source: store.open(source, options, self.tools)
        else:
            self.opener = lambda source: with_ocr(load(source, options, self.tools), options.ocr, options.lang)

    def __del__(self) -> None:
        self.tools.close()


class Runner:
    """Render, and ask the model server when the task needs one: a whole source per row, ``concurrency``
    sources at a time (a batch), through the engine."""

    def __init__(self, task, options: IngestOptions, cache: bool, backend_settings, settings: engine.Settings,
                 cwd: str):
        from docvision.models import load_backend

        self.task, self.settings = task, settings
        self.local = _Tools(options, cache, task.needs_model, cwd)
        self.backend = load_backend(backend_settings) if task.needs_model and backend_settings else None

    def __call__(self, batch: dict) -> dict:
        entries = [Entry(str(source)) for source in batch["source"]]
        written = [json.dumps(records) for _, records in engine.stream(
            entries, self.task, opener=self.local.opener, backend=self.backend, settings=self.settings)]
        return {"position": list(batch["position"]), "records": written}


class Drawer:
    """The producer's half of a source (open, route, draw) on a CPU: its lane's messages, pickled."""

    def __init__(self, task, shape, options: IngestOptions, cache: bool, cwd: str):
        self.task, self.shape = task, shape
        self.local = _Tools(options, cache, True, cwd)

    def __call__(self, row: dict) -> dict:
        messages = list(engine.produce(Entry(row["source"]), self.task, self.local.opener, self.shape))
        return {"position": row["position"], "source": row["source"], "messages": pickle.dumps(messages)}


class _Replay:
    """A ``remote`` for the engine that hands back messages drawn elsewhere."""

    def __init__(self, messages: list):
        self.messages = messages

    def count(self, sources: int) -> int:
        return 1

    def workers(self, sources: int) -> list:
        return [None]

    def render(self, worker, position: int, entry: Entry, stopped) -> Iterator[tuple[str, Any]]:
        yield from self.messages


class Answerer:
    """The model's half: one loaded model per actor, answering from the messages a Drawer made."""

    def __init__(self, task, backend_settings, settings: engine.Settings, cwd: str):
        from docvision.models import load_backend

        _work_in(cwd)
        self.task, self.settings = task, settings
        self.backend = load_backend(backend_settings)

    def __call__(self, row: dict) -> dict:
        entry = Entry(row["source"])
        written = [records for _, records in engine.stream(
            [entry], self.task, opener=None, backend=self.backend, settings=self.settings,
            remote=_Replay(pickle.loads(row["messages"])))]
        return {"position": row["position"], "records": json.dumps(written[0])}
