"""The published chat format of IXC2-4KHD: pages and a question in, text pieces and stop tokens out.

    [UNUSED_TOKEN_146]system\\n{meta}[UNUSED_TOKEN_145]\\n
    [UNUSED_TOKEN_146]user\\n<ImageHere>{question}[UNUSED_TOKEN_145]\\n
    [UNUSED_TOKEN_146]assistant\\n

The image embeddings are spliced in at ``<ImageHere>``; the text between images is tokenised piece by piece,
each piece with a BOS and no prefix space (what the reference's ``interleav_wrap_chat`` does). Every
model-card example puts the image first in the user turn; with several pages, each page is its label then
its image. The answer ends at ``[UNUSED_TOKEN_145]`` (or eos): those are ordinary SentencePiece pieces, not
special tokens, so decoding does not strip them and the answer is cut there.

The tokenizer is the checkpoint's own ``tokenizer.model`` read by transformers' LlamaTokenizer (no remote
code) with add_prefix_space=False and legacy=False; with the defaults it adds a leading space and, on
some paths, no BOS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

IMAGE = "<ImageHere>"
BEGIN = "[UNUSED_TOKEN_146]"
END = "[UNUSED_TOKEN_145]"
# The reference chat()'s default meta instruction.
META_INSTRUCTION = (
    "You are an AI assistant whose name is InternLM-XComposer (浦语·灵笔).\n"
    "- InternLM-XComposer (浦语·灵笔) is a multi-modality conversational language model that is developed by "
    "Shanghai AI Laboratory (上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n"
    "- InternLM-XComposer (浦语·灵笔) can understand and communicate fluently in the language chosen by the "
    "user such as English and 中文.\n"
    "- InternLM-XComposer (浦语·灵笔) is capable of comprehending and articulating responses effectively based "
    "on the provided image."
)


def _plain(text: str) -> str:
    """User text cannot open an image slot of its own."""
    return text.replace(IMAGE, "<Image Here>")


def query(labels: Sequence[str], question: str) -> str:
    """The user turn's content: the image first (one page), or each page's label then its image."""
    if len(labels) == 1:
        return IMAGE + _plain(question)
    pages = "".join(f"{_plain(label)}: {IMAGE}\n" for label in labels)
    return pages + _plain(question)


def conversation(user: str, system: str | None = None) -> str:
    """The whole prompt text; ``system`` None is the default meta instruction, "" is none at all."""
    meta = META_INSTRUCTION if system is None else system
    text = f"{BEGIN}system\n{meta}{END}\n" if meta else ""
    return text + f"{BEGIN}user\n{user}{END}\n{BEGIN}assistant\n"


def pieces(labels: Sequence[str], question: str, system: str | None = None) -> list[str]:
    """The text pieces around the images: len(labels) + 1 of them, image i between pieces i and i+1."""
    return conversation(query(labels, question) if labels else _plain(question), system).split(IMAGE)


def load_tokenizer(folder: Path):
    """The checkpoint's SentencePiece tokenizer, set up to encode as the reference does."""
    from transformers import LlamaTokenizer

    return LlamaTokenizer.from_pretrained(folder, add_prefix_space=False, legacy=False, add_bos_token=True,
                                          add_eos_token=False)


def encode(tokenizer, piece: str) -> list[int]:
    """One text piece as token ids: BOS, then the piece (an empty piece is no tokens)."""
    return tokenizer(piece, add_special_tokens=True)["input_ids"] if piece else []


def stop_ids(tokenizer) -> list[int]:
    """Token ids that end the answer: eos and the end-of-turn piece."""
    end = tokenizer.convert_tokens_to_ids(END)
    return [i for i in dict.fromkeys([tokenizer.eos_token_id, end]) if i is not None]


def cut(text: str) -> str:
    """The answer: the decoded text up to the end-of-turn piece, stripped."""
    return text.split(END)[0].strip()


__all__ = ["BEGIN", "END", "IMAGE", "META_INSTRUCTION", "conversation", "cut", "encode", "load_tokenizer",
           "pieces", "query", "stop_ids"]
