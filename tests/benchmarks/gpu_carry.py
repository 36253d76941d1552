"""Prepare what a lent GPU machine needs to run bench_gpu.py in one call: docvision's source and the wheels.

Run: python3 tests/benchmarks/gpu_carry.py TARGET   (a folder inside the checkout the device tool sends,
     ignored by git, e.g. .gpu; then name it in the call's ``carry`` and run the command this prints)

The machine's Python is 3.12 with torch 2.11 (cu130) and transformers 5.17, too old for docvision; nothing
can be downloaded there. So TARGET/whl gets the Python 3.12 wheels of what docvision needs beyond that image,
at the versions installed here, and TARGET/src docvision plus the benchmark and the test model builders.
bitsandbytes ships a native library per CUDA version (41 MB in all): its wheel is rewritten with only the
CPU library and the one for torch's CUDA, so that everything stays well under the call's 64 MiB.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the machine's image lacks or holds too old (pymupdf and playwright are not needed to benchmark models).
WHEELS = ("transformers", "huggingface_hub", "httpx2", "httpcore2", "truststore", "click", "kernels", "tomlkit",
          "bitsandbytes", "platformdirs", "rank-bm25")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
SOURCES = ("docvision", "tests/__init__.py", "tests/tinymodels.py", "tests/tinyixc.py", "tests/benchmarks/__init__.py",
           "tests/benchmarks/bench_gpu.py", "tests/benchmarks/gpu_setup.py")
MACHINE_CUDA = "130"  # torch 2.11.0+cu130 on the machine
LIMIT = 64 * 2**20


def download(target: Path) -> None:
    """The wheels of WHEELS at this environment's versions, for CPython 3.12 on x86-64 Linux."""
    target.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={version(name)}" for name in WHEELS]
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(target), *pins],
                   check=True)


def slim_bitsandbytes(folder: Path) -> None:
    """Rewrite the bitsandbytes wheel without the native libraries of other CUDA and ROCm versions."""
    for wheel in folder.glob("bitsandbytes-*.whl"):
        keep = ("libbitsandbytes_cpu.so", f"libbitsandbytes_cuda{MACHINE_CUDA}.so")
        slim = wheel.with_suffix(".slim")
        with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as out:
            records = []
            for item in source.infolist():
                name = item.filename
                if name.endswith(".so") and Path(name).name not in keep:
                    continue
                if name.endswith(".dist-info/RECORD"):
                    record_name = name
                    continue
                data = source.read(item)
                out.writestr(item, data)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                records.append(f"{name},sha256={digest},{len(data)}")
            records.append(f"{record_name},,")
            out.writestr(record_name, "\n".join(records) + "\n")
        slim.replace(wheel)


def copy_sources(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    for name in SOURCES:
        source, dest = ROOT / name, target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, dest)


def size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    target = Path(sys.argv[1]).resolve()
    wheels = target / "whl"
    if not list(wheels.glob("transformers-*.whl")):
        download(wheels)
        slim_bitsandbytes(wheels)
    copy_sources(target / "src")
    total = size(target)
    print(f"{target}: {total / 2**20:.1f} MiB ({size(wheels) / 2**20:.1f} MiB of wheels)")
    if total > LIMIT:
        raise SystemExit("over the 64 MiB a call may carry: leave something out")
    rel = target.name
    print("command:\n"
          f"set -o pipefail; python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "
          f"/tmp/site {rel}/whl/*.whl || exit 1; export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 "
          f"DOCVISION_CACHE_DIR=/tmp/dv-cache; nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv; "
          f"python3 {rel}/src/tests/benchmarks/bench_gpu.py --work /tmp --json $OUT/gpu.json 2>&1 | tee $OUT/log")


if __name__ == "__main__":
    main()
