"""Expanding what the user typed into sources: folders, globs, stdin, URLs, duplicates."""

import io

from docvision.errors import SourceNotFound, UnsupportedSource
from docvision.sources import expand


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_lists_supported_files_sorted(tmp_path):
    _touch(tmp_path / "b.pdf")
    _touch(tmp_path / "a.png")
    _touch(tmp_path / "setup.exe")  # a kind docvision does not read
    _touch(tmp_path / ".hidden.pdf")
    _touch(tmp_path / "sub" / "c.pdf")
    got = [e.source for e in expand([str(tmp_path)])]
    assert got == [str(tmp_path / "a.png"), str(tmp_path / "b.pdf")]


def test_recursive_folder_includes_subfolders(tmp_path):
    _touch(tmp_path / "sub" / "c.pdf")
    got = [e.source for e in expand([str(tmp_path)], recursive=True)]
    assert got == [str(tmp_path / "sub" / "c.pdf")]


def test_a_file_found_by_a_walk_names_the_folder_walked(tmp_path):
    # A local web page's site is the folder the user named (docs/web.md).
    page = _touch(tmp_path / "site" / "api" / "page.html")
    walked, named = expand([str(tmp_path / "site"), str(_touch(tmp_path / "alone.html"))], recursive=True)
    assert (walked.source, walked.folder) == (str(page), str(tmp_path / "site"))
    assert named.folder is None


def test_folder_without_supported_files_is_an_error_entry(tmp_path):
    _touch(tmp_path / "setup.exe")  # a kind docvision does not read
    (entry,) = expand([str(tmp_path)])
    assert isinstance(entry.error, UnsupportedSource) and "--recursive" not in entry.error.message
    _touch(tmp_path / "sub" / "a.pdf")
    (entry,) = expand([str(tmp_path)])
    assert "--recursive" in entry.error.message  # only when sub-folders were left out


def test_folders_left_out_without_recursive_are_reported(tmp_path):
    _touch(tmp_path / "a.pdf")
    _touch(tmp_path / "one" / "b.pdf")
    _touch(tmp_path / "two" / "c.pdf")
    said = []
    assert [e.source for e in expand([str(tmp_path)], say=said.append)] == [str(tmp_path / "a.pdf")]
    assert said == [f"{tmp_path}: left out 2 sub-folders (add --recursive to read them)"]


def test_natural_order_and_symlink_loops(tmp_path):
    for name in ("r10.pdf", "r2.pdf", "r1.pdf"):
        _touch(tmp_path / name)
    assert [e.source for e in expand([str(tmp_path)])] == [str(tmp_path / n) for n in ("r1.pdf", "r2.pdf", "r10.pdf")]
    (tmp_path / "sub").symlink_to(tmp_path)  # sub -> .
    got = [e.source for e in expand([str(tmp_path / "**" / "*.pdf")], recursive=True)]
    assert got == [str(tmp_path / n) for n in ("r1.pdf", "r2.pdf", "r10.pdf")]
    assert len(expand([str(tmp_path)], recursive=True)) == 3


def test_dash_on_a_terminal_says_to_pipe_paths_in():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    import pytest

    from docvision.errors import UsageError

    with pytest.raises(UsageError, match="pipe them in"):
        expand(["-"], stdin=Terminal())


def test_glob_and_no_match(tmp_path):
    _touch(tmp_path / "r1.pdf")
    _touch(tmp_path / "r2.pdf")
    got = expand([str(tmp_path / "r*.pdf"), str(tmp_path / "zz*.pdf")])
    assert [e.source for e in got[:2]] == [str(tmp_path / "r1.pdf"), str(tmp_path / "r2.pdf")]
    assert isinstance(got[2].error, SourceNotFound)


def test_stdin_urls_and_duplicates(tmp_path):
    pdf = _touch(tmp_path / "a.pdf")
    stdin = io.StringIO(f"{pdf}\n\nhttps://example.org/x\n{pdf}\n")
    got = [e.source for e in expand(["-", str(pdf)], stdin=stdin)]
    assert got == [str(pdf), "https://example.org/x"]


def test_an_empty_argument_is_an_error_not_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4")
    (entry,) = expand([""])
    assert entry.source == "" and "empty source name" in str(entry.error)


def test_recursive_leaves_out_hidden_folders(tmp_path):
    _touch(tmp_path / ".git" / "x.pdf")
    _touch(tmp_path / "sub" / ".cache" / "y.png")
    _touch(tmp_path / "sub" / "z.pdf")
    got = [e.source for e in expand([str(tmp_path)], recursive=True)]
    assert got == [str(tmp_path / "sub" / "z.pdf")]


def test_stdin_keeps_spaces_inside_names(tmp_path):
    pdf = _touch(tmp_path / " spaced .pdf")
    got = [e.source for e in expand(["-"], stdin=io.StringIO(f"{pdf}\r\n   \n"))]
    assert got == [str(pdf)]
