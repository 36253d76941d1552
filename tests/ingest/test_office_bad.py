"""Bad office files and broken converters through the CLI: one line, exit 1, no traceback, no hang."""

from __future__ import annotations

import os
import zipfile

import pytest

from tests.helpers import assert_one_error_line, run_cli
from tests.ingest.test_office import build_workbook

pytestmark = pytest.mark.office


def _fail(path, *fragments, env=None, args=()):
    proc = run_cli("render", path, *args, env=env, timeout=120)
    assert proc.returncode == 1, proc
    return assert_one_error_line(proc, *fragments)


def test_random_bytes_named_xlsx(tmp_path):
    source = tmp_path / "noise.xlsx"
    source.write_bytes(os.urandom(4000))
    _fail(source, "not a valid Excel workbook")


def test_garbage_in_an_ole_container_named_xls(tmp_path):
    import olefile

    from tests.ingest.test_office_formats import convert
    from tests.helpers import require_tool

    book = tmp_path / "book.xlsx"
    build_workbook(book, tall_rows=5)
    source = convert(require_tool("soffice", "libreoffice"), book, "xls")
    with olefile.OleFileIO(str(source), write_mode=True) as ole:  # a real container, random workbook bytes
        ole.write_stream("Workbook", os.urandom(ole.get_size("Workbook")))
    _fail(source, "not a valid Excel 97-2003 workbook", "not Excel data")


def test_empty_zip_named_docx(tmp_path):
    source = tmp_path / "nothing.docx"
    with zipfile.ZipFile(source, "w"):
        pass
    _fail(source, "not a valid Word document", "empty zip archive")


def test_truncated_zip_named_xlsx(tmp_path):
    whole = tmp_path / "whole.xlsx"
    build_workbook(whole, tall_rows=5)
    source = tmp_path / "cut.xlsx"
    source.write_bytes(whole.read_bytes()[:3000])
    _fail(source, "damaged")


def test_password_protected_workbook(tmp_path):
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = build_workbook(tmp_path / "plain.xlsx", tall_rows=5)
    source = tmp_path / "locked.xlsx"
    with open(plain, "rb") as fh, open(source, "wb") as out:
        OOXMLFile(fh).encrypt("secret", out)
    _fail(source, "password-protected", "remove the password")


def test_password_protected_opendocument(tmp_path):
    source = tmp_path / "locked.ods"
    with zipfile.ZipFile(source, "w") as archive:  # the layout LibreOffice writes for an encrypted file
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", os.urandom(2000))
        archive.writestr("META-INF/manifest.xml", '<manifest:manifest><manifest:file-entry manifest:full-path='
                         '"content.xml"><manifest:encryption-data/></manifest:file-entry></manifest:manifest>')
    _fail(source, "password-protected")


def test_zip_bomb_is_refused_before_unpacking(tmp_path):
    source = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            for _ in range(64):
                member.write(b"\0" * (1 << 20))
    assert source.stat().st_size < 200_000
    _fail(source, "zip bomb")


def test_empty_workbook(tmp_path):
    from openpyxl import Workbook

    Workbook().save(tmp_path / "empty.xlsx")
    _fail(tmp_path / "empty.xlsx", "no cells")


def running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has ended: only its exit status waits for its new parent)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _fake_soffice(tmp_path, body: str):
    fake = tmp_path / "soffice"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    return {"DOCVISION_SOFFICE": str(fake)}


@pytest.mark.parametrize("uno", ["", "none"])
def test_hung_converter_is_killed(tmp_path, uno):
    env = _fake_soffice(tmp_path, f"echo $$ > {tmp_path / 'pid'}\nsleep 300")
    source = build_workbook(tmp_path / "book.xlsx", tall_rows=5)
    expected = "did not start in 2 s" if uno == "" else "did not finish converting in 2 s"
    _fail(source, expected, env={**env, "DOCVISION_UNO_PYTHON": uno}, args=("--timeout", "2"))
    assert not running(int((tmp_path / "pid").read_text())), "the converter's process group is still running"


def test_converter_that_exits_at_once(tmp_path):
    source = tmp_path / "letter.rtf"
    source.write_text(r"{\rtf1\ansi hello\par}")
    _fail(source, "LibreOffice exited (status 0) as soon as it was started", env=_fake_soffice(tmp_path, "exit 0"))


def test_per_call_converter_that_exits_0_without_output(tmp_path):
    source = tmp_path / "letter.rtf"
    source.write_text(r"{\rtf1\ansi hello\par}")  # LibreOffice exits 0 when it cannot convert a file
    _fail(source, "could not convert", env={**_fake_soffice(tmp_path, "exit 0"), "DOCVISION_UNO_PYTHON": "none"})


def test_missing_libreoffice_for_a_document(tmp_path):
    source = tmp_path / "letter.rtf"
    source.write_text(r"{\rtf1\ansi hello\par}")
    _fail(source, "LibreOffice", "install", env={"DOCVISION_SOFFICE": str(tmp_path / "none")})


@pytest.mark.browser
def test_without_libreoffice_cells_fall_back_to_an_html_table(tmp_path):
    import json

    from tests.helpers import json_lines, require_tool

    require_tool("chromium", "chromium-browser", "google-chrome")
    source = build_workbook(tmp_path / "book.xlsx", tall_rows=5)
    proc = run_cli("render", source, "--json", "--out", tmp_path / "views",
                   env={"DOCVISION_SOFFICE": str(tmp_path / "no-such-soffice")})
    assert proc.returncode == 0, proc.stderr
    [record] = json_lines(proc.stdout)
    assert [p["label"] for p in record["pages"]] == ["Sales", "Notes", "Tall"]
    assert record["pages"][0]["plan"]["source_size"][0] < 1200  # cut to the table, not the whole window
    assert any("charts" in w and "not shown" in w for w in record["warnings"]), record["warnings"]
    anchors = json.loads(open(record["pages"][0]["files"]["anchors"]).read())
    assert {"$1,234,567.89", "-3.4%"} <= {a["text"] for a in anchors}
