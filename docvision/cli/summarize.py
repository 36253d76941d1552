"""``docvision summarize``: a summary per source, page by page for long documents, then combined."""

from __future__ import annotations

import docvision.cli.options as o
import docvision.cli.runner as runner


def summarize(
    sources: o.Sources,
    hd: o.SummarizeHd = None,
    max_pages: o.MaxPages = None,
    max_new_tokens: o.SummarizeMaxNewTokens = None,
    system: o.System = None,
    pages: o.Pages = None,
    password: o.Password = None,
    model: o.Model = None,
    backend: o.Backend = None,
    base_url: o.BaseUrl = None,
    quant: o.Quant = None,
    device: o.Device = None,
    dtype: o.Dtype = None,
    concurrency: o.Concurrency = None,
    unordered: o.Unordered = False,
    request_timeout: o.RequestTimeout = None,
    max_context: o.MaxContext = None,
    prefix_cache_mb: o.PrefixCacheMb = None,
    hub_kernels: o.HubKernels = False,
    json_out: o.Json = False,
    output: o.Output = None,
    output_dir: o.OutputDir = None,
    resume: o.Resume = False,
    no_timings: o.NoTimings = False,
    no_cache: o.NoCache = False,
    allow_partial: o.AllowPartial = False,
    recursive: o.Recursive = False,
    workers: o.Workers = None,
    ray: o.Ray = False,
    ray_address: o.RayAddress = None,
    ray_gpus_per_actor: o.RayGpusPerActor = None,
    max_image_pixels: o.MaxImagePixels = None,
    timeout: o.Timeout = None,
    browser: o.Browser = None,
    viewport_width: o.ViewportWidth = None,
    scale: o.Scale = None,
    offline: o.Offline = False,
    local_pages_online: o.LocalPagesOnline = False,
    local_root: o.LocalRoot = None,
    ocr: o.Ocr = None,
    lang: o.Lang = None,
    config_file: o.Config = None,
    debug: o.Debug = False,
) -> int:
    """Summarize each source: page by page for long documents, then combined into one summary.

    \b
    Examples:
      docvision summarize report.pdf
      docvision summarize ./inbox --recursive --json > summaries.jsonl
      find . -name '*.pdf' | docvision summarize - --output summaries.jsonl --resume
    """
    given = dict(locals())

    def call(session, progress):
        return session.summarize(sources, system=system, unordered=unordered, progress=progress,
                                 **runner.call_arguments(given))

    return runner.execute(call, given, json_out=json_out, task="summarize")
