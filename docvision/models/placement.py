"""Where and how a local model runs: the device, the quantization, the dtype, torch's threads, and whether
code from the Hugging Face hub may replace the model's own layers.

In: the --device, --quant, --dtype and --hub-kernels values. Out: what they resolve to on this machine, or a
UsageError / ModelError line; the keywords every model load passes on. torch is imported only when CUDA may exist (an NVIDIA driver is present) or a model is
about to load, so `docvision models` stays fast on a machine without a GPU.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from docvision.errors import ModelError, UsageError

DEVICES = ("auto", "cpu", "cuda")
QUANTS = ("auto", "4bit", "8bit", "none")
DTYPES = ("auto", "bfloat16", "float16", "float32")


def choose_device(device: str = "auto") -> str:
    """"cuda" or "cpu" for a --device value; raise when CUDA is asked for and absent."""
    if device not in DEVICES:
        raise UsageError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    if device == "cpu":
        return device
    has_cuda = False
    if driver_present():
        import torch

        has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ModelError("--device cuda was asked for but no CUDA GPU is available here: use --device cpu")
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    return device


def driver_present() -> bool:
    """False when this Linux machine has no NVIDIA driver at all: then there is no CUDA, and torch (seconds
    to import) need not be asked, which keeps `docvision models` fast. Elsewhere torch decides."""
    if not sys.platform.startswith("linux"):
        return True
    return Path("/proc/driver/nvidia").exists() or any(Path("/dev").glob("nvidia[0-9]*"))


def choose_quant(quant: str, device: str) -> str:
    """"4bit", "8bit" or "none" for a --quant value: auto is 4-bit on CUDA and none (bf16) on CPU."""
    if quant not in QUANTS:
        raise UsageError(f"unknown quantization {quant!r}: choose one of {', '.join(QUANTS)}")
    if quant == "auto":
        return "4bit" if device == "cuda" else "none"
    return quant


def choose_dtype(dtype: str, quant: str) -> str:
    """The torch dtype name for weights and compute: auto is bfloat16; a quantized model computes in bf16."""
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    if quant != "none":
        if dtype not in ("auto", "bfloat16"):
            raise UsageError(f"--dtype {dtype} is for unquantized models: add --quant none")
        return "bfloat16"
    return "bfloat16" if dtype == "auto" else dtype


def fit_threads() -> None:
    """Hold torch's thread count to OMP_THREAD_LIMIT. torch sizes its CPU kernels for
    ``torch.get_num_threads()`` workers; when OpenMP then grants fewer (the limit), part of the output is
    never written: every bf16 matmul came out with NaN or garbage here (torch 2.14; docs/architecture.md,
    "Threads")."""
    import torch

    try:
        limit = int(os.environ.get("OMP_THREAD_LIMIT", "0"))
    except ValueError:
        return
    if 0 < limit < torch.get_num_threads():
        torch.set_num_threads(limit)


def load_keywords(hub_kernels: bool = False) -> dict:
    """The ``from_pretrained`` keywords every local load passes: no code from the checkpoint, and hub kernels
    only when asked for. transformers 5.x otherwise swaps layers (activations, norms, rotary) for kernels it
    downloads from the hub on every CUDA load, which fails offline ("... not available in the local cache
    and Hugging Face Hub is in offline mode") and runs code the user did not choose (docs/gpu.md)."""
    return {"trust_remote_code": False, "use_kernels": bool(hub_kernels)}


def import_bitsandbytes(hub_kernels: bool = False):
    """``bitsandbytes``, imported fast and, unless hub kernels are allowed, without asking the hub for anything.

    Fast: at import it wraps a few fallback ops in ``torch.compile``, and making a compiled function imports
    torch's compiler stack -- 4.3 s of every 4-bit load on the lent H200, more than reading the weights
    (docs/gpu.md) -- for ops a model on CUDA never calls. While it imports, ``torch.compile`` hands back a
    function that compiles on its first call: the same compiled op, made only where it is used.
    Hub: on a CPU with AVX512-BF16 its CPU backend fetches a 4-bit matmul from kernels-community/quantization-
    bitsandbytes at import time; a refusal makes it use its own kernel (the same numbers, slower).
    """
    if "bitsandbytes" not in sys.modules:
        with _compile_on_first_call(), (contextlib.nullcontext() if hub_kernels else _kernels_refused()):
            import bitsandbytes  # noqa: F401
    return sys.modules["bitsandbytes"]


@contextlib.contextmanager
def _compile_on_first_call():
    """While inside, ``torch.compile(fn, **options)`` returns a function that compiles ``fn`` when first called."""
    import functools

    import torch

    real = torch.compile

    def deferred(model=None, **options):
        if model is None:  # used as @torch.compile(...)
            return lambda fn: deferred(fn, **options)
        compiled = None

        @functools.wraps(model)
        def call(*args, **kwargs):
            nonlocal compiled
            if compiled is None:
                compiled = real(model, **options)
            return compiled(*args, **kwargs)

        return call

    torch.compile = deferred
    try:
        yield
    finally:
        torch.compile = real


@contextlib.contextmanager
def _kernels_refused():
    """While inside, the ``kernels`` package's hub loaders raise instead of downloading."""
    try:
        import kernels
    except ImportError:  # no kernels package: nothing can reach the hub through it
        yield
        return

    def refuse(*_args, **_kwargs):
        raise RuntimeError("hub kernels are off (docvision --hub-kernels turns them on)")

    names = [name for name in ("get_kernel", "load_kernel", "install_kernel") if hasattr(kernels, name)]
    saved = {name: getattr(kernels, name) for name in names}
    for name in names:
        setattr(kernels, name, refuse)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(kernels, name, value)
