"""The model registry and model resolution: a name on the command line in, a local model folder out.

In: a model reference -- an alias (``default``, ``small``, ...), a Hugging Face hub id, or a local
folder -- from ``--model`` or DOCVISION_MODEL. Out: a ResolvedModel (id, folder, revision, config).
Weights come from a local folder or the Hugging Face cache (HF_HOME is honoured). A hub id that is not
cached is downloaded only when the hub answers within a couple of seconds and HF_HUB_OFFLINE is unset;
otherwise one line says what is missing and how to fix it. Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from docvision.errors import ModelError

# Chosen for document accuracy (DocVQA/ChartQA/OCRBench), size and a permissive licence; all natively
# supported by transformers (no trust_remote_code).
ALIASES: dict[str, tuple[str, str]] = {
    "default": ("Qwen/Qwen3-VL-4B-Instruct", "Apache-2.0; strong on documents, charts and OCR for its size"),
    "small": ("Qwen/Qwen3-VL-2B-Instruct", "Apache-2.0; the same family at 2B for small machines"),
    "large": ("Qwen/Qwen3-VL-8B-Instruct", "Apache-2.0; more accurate, needs a GPU with ~8 GB at 4-bit"),
    "internvl": ("OpenGVLab/InternVL3-2B-hf", "MIT; InternVL3 in transformers' native format, 448 px tiles"),
    "smolvlm": ("HuggingFaceTB/SmolVLM2-2.2B-Instruct", "Apache-2.0; Idefics3-style image splitting, CPU-friendly"),
    # Run by docvision's own implementation (docvision.models.ixc), not by transformers' classes.
    "ixc-4khd": ("internlm/internlm-xcomposer2-4khd-7b",
                 "InternLM-XComposer2-4KHD, the model HD-N comes from; weights for research use, commercial use "
                 "after application (not Apache); 16 GB in bf16, 6.4 GB in 4-bit NF4 (a 12 GB GPU)"),
}
ENV_MODEL = "DOCVISION_MODEL"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
REACH_TIMEOUT_S = 2.0
_DOWNLOAD_PATTERNS = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken"]


@dataclass
class ResolvedModel:
    """A model found on disk: what the user asked for, its id, folder, revision and config."""

    reference: str
    model_id: str
    path: Path
    revision: str
    config: dict = field(default_factory=dict)


def default_reference() -> str:
    """The model to use when --model is not given: DOCVISION_MODEL, else the ``default`` alias."""
    return os.environ.get(ENV_MODEL) or "default"


def hub_id(reference: str) -> str | None:
    """The hub id an alias or id names, or None when ``reference`` is neither."""
    if reference in ALIASES:
        return ALIASES[reference][0]
    return reference if _HUB_ID.match(reference) else None


def check_reference(reference: str | None) -> None:
    """Raise UsageError when ``reference`` can name no model at all: not an alias, not shaped like a hub
    id, and not an existing folder. Whether a hub id is cached is the backend's question, at load."""
    from docvision.errors import UsageError

    reference = (reference or default_reference()).strip()
    if Path(reference).expanduser().exists() or hub_id(reference) is not None:
        return
    if reference.startswith((".", "/", "~")) or os.sep in reference:
        raise UsageError(f"model folder {reference} does not exist")
    raise UsageError(f"unknown model {reference!r}: use an alias ({', '.join(ALIASES)}), "
                     f"a hub id such as {ALIASES['default'][0]}, or a model folder")


def _fix_hint(model_id: str) -> str:
    return (f"run `hf download {model_id}` on a connected machine (and copy its HF_HOME here), "
            f"or pass a local folder with --model PATH")


def resolve(reference: str | None = None, download: bool = True) -> ResolvedModel:
    """Find the folder of ``reference``: a local folder, or a hub id in the Hugging Face cache."""
    reference = (reference or default_reference()).strip()
    local = Path(reference).expanduser()
    if local.exists():
        return _local(reference, local)
    model_id = hub_id(reference)
    if model_id is None:
        if reference.startswith((".", "/", "~")) or os.sep in reference:
            raise ModelError(f"model folder {reference} does not exist")
        raise ModelError(f"unknown model {reference!r}: use an alias ({', '.join(ALIASES)}), "
                         f"a hub id such as {ALIASES['default'][0]}, or a model folder")
    path = cached_snapshot(model_id)
    if path is None:
        path = _download(model_id) if download else None
        if path is None:
            raise ModelError(f"model {model_id} is not in the Hugging Face cache; {_fix_hint(model_id)}")
    found = _local(reference, path)
    found.model_id = model_id
    found.revision = path.name
    return found


def _local(reference: str, folder: Path) -> ResolvedModel:
    """Check ``folder`` holds an image-text-to-text model natively supported by transformers."""
    if not folder.is_dir():
        raise ModelError(f"{reference} is a file, not a model folder: pass the folder holding config.json")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{reference} is not a model folder: it has no config.json")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{config_file} cannot be read: {exc}") from None
    check_image_text_to_text(config, reference)
    return ResolvedModel(reference, reference, folder.resolve(), folder_revision(folder), config)


def check_image_text_to_text(config: dict, reference: str) -> None:
    """Raise unless the config's model_type has a native image-text-to-text class in transformers."""
    import docvision.models.families as families
    from docvision.models.ixc import is_ixc

    model_type = config.get("model_type")
    if model_type in families.KNOWN_TYPES or is_ixc(config):
        return  # the families we adapt are all image-text-to-text; skip importing transformers (and torch)
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        what = f"a {model_type!r} model" if model_type else "a model without a model_type"
        raise ModelError(f"{reference} is {what}, not an image-text-to-text model that transformers "
                         f"supports natively: choose a vision-language model (see `docvision models`)")


def folder_revision(folder: Path) -> str:
    """A short fingerprint of a local model folder: config and weight file names, sizes and times."""
    digest = hashlib.sha256()
    for item in sorted(Path(folder).iterdir()):
        if item.is_file():
            stat = item.stat()
            digest.update(f"{item.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def cached_snapshot(model_id: str) -> Path | None:
    """The cached snapshot folder of ``model_id`` (with config.json), or None; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(model_id, "config.json")
    except Exception:  # noqa: BLE001 - a malformed cache is the same as no cache here
        return None
    return Path(found).parent if isinstance(found, str) else None


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether the hub endpoint accepts a TCP connection within ``timeout`` seconds."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def _download(model_id: str) -> Path | None:
    """Download ``model_id`` when the hub is reachable; raise one line when it is not."""
    if offline():
        raise ModelError(f"model {model_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
                         f"{_fix_hint(model_id)}")
    if not hub_reachable():
        raise ModelError(f"model {model_id} is not in the Hugging Face cache and the hub "
                         f"({os.environ.get('HF_ENDPOINT') or 'huggingface.co'}) cannot be reached; "
                         f"{_fix_hint(model_id)}")
    from huggingface_hub import snapshot_download

    try:
        # Weights, configs, tokenizer and template only: no duplicate .bin/.gguf/onnx copies. The metadata
        # requests get 10 s each (passed here: the process's environment is the user's, not ours to change).
        return Path(snapshot_download(model_id, allow_patterns=_download_patterns(model_id), etag_timeout=10))
    except Exception as exc:  # noqa: BLE001 - hub errors come in many classes; one line for all
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"could not download {model_id}: {first}; {_fix_hint(model_id)}") from None


def _download_patterns(model_id: str) -> list[str]:
    """The files to fetch: .bin shards too when the repo has no safetensors (checkpoints of the
    transformers 4.3x era, InternLM-XComposer2's among them, may have only those)."""
    try:
        from huggingface_hub import list_repo_files

        files = list_repo_files(model_id)
    except Exception:  # noqa: BLE001 - the download itself will report what is wrong
        return list(_DOWNLOAD_PATTERNS)
    if any(name.endswith(".safetensors") for name in files):
        return list(_DOWNLOAD_PATTERNS)
    return [*_DOWNLOAD_PATTERNS, "pytorch_model*.bin"]


def size_on_disk(folder: Path) -> int:
    """Bytes of the files in ``folder`` (following the cache's symlinks to blobs)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def listing() -> list[dict]:
    """Every alias with its hub id, note, and whether (and how big) it is in the local cache."""
    rows = []
    for alias, (model_id, note) in ALIASES.items():
        path = cached_snapshot(model_id)
        rows.append({"alias": alias, "id": model_id, "note": note, "cached": path is not None,
                     "path": str(path) if path else None, "size_bytes": size_on_disk(path) if path else 0})
    return rows
