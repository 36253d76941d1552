"""The seam between tasks and models: page views and a prompt in, text out.

A backend knows nothing of files, pages routing or output formats. It tells the planner its tile
size (its model family decides it) and how many visual tokens a plan costs on its model, so
``render`` and records report what the model really sees.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from docvision.tiling import DEFAULT_TILE, Plan

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class PageView:
    """One page as the model will see it: the HD-N canvas and the plan that made it."""

    label: str
    image: "Image.Image"  # the padded canvas, plan.canvas_size
    plan: Plan


@dataclass
class Generation:
    """What a backend returns: the text and what it cost."""

    text: str
    prompt_tokens: int | None = 0  # None: the server did not say (then ``warnings`` says so)
    visual_tokens: int = 0
    new_tokens: int | None = 0
    cached_prefix_tokens: int = 0  # prompt tokens taken from an earlier call's cache instead of being run
    timings: dict = field(default_factory=dict)  # prefill_s, generate_s, first_token_s
    warnings: list[str] = field(default_factory=list)  # for the record, e.g. a server that sent no usage


@dataclass(frozen=True)
class Shape:
    """What drawing pages needs of a backend -- its tile size and how many visual tokens a plan costs --
    as plain data a render worker can take (docvision.run.workers)."""

    tile: int = DEFAULT_TILE
    family: object = None  # a docvision.models.families.Family; None: the 4KHD count

    def visual_tokens(self, plan: Plan) -> int:
        return self.family.visual_tokens(plan) if self.family is not None else plan.tokens

    @classmethod
    def of(cls, backend: "Backend | None") -> "Shape | None":
        """The shape of a loaded backend (None for none)."""
        if backend is None:
            return None
        return cls(backend.tile, getattr(backend, "family", None))


class Status:
    """A backend's live account of one call for people (a Session call's ``on_status``): what it is doing,
    then the tokens written and tokens/s, at most every ``EVERY_S`` seconds. Silent when nobody listens."""

    EVERY_S = 0.5

    def __init__(self, hook: Callable[[str], None] | None):
        self.hook = hook
        self.count = 0
        self.started = self.last = 0.0

    def say(self, text: str) -> None:
        if self.hook is not None:
            self.hook(text)

    def encoding(self, pages: int, visual_tokens: int, reused: int = 0) -> None:
        """The model reads the pages (the long, silent part on a CPU)."""
        self.count = 0
        kept = f" ({reused:,} prompt tokens reused)" if reused else ""
        self.say(f"encoding {visual_tokens:,} visual tokens of {pages} page{'s' if pages != 1 else ''}{kept}")

    def counting(self, on_text: Callable[[str], None] | None) -> Callable[[str], None] | None:
        """``on_text`` that also counts each piece streamed as a token (a server streams about one a piece)."""
        if self.hook is None:
            return on_text

        def counted(piece: str) -> None:
            self.token()
            if on_text is not None:
                on_text(piece)

        return counted

    def token(self) -> None:
        """One more token written."""
        if self.hook is None:
            return
        now = time.perf_counter()
        self.count += 1
        if self.count == 1:
            self.started = now
        if now - self.last >= self.EVERY_S:
            self.last = now
            rate = (self.count - 1) / (now - self.started) if now > self.started else 0.0
            self.say(f"writing: {self.count} token{'s' if self.count != 1 else ''}"
                     + (f", {rate:.1f} tokens/s" if self.count > 1 else ""))


class Backend(ABC):
    """Images + prompt in, text out. Subclasses hold the loaded model or the server connection."""

    name: str = "backend"
    model_id: str = ""
    tile: int = DEFAULT_TILE
    # The most tokens one call may hold, prompt and answer, where the model or server says (a served
    # model's max_model_len, --max-context); None: no known limit. Pages are grouped into calls within it.
    context_tokens: int | None = None
    on_status: Callable[[str], None] | None = None  # the current call's live status (set by the Session)

    def status(self) -> Status:
        """A Status for one generate call, fed to the current call's ``on_status``."""
        return Status(self.on_status)

    def visual_tokens(self, plan: Plan) -> int:
        """Visual tokens this backend's model spends on a page planned as ``plan``."""
        return plan.tokens

    @abstractmethod
    def generate(
        self,
        views: Sequence[PageView],
        prompt: str,
        *,
        max_new_tokens: int = 512,
        on_text: Callable[[str], None] | None = None,
        system: str | None = None,
    ) -> Generation:
        """Answer ``prompt`` about ``views`` (greedy); call ``on_text`` with each new piece of text.

        ``system`` replaces the model's default system prompt (``--system``); None keeps it.
        """

    def info(self) -> dict:
        """What records say about the model: id, backend, device, quantization, load time."""
        return {"id": self.model_id, "backend": self.name}

    def close(self) -> None:
        """Release the model or connection."""
