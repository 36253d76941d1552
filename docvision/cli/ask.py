"""``docvision ask SOURCE QUESTION``: one question about an image or the chosen pages of a document."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from docvision.cli import common

QUANT_HELP = "auto (4-bit NF4 on CUDA, bf16 on CPU), 4bit, 8bit or none (bf16)."


def ask(
    source: str = typer.Argument(..., help="A file (image, PDF, office, HTML) or URL."),
    question: str = typer.Argument(..., help="The question to answer."),
    model: Optional[str] = typer.Option(None, "--model", "-m",
                                        help="Model alias, hub id or local folder (default: DOCVISION_MODEL or 'default')."),
    hd: int = common.HD_OPTION,
    max_new_tokens: int = typer.Option(512, "--max-new-tokens", min=1, help="Most tokens the answer may have."),
    quant: str = typer.Option("auto", "--quant", help=QUANT_HELP),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
    pages: Optional[str] = typer.Option(None, "--pages", help="Pages to show the model, e.g. 2 or 1-3 (default: the first)."),
    password: Optional[str] = common.PASSWORD_OPTION,
    json_out: bool = common.JSON_OPTION,
    max_image_pixels: int = common.MAX_PIXELS_OPTION,
    debug: bool = common.DEBUG_OPTION,
) -> int:
    """Answer QUESTION about SOURCE with a local vision-language model, greedy and streamed."""
    from docvision import families, models
    from docvision.backends.transformers import DEVICES, QUANTS
    from docvision.cli.batchrun import human_emitter
    from docvision.document import IngestOptions
    from docvision.errors import UsageError
    from docvision.sources import expand
    from docvision.tasks.ask import ask as ask_task

    if quant not in QUANTS:
        raise UsageError(f"--quant must be one of {', '.join(QUANTS)}, not {quant!r}")
    if device not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}, not {device!r}")
    if not question.strip():
        raise UsageError("the question is empty")
    resolved = models.resolve(model)  # config only: the family's tile size plans the pages
    tile = families.detect(resolved.config).tile
    loaded: list = []

    def loader():
        if not loaded:
            from docvision.backends.transformers import TransformersBackend

            loaded.append(TransformersBackend(model=str(resolved.path), device=device, quant=quant,
                                              model_id=resolved.model_id, revision=resolved.revision))
        return loaded[0]

    stream = sys.stdout.isatty() and not json_out
    streamed = [False]

    def on_text(text: str) -> None:
        streamed[0] = True
        sys.stdout.write(text)
        sys.stdout.flush()

    options = IngestOptions(pages=pages, password=password, max_image_pixels=max_image_pixels)
    emit = common.json_emitter() if json_out else human_emitter(lambda: streamed[0])

    def work(src: str) -> dict:
        streamed[0] = False
        body = ask_task(src, question, loader, tile, options, hd=hd, max_new_tokens=max_new_tokens,
                        on_text=on_text if stream else None)
        if streamed[0]:
            sys.stdout.write("\n")
        return body

    try:
        return common.run_sources(expand([source]), "ask", work, emit, debug)
    finally:
        for backend in loaded:
            backend.close()
