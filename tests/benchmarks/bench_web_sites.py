"""Check: real documentation pages found on this machine, rendered as local files, and what their guard
refused (stylesheets, fonts, images and scripts of their site among them), by this tree's code and,
with ``--against``, by another tree's (main) in the same run.

    python3 tests/benchmarks/bench_web_sites.py [--against /work/main] [PAGE.html...] [--list FILE]
                                                [--sphinx-build PATH]

Without pages it finds its own 25 (``found_pages``): a tiny crate's rustdoc (built here with
``cargo doc``), a small Sphinx project (built with ``--sphinx-build``, e.g. from a virtualenv of its
own), and documentation installed on the machine: the Rust toolchain's (rustdoc and mdBook), npm's,
Node's, valgrind's, GraphicsMagick's and libxslt's. Those that are missing are left out and named.
Each page is loaded alone (``ingest.load``, as ``docvision render PAGE`` does: no folder walk), the
batch announced first so the run's one Chromium captures ahead. Prints per page the files refused
(the sum of "refused N files" in its warnings) and whether it had any warning, then totals (network
requests refused counted apart: a local page gets none), and the warnings that remain. Counts, not
times: what a page may load does not depend on the machine's load (the capture seconds are printed as
a by-product).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CRATE = """//! A tiny crate whose documentation docvision renders.
/// Geometry helpers.
pub mod geometry {
    /// Shapes of the plane.
    pub mod shapes {
        /// A point.
        pub struct Point { /// x
            pub x: f64, /// y
            pub y: f64 }
        impl Point { /// Distance to the origin.
            pub fn norm(&self) -> f64 { (self.x * self.x + self.y * self.y).sqrt() } }
        /// Kinds of shape.
        pub enum Kind { /// round
            Circle, /// four corners
            Square }
        /// Something with an area.
        pub trait Area { /// The area.
            fn area(&self) -> f64; }
    }
}
/// Adds two numbers.
pub fn add(a: u64, b: u64) -> u64 { a + b }
"""
CRATE_PAGES = ("index.html", "fn.add.html", "geometry/shapes/struct.Point.html", "geometry/shapes/enum.Kind.html",
               "geometry/shapes/trait.Area.html")
SPHINX_PAGES = ("index", "guide/install", "api/shapes/point", "api/shapes/kind")
RUST_PAGES = ("std/env/fn.var.html", "std/fs/fn.read.html", "std/env/index.html", "alloc/string/trait.ToString.html",
              "book/ch01-01-installation.html", "cargo/commands/cargo-new.html", "cargo/guide/index.html",
              "reference/expressions/loop-expr.html", "rust-by-example/hello/print.html")
INSTALLED = ("/usr/lib/node_modules/npm/docs/output/commands/npm-install.html",
             "/usr/lib/node_modules/npm/docs/output/configuring-npm/folders.html",
             "/usr/lib/node_modules/npm/docs/output/using-npm/scripts.html", "/usr/share/doc/nodejs/api/path.html",
             "/usr/share/doc/valgrind/html/quick-start.html", "/usr/share/doc/graphicsmagick/www/FAQ.html",
             "/usr/share/doc/libxslt1-dev/html/API.html")
REFUSED = re.compile(r"^refused (\d+) files?\b")
NETWORK = re.compile(r"^refused (\d+) network requests?\b")


def measure(pages: list[str]) -> list[dict]:
    """Capture each page with the code on sys.path; one dict per page: refused files, warnings, seconds."""
    from docvision import ingest
    from docvision.document import IngestOptions
    from docvision.errors import DocvisionError
    from docvision.ingest.tools import Tools

    options = IngestOptions(timeout=30, device_scale_factor=1)
    out = []
    with Tools(options) as tools:
        tools.expect(pages)
        for page in pages:
            started = time.perf_counter()
            try:
                with ingest.load(page, options, tools) as document:
                    warnings = list(document.warnings)
            except DocvisionError as exc:
                warnings = [f"failed: {exc}"]
            refused = sum(int(m.group(1)) for w in warnings if (m := REFUSED.match(w)))
            network = sum(int(m.group(1)) for w in warnings if (m := NETWORK.match(w)))
            out.append({"page": page, "refused": refused, "network": network, "warnings": warnings,
                        "seconds": round(time.perf_counter() - started, 2)})
    return out


def found_pages(work: Path, sphinx_build: str | None) -> list[str]:
    """The default pages: built here where a tool can, found where installed; missing ones named."""
    pages = []
    crate = work / "tinycrate"
    (crate / "src").mkdir(parents=True, exist_ok=True)
    (crate / "Cargo.toml").write_text('[package]\nname = "tinycrate"\nversion = "0.1.0"\nedition = "2021"\n')
    (crate / "src" / "lib.rs").write_text(CRATE)
    if _ran(["cargo", "doc", "--offline", "-q"], crate):
        pages += [str(crate / "target/doc/tinycrate" / page) for page in CRATE_PAGES]
    if sphinx_build and _sphinx(work / "sphinx", sphinx_build):
        pages += [str(work / "sphinx/build" / f"{page}.html") for page in SPHINX_PAGES]
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True, check=False).stdout
    pages += [str(Path(sysroot.strip()) / "share/doc/rust/html" / page) for page in RUST_PAGES if sysroot.strip()]
    pages += list(INSTALLED)
    missing = [page for page in pages if not Path(page).is_file()]
    if missing:
        print(f"left out (not on this machine): {', '.join(missing)}")
    return [page for page in pages if Path(page).is_file()]


def _sphinx(folder: Path, sphinx_build: str) -> bool:
    """A small Sphinx project with pages in sub-folders, built with the default theme."""
    for name in SPHINX_PAGES[1:]:
        (folder / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        title = name.rsplit("/", 1)[-1]
        (folder / "src" / f"{name}.rst").write_text(
            f"{title}\n{'=' * len(title)}\n\nSome text about **{title}**.\n\n.. code-block:: python\n\n"
            f"   p = shapes.Point(3, 4)\n\n.. note::\n\n   A note about {title}.\n")
    (folder / "src" / "conf.py").write_text('project = "Shapes"\nhtml_theme = "alabaster"\n')
    (folder / "src" / "index.rst").write_text("Shapes\n======\n\n.. toctree::\n\n" + "".join(
        f"   {name}\n" for name in SPHINX_PAGES[1:]))
    return _ran([sphinx_build, "-q", "-b", "html", "src", "build"], folder)


def _ran(command: list[str], cwd: Path) -> bool:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, check=False).returncode == 0
    except OSError:
        return False


def run_tree(tree: str, pages: list[str]) -> list[dict]:
    """``measure`` in a fresh interpreter with ``tree`` first on the path."""
    env = {**os.environ, "PYTHONPATH": tree}
    code = "import json, sys; from bench_web_sites import measure; print(json.dumps(measure(sys.argv[1:])))"
    proc = subprocess.run([sys.executable, "-c", code, *pages], capture_output=True, text=True, env=env,
                          cwd=str(Path(__file__).parent), check=False)
    if proc.returncode != 0:
        sys.exit(f"the run with {tree} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _short(page: str, width: int = 70) -> str:
    return page if len(page) <= width else "..." + page[-(width - 3):]


def report(runs: dict[str, list[dict]]) -> None:
    names = list(runs)
    print("files refused per page (ok: no warning at all)")
    print(f"{'page':72}" + "".join(f"{n:>24}" for n in names))
    for rows in zip(*runs.values()):
        print(f"{_short(rows[0]['page']):72}" + "".join(
            f"{row['refused']}{'' if row['warnings'] else ' ok'}".rjust(24) for row in rows))
    for name, rows in runs.items():
        warned = sum(1 for r in rows if r["warnings"])
        print(f"{name}: {sum(r['refused'] for r in rows)} files and {sum(r['network'] for r in rows)} network "
              f"requests refused; {warned} of {len(rows)} pages with a warning; "
              f"{sum(r['seconds'] for r in rows):.1f} s of capture")
    last = runs[names[-1]]
    left = [(r["page"], w) for r in last for w in r["warnings"]]
    if left:
        print(f"\nwarnings left with {names[-1]}:")
        for page, warning in left:
            print(f"  {_short(page, 60)}: {warning[:400]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*")
    parser.add_argument("--list", help="a file naming one page per line")
    parser.add_argument("--against", help="another source tree (e.g. /work/main) measured first")
    parser.add_argument("--sphinx-build", help="the sphinx-build to make the Sphinx pages with")
    args = parser.parse_args()
    pages = [str(Path(p).resolve()) for p in args.pages]
    if args.list:
        pages += [line.strip() for line in Path(args.list).read_text().splitlines() if line.strip()]
    work = Path(tempfile.mkdtemp(prefix="bench-web-sites-"))
    if not pages:
        pages = found_pages(work, args.sphinx_build)
    here = str(Path(__file__).resolve().parents[2])
    runs = {}
    if args.against:
        runs[f"before ({Path(args.against).name})"] = run_tree(args.against, pages)
    runs["after (this tree)"] = run_tree(here, pages)
    report(runs)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
