"""Rebuild the corpus of real files from public test suites that corpus_report.py classifies.

In: tests/benchmarks/corpus.tsv (repository, commit, path per line). Out: each file under
FOLDER/<owner>+<name>/<path>, fetched from raw.githubusercontent.com at its commit, or taken from a
local folder of git mirrors (``--mirror DIR`` holding ``<owner>+<name>/repo``, a bare repository or a
checkout, as the session tools leave them). Files already there with the right bytes are kept.

Run: python3 tests/benchmarks/corpus_build.py [FOLDER] [--mirror DIR]
(FOLDER defaults to tests/benchmarks/corpus/, which .gitignore keeps out of the repository.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIST = HERE / "corpus.tsv"
RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def entries(listing: Path = LIST) -> list[tuple[str, str, str]]:
    """(repository, commit, path) of every corpus file, in the listed order."""
    rows = []
    for line in listing.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            repo, commit, path = line.split("\t")
            rows.append((repo, commit, path))
    return rows


def local_name(folder: Path, repo: str, path: str) -> Path:
    """Where a corpus file lives on disk."""
    return folder / repo.replace("/", "+") / path


def _git_dir(mirror: Path, repo: str) -> Path | None:
    base = mirror / repo.replace("/", "+")
    for candidate in (base / "repo" / ".git", base / "repo", base / ".git", base):
        if (candidate / "HEAD").is_file():
            return candidate
    return None


def _from_mirror(mirror: Path, repo: str, commit: str, path: str) -> bytes:
    git_dir = _git_dir(mirror, repo)
    if git_dir is None:
        raise FileNotFoundError(f"no mirror of {repo} under {mirror}")
    return subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "blob", f"{commit}:{path}"],
                          check=True, capture_output=True).stdout


def _from_github(repo: str, commit: str, path: str) -> bytes:
    from urllib.parse import quote

    with urllib.request.urlopen(RAW.format(repo=repo, commit=commit, path=quote(path)), timeout=60) as reply:
        return reply.read()


def build(folder: Path, mirror: Path | None) -> tuple[int, list[str]]:
    """Fetch every listed file not already in ``folder``; (files present, failures)."""
    present, failed = 0, []
    for repo, commit, path in entries():
        target = local_name(folder, repo, path)
        if target.is_file() and target.stat().st_size > 0:
            present += 1
            continue
        try:
            data = _from_mirror(mirror, repo, commit, path) if mirror else _from_github(repo, commit, path)
        except (OSError, subprocess.CalledProcessError) as exc:
            failed.append(f"{repo} {path}: {exc}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        present += 1
    return present, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=HERE / "corpus")
    parser.add_argument("--mirror", type=Path, help="folder of git mirrors (<owner>+<name>/repo) instead of GitHub")
    args = parser.parse_args()
    present, failed = build(args.folder, args.mirror)
    for line in failed:
        print(f"not fetched: {line}", file=sys.stderr)
    print(f"{present} of {len(entries())} files in {args.folder}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
