"""Hub kernels are off unless asked for: no load path (transformers backend, IXC2-4KHD, the 4-bit cache, the
bitsandbytes import) lets transformers or bitsandbytes reach the ``kernels`` package's hub loaders.

transformers 5.x kernelizes every model it loads unless told not to; on CUDA that downloads layers from the
hub (and fails offline). The load runs here on CPU, where kernelizing finds nothing to fetch, so the test
watches the gate instead: the ``kernels`` functions every hub kernel passes through, wrapped in a fresh
process before transformers or bitsandbytes import them. The same script with the setting on must see the
gate used, or the watch proves nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from docvision.config import resolve

# Runs in a fresh process: wraps the kernels package's entry points, then loads each (folder, quant,
# hub_kernels) through the settings object the CLI builds, and prints what reached the gate per load.
SCRIPT = r"""
import json, sys
import kernels

seen = []
def watch(name, real):
    def wrapper(*args, **kwargs):
        seen.append(name)
        return real(*args, **kwargs)
    return wrapper
for name in ("get_kernel", "load_kernel", "install_kernel", "get_locked_kernel", "kernelize"):
    setattr(kernels, name, watch(name, getattr(kernels, name)))

from docvision.models import LocalSettings, load_backend
report = []
for folder, quant, hub in json.loads(sys.argv[1]):
    seen.clear()
    backend = load_backend(LocalSettings(model=folder, device="cpu", quant=quant, hub_kernels=hub))
    report.append({"folder": folder, "quant": quant, "hub": hub, "from_cache": backend.from_cache,
                   "calls": list(seen), "use_kernels": bool(backend.model.use_kernels)})
    backend.close()
print("REPORT " + json.dumps(report))
"""


def run_loads(loads: list[tuple[str, str, bool]], cache) -> list[dict]:
    env = {**os.environ, "DOCVISION_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(loads)], capture_output=True, text=True,
                          env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])


def test_the_setting_is_off_by_default_and_reaches_the_backend_settings(monkeypatch):
    assert resolve({}).backend_settings().hub_kernels is False
    assert resolve({"hub_kernels": True}).backend_settings().hub_kernels is True
    monkeypatch.setenv("DOCVISION_HUB_KERNELS", "1")
    assert resolve({}).backend_settings().hub_kernels is True


@pytest.mark.model
def test_no_load_path_reaches_the_hub_kernel_gate_unless_asked(tiny_model_dir, tmp_path_factory):
    from tests.tinyixc import build_tiny_ixc

    qwen = str(tiny_model_dir("qwen3_vl"))
    ixc = str(build_tiny_ixc(tmp_path_factory.mktemp("ixc-kernels")))
    loads = [(qwen, "none", False), (qwen, "4bit", False), (qwen, "4bit", False),
             (ixc, "none", False), (ixc, "4bit", False), (ixc, "4bit", False),
             (qwen, "none", True), (ixc, "none", True)]
    report = run_loads(loads, tmp_path_factory.mktemp("kernels-cache"))
    off, on = report[:6], report[6:]
    # Both 4-bit paths ran: quantizing on load, then the pre-quantized cache.
    assert [r["from_cache"] for r in off] == [False, False, True, False, False, True]
    assert all(r["calls"] == [] and not r["use_kernels"] for r in off), off
    # The control: asked for, every load goes through the gate (on CUDA this is where the hub is asked).
    assert all("kernelize" in r["calls"] and r["use_kernels"] for r in on), on


def test_while_bitsandbytes_is_imported_the_hub_loaders_refuse():
    """bitsandbytes' CPU backend asks the hub for a kernel at import on AVX512-BF16 machines; the guard
    makes that request fail at once (bitsandbytes then keeps its own kernel), and leaves kernels as it was."""
    import kernels

    import docvision.models.placement as placement

    real = kernels.get_kernel
    with placement._kernels_refused():
        with pytest.raises(RuntimeError, match="hub kernels are off"):
            kernels.get_kernel("kernels-community/quantization-bitsandbytes", version=1)
    assert kernels.get_kernel is real
