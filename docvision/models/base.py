"""The seam between tasks and models: page views and a prompt in, text out.

A backend knows nothing of files, pages routing or output formats. It tells the planner its tile
size (its model family decides it) and how many visual tokens a plan costs on its model, so
``render`` and records report what the model really sees.
"""

from __future__ import annotations

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


class Backend(ABC):
    """Images + prompt in, text out. Subclasses hold the loaded model or the server connection."""

    name: str = "backend"
    model_id: str = ""
    tile: int = DEFAULT_TILE
    # The most tokens one call may hold, prompt and answer, where the model or server says (a served
    # model's max_model_len, --max-context); None: no known limit. Pages are grouped into calls within it.
    context_tokens: int | None = None

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
