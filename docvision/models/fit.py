"""What fits one model call: the context arithmetic shared by page grouping, the server check and the
server recipes (docs/serving.md).

In: a model family, an HD-N budget, pages per call, the answer's length, a context length. Out: the
largest page HD-N can plan and its visual tokens, the tokens one call may spend on pages, the largest
HD-N whose pages fit a limit, and the flags a vLLM, SGLang or Ollama server needs to take the calls.
Pure arithmetic, no I/O.

A call holds its pages' visual tokens, a little text per page (a label, the image's start and end
markers), the prompt (instruction and question) and the answer. The text is not tokenized here (the
server's tokenizer is not at hand), so a fixed room is kept for it: docvision's own instructions are a
few hundred bytes, and a byte-level tokenizer never spends more tokens than bytes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from docvision.tiling import Plan, plan

if TYPE_CHECKING:
    from docvision.models.base import PageView
    from docvision.models.families import Family

PROMPT_TOKENS = 512  # instruction, question, chat template: the text of a call besides its pages
PAGE_TEXT_TOKENS = 16  # per page: its label and the image's start/end markers
SERVERS = ("vllm", "sglang", "ollama")
ROUND_TO = 1024  # context lengths in recipes are rounded up to this


def largest_plan(hd: int, tile: int, family: "Family") -> Plan:
    """The plan of the largest page HD-``hd`` allows (the one that costs ``family`` the most tokens).

    Any grid of cols x rows tiles with cols*rows <= N is some page's plan (a page of that shape), so the
    largest page fills N tiles as nearly as a grid can; of equal grids the squarest is taken."""
    best: Plan | None = None
    for cols in range(1, hd + 1):
        rows = min(cols, hd // cols)
        candidate = plan((cols * tile, rows * tile), hd, tile)
        if best is None or family.visual_tokens(candidate) > family.visual_tokens(best):
            best = candidate
    assert best is not None  # hd >= 1 always gives one grid
    return best


def blank_view(page_plan: Plan) -> "PageView":
    """A white canvas of ``page_plan``: what a page of that plan is sent as, minus its content."""
    from PIL import Image

    from docvision.models.base import PageView

    return PageView("page 1", Image.new("RGB", page_plan.canvas_size, "white"), page_plan)


def page_tokens(hd: int, tile: int, family: "Family") -> int:
    """Visual tokens of the largest page at HD-``hd``."""
    return family.visual_tokens(largest_plan(hd, tile, family))


def pages_room(context: int | None, answer_tokens: int) -> int | None:
    """Tokens one call may spend on its pages (visual tokens plus their labels); None: no known limit."""
    if context is None:
        return None
    return context - answer_tokens - PROMPT_TOKENS


def fitting_hd(size: tuple[int, int], hd: int, tile: int, family: "Family", limit: int) -> int | None:
    """The largest HD-N up to ``hd`` at which a page of ``size`` costs at most ``limit``; None if none does."""
    for n in range(hd, 0, -1):
        if family.visual_tokens(plan(size, n, tile)) + PAGE_TEXT_TOKENS <= limit:
            return n
    return None


def largest_fitting_hd(hd: int, tile: int, family: "Family", limit: int) -> int | None:
    """The largest HD-N up to ``hd`` whose largest page costs at most ``limit`` visual tokens."""
    for n in range(hd, 0, -1):
        if page_tokens(n, tile, family) <= limit:
            return n
    return None


def images_per_page(hd: int, family: "Family") -> int:
    """Images one page is sent as: one canvas, or (the generic path) a global view plus each tile."""
    from docvision.models.families import NativeFamily

    return 1 if isinstance(family, NativeFamily) else 1 + hd


def server_needs(family: "Family", hd: int, max_pages: int, answer_tokens: int) -> dict:
    """What a server must allow for calls of ``max_pages`` pages at HD-``hd`` with ``answer_tokens``:
    the context, the largest page's visual tokens (vLLM's encoder cache, i.e. --max-num-batched-tokens on
    its CPU build), the images per request, and whether per-request processor options are needed."""
    page = page_tokens(hd, family.tile, family)
    context = max_pages * (page + PAGE_TEXT_TOKENS) + PROMPT_TOKENS + answer_tokens
    return {"family": family.name, "hd": hd, "max_pages": max_pages, "page_tokens": page,
            "context": math.ceil(context / ROUND_TO) * ROUND_TO,
            "images": max_pages * images_per_page(hd, family),
            "processor_options": bool(family.processor_kwargs([blank_view(largest_plan(hd, family.tile, family))]))}


def serve_command(server: str, model: str, needs: dict, port: int | None = None) -> str:
    """The command line that starts ``server`` so that it takes docvision's calls as ``needs`` describes."""
    context = needs["context"]
    if server == "vllm":
        parts = [f"vllm serve {model}", f"--max-model-len {context}",
                 # The encoder cache must hold the largest page; on vLLM's CPU build it is this flag.
                 f"--max-num-batched-tokens {max(context, needs['page_tokens'])}",
                 f"--limit-mm-per-prompt '{{\"image\": {needs['images']}, \"video\": 0}}'"]
        if needs["processor_options"]:
            parts.append("--trust-request-mm-kwargs")  # else every page is refused (HTTP 400)
        parts.append(f"--port {port or 8000}")
        return " ".join(parts)
    if server == "sglang":
        return (f"python -m sglang.launch_server --model-path {model} --context-length {context} "
                f"--port {port or 30000}")
    if server == "ollama":
        # Ollama lists no context length and cuts a longer prompt without a word: tell docvision too.
        return f"OLLAMA_CONTEXT_LENGTH={context} ollama serve"
    raise ValueError(f"not a server: {server!r}")  # the CLI offers only SERVERS
