"""PDF pages read and drawn in worker processes: bombs bounded in time and memory, workers reused and
stopped, clips drawn, file names that are not UTF-8. Every PDF is made here; the workers are real."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pymupdf
import pytest

from docvision.document import IngestOptions
from docvision.errors import DamagedSource, ExternalTimeout
from docvision.ingest import pdf
from docvision.ingest.pdfpool import Pool
from docvision.ingest.pdfsession import Budget, PageFailed, Session
from docvision.ingest.tools import Tools
from tests.helpers import assert_one_error_line, json_lines, run_cli
from tests.ingest.test_pdf import make_pdf

RED = (255, 0, 0)


def bomb(doc: pymupdf.Document, number: int, depth: int = 28) -> None:
    """Make page ``number`` draw a chain of ``depth`` form XObjects, each drawing the next twice: 2^depth
    draws from a few KB (the issue's file: 28 levels, 6 KB, past 180 s and 4.7 GB in-process)."""
    xrefs = [doc.get_new_xref() for _ in range(depth)]
    for level, xref in enumerate(xrefs):
        if level == depth - 1:
            body, resources = b"0 0 1 rg 10 10 100 100 re f", "<<>>"
        else:
            body = b"q /X Do Q q 1 0 0 1 0.5 0.5 cm /X Do Q"
            resources = f"<</XObject <</X {xrefs[level + 1]} 0 R>>>>"
        doc.update_object(xref, f"<</Type/XObject/Subtype/Form/BBox[0 0 612 792]/Resources {resources}>>")
        doc.update_stream(xref, body)
    _replace_content(doc, number, b"q /X Do Q", f"<</XObject <</X {xrefs[0]} 0 R>>>>")


def slow_to_draw(doc: pymupdf.Document, number: int, layers: int = 500) -> None:
    """Make page ``number`` quick to read (a few hundred operators) but slow to draw: each layer blends
    a translucent fill over the whole page, so drawing costs layers x pixels."""
    state = doc.get_new_xref()
    doc.update_object(state, "<</Type/ExtGState/ca 0.02>>")
    body = b"/G gs " + b"".join(b"%.2f 0 0 rg 0 0 612 792 re f\n" % ((i % 100) / 100) for i in range(layers))
    _replace_content(doc, number, body, f"<</ExtGState <</G {state} 0 R>>>>")


def _replace_content(doc: pymupdf.Document, number: int, body: bytes, resources: str) -> None:
    content = doc.get_new_xref()
    doc.update_object(content, "<<>>")
    doc.update_stream(content, body)
    page = doc[number]
    doc.xref_set_key(page.xref, "Contents", f"{content} 0 R")
    doc.xref_set_key(page.xref, "Resources", resources)


def with_page(path: Path, pages: int, number: int, make) -> str:
    """A PDF of ``pages`` ordinary pages (make_pdf's: "Page N", a red box) whose page ``number`` (0-based)
    is replaced by ``make``'s."""
    whole = path.with_name("whole-" + path.name)
    make_pdf(whole, pages=pages)
    doc = pymupdf.open(whole)
    make(doc, number)
    doc.save(path, garbage=1, deflate=True)
    doc.close()
    return str(path)


def test_an_xobject_bomb_fails_its_page_in_bounded_time_and_the_others_render(tmp_path):
    path = with_page(tmp_path / "bomb.pdf", 3, 1, bomb)
    assert Path(path).stat().st_size < 12_000  # a few KB, as in the issue
    with Tools(IngestOptions(timeout=2)) as tools:
        with pdf.load(path, IngestOptions(timeout=2), tools) as doc:
            pages = []
            for page in doc.pages():
                pages.append((page.label, page.render(612, 792)))
        started = tools.pdf_workers().started
    assert [label for label, _ in pages] == ["page 1", "page 3"]
    assert all(image.getpixel((450, 650)) == RED for _, image in pages)  # drawn, not blanked
    assert doc.damaged == [2]
    [skipped] = [w for w in doc.warnings if w.startswith("page 2 ")]
    assert "cannot be read and was skipped" in skipped and "reading it took over 2 s, the limit --timeout sets" in skipped
    assert "\n" not in skipped
    assert started == 2  # the worker stuck on page 2 was stopped; a fresh one drew page 3


def test_a_pdf_whose_only_page_is_a_bomb_fails_with_the_reason(tmp_path):
    path = with_page(tmp_path / "bomb.pdf", 1, 0, bomb)
    with pdf.load(path, IngestOptions(timeout=1)) as doc:
        with pytest.raises(DamagedSource, match=r"no page could be read; page 1: reading it took over 1 s"):
            list(doc.pages())


@pytest.mark.slow  # the bomb takes seconds to grow to the limit
def test_a_page_over_its_memory_limit_fails_alone_and_the_worker_stays_under_it(tmp_path):
    path = with_page(tmp_path / "bomb.pdf", 3, 1, bomb)
    pool = Pool()
    budget = Budget(seconds=300, read_bytes=96 << 20)  # the bomb's display list grows until it hits this
    session = Session(path, None, budget, [0, 1, 2], pools=lambda: pool)
    try:
        assert session.read(0).words
        with pytest.raises(PageFailed, match="reading it needed over 96 MB of memory"):
            session.read(1)
        image, damage = session.draw(2, 612, 792)
        assert image.getpixel((450, 650)) == RED and damage == []
    finally:
        session.close()
        pool.close()
    # Python and PyMuPDF take ~60 MB of their own; the page could add 96 MB, no more.
    assert 0 < pool.peak_rss < (60 + 96 + 64) << 20
    assert pool.started == 2


def test_a_page_too_slow_to_draw_is_blank_and_named_and_the_next_page_draws(tmp_path):
    path = with_page(tmp_path / "slow.pdf", 2, 0, slow_to_draw)
    with pdf.load(path, IngestOptions(timeout=1)) as doc:
        pages = doc.pages()
        slow = next(pages)
        image = slow.render(1298, 1680)  # reading took milliseconds; drawing this large takes seconds
        assert image.size == (1298, 1680) and image.getextrema() == ((255, 255),) * 3
        assert slow.warnings and "cannot be drawn, left blank" in slow.warnings[0]
        assert "drawing it took over 1 s" in slow.warnings[0]
        fine = next(pages)
        assert fine.render(612, 792).getpixel((450, 650)) == RED and not fine.warnings
        assert list(pages) == []
    assert doc.damaged == [1]


def test_the_bomb_fails_its_source_with_one_line_and_the_other_sources_render(tmp_path):
    good, other = make_pdf(tmp_path / "good.pdf", pages=2), make_pdf(tmp_path / "other.pdf", pages=1)
    bad = with_page(tmp_path / "bomb.pdf", 3, 1, bomb)
    proc = run_cli("render", "--json", "--timeout", "2", good, bad, other, timeout=120)
    records = json_lines(proc.stdout)
    assert [r["status"] for r in records] == ["ok", "error", "ok"]
    assert records[1]["error"]["kind"] == "damaged" and "page 2" in records[1]["error"]["message"]
    assert [p["label"] for p in records[1]["pages"]] == ["page 1", "page 3"]
    assert proc.returncode == 1
    line = assert_one_error_line(proc, "bomb.pdf", "damaged page 2")
    assert "--allow-partial" in line


def test_workers_are_reused_across_documents_and_stopped_with_the_run(tmp_path):
    first, second = make_pdf(tmp_path / "a.pdf", pages=2), make_pdf(tmp_path / "b.pdf", pages=3)
    tools = Tools(IngestOptions())
    tools.expect([first, second])  # starts a worker ahead of the first PDF
    pool = tools.pdf_workers()
    for path in (first, second, first):
        with pdf.load(path, IngestOptions(), tools) as doc:
            assert [p.render(100, 130).size for p in doc.pages()]
    assert pool.started == 1
    [worker] = pool._idle
    tools.close()
    assert worker.process.returncode is not None  # stopped and reaped
    assert pool.closed and tools.pdf_workers() is None


def test_closing_the_run_wakes_a_page_waiting_on_its_worker(tmp_path):
    path = with_page(tmp_path / "bomb.pdf", 1, 0, bomb)
    tools = Tools(IngestOptions(timeout=600))
    doc = pdf.load(path, IngestOptions(timeout=600), tools)
    outcome: list = []

    def read() -> None:
        try:
            outcome.append(list(doc.pages()))
        except ExternalTimeout as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=1.5)  # the worker is deep in the bomb by now
    assert reader.is_alive()
    tools.close()  # what the run does on Ctrl-C and SIGTERM
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert isinstance(outcome[0], ExternalTimeout) and "stopping" in str(outcome[0])
    doc.close()


def _workers_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"pdfworker" in cmdline:
                found.append(int(entry.name))
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # an orphan waiting for init to reap it no longer runs


@pytest.mark.slow  # ~12 s each: the run waits up to 10 s for its render thread before closing its tools
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_the_run_and_its_worker_mid_page(tmp_path, signum, status):
    import subprocess
    import sys

    path = with_page(tmp_path / "bomb.pdf", 1, 0, bomb)
    proc = subprocess.Popen([sys.executable, "-m", "docvision", "render", "--json", "--timeout", "600", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: list[int] = []
    for _ in range(300):  # wait for the worker to be reading the bomb
        workers = _workers_of(proc.pid)
        if workers:
            break
        time.sleep(0.1)
    assert workers, "no PDF worker started"
    time.sleep(1.0)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    for _ in range(100):
        if all(_gone(pid) for pid in workers):
            break
        time.sleep(0.1)
    assert all(_gone(pid) for pid in workers)


def test_a_clip_is_drawn_at_the_exact_size_white_past_the_page(tmp_path):
    path = make_pdf(tmp_path / "a.pdf", pages=2)
    session = Session(path, None, Budget(60), [0, 1], pools=lambda: None)
    try:
        # points: the red box is 400..500 x 600..700 on a 612 x 792 page; this clip runs 100 pt past it
        image, _ = session.draw(1, 424, 240, clip=(400, 580, 712, 760))
    finally:
        session.close()
    assert image.size == (424, 240)
    sx, sy = 424 / 312, 240 / 180
    assert image.getpixel((round(50 * sx), round(70 * sy))) == RED  # (450, 650) on the page
    assert image.getpixel((round(160 * sx), round(70 * sy))) == (255, 255, 255)  # x = 560: page, blank
    assert image.getpixel((round(250 * sx), round(70 * sy))) == (255, 255, 255)  # x = 650: past the page


def test_a_page_can_be_drawn_without_being_read_first(tmp_path):
    path = make_pdf(tmp_path / "a.pdf", pages=3)
    session = Session(path, None, Budget(60), [2], pools=lambda: None)
    try:
        image, _ = session.draw(2, 612, 792)
        info = session.read(2)
    finally:
        session.close()
    assert image.getpixel((450, 650)) == RED
    assert [w[4] for w in info.words[:2]] == ["Page", "3"]


def _latin1_name(folder: Path, stem: bytes, suffix: bytes) -> str:
    """A path whose name holds the byte 0xE9 (Latin-1 "é"), as Python hands it over: with a surrogate."""
    return os.fsdecode(os.fsencode(folder) + b"/" + stem + b"\xe9" + suffix)


def test_a_pdf_whose_name_is_not_utf8_renders(tmp_path):
    source = _latin1_name(tmp_path, b"caf", b".pdf")
    with open(os.fsencode(source), "wb") as fh:
        fh.write(Path(make_pdf(tmp_path / "plain.pdf", pages=2)).read_bytes())
    with pdf.load(source, IngestOptions()) as doc:
        pages = list(doc.pages())
        assert [p.words[1].text for p in pages] == ["1", "2"]
        assert pages[1].render(612, 792).getpixel((450, 650)) == RED
    for extra in ([], ["--no-cache"]):
        proc = run_cli("render", "--json", *extra, source)
        [record] = json_lines(proc.stdout)
        assert proc.returncode == 0 and record["status"] == "ok", proc.stderr
        assert record["document"]["page_count"] == 2


def numbered(path: Path, sizes: list[tuple[int, int]]) -> str:
    """A page per size, each saying its number and showing a box whose colour tells the page: page N's
    is (10 N, 0, 0), so a page drawn in another's place shows."""
    doc = pymupdf.open()
    for number, size in enumerate(sizes, 1):
        page = doc.new_page(width=size[0], height=size[1])
        page.insert_text((40, 60), f"Page {number}", fontsize=20)
        page.draw_rect(pymupdf.Rect(100, 100, 200, 200), color=None, fill=(10 * number / 255, 0, 0))
    doc.save(path)
    return str(path)


def box(number: int) -> tuple[int, int, int]:
    return (10 * number, 0, 0)


def test_pages_drawn_ahead_of_their_turn_are_the_right_pages_at_the_right_sizes(tmp_path):
    # Each page is drawn at its own size: the worker guesses the next page's size from this one's, and
    # must neither hand a page drawn at a guessed size to a caller asking another nor mix up pages.
    pool = Pool()
    sizes = [(612, 792), (612, 792), (792, 612), (420, 595), (420, 595)]  # Letter, landscape, A5
    session = Session(numbered(tmp_path / "mixed.pdf", sizes), None, Budget(60), [0, 1, 2, 3, 4], pools=lambda: pool)
    try:
        seen = []
        for index in range(5):
            info = session.read(index)
            width, height = round(info.rect[2]), round(info.rect[3])
            image, _ = session.draw(index, width, height)
            assert image.size == (width, height) and image.getpixel((150, 150)) == box(index + 1)
            seen.append(info.words[1][4])
            if index == 1:  # the caller asks another size than the one guessed for page 3
                again, _ = session.draw(index, 306, 396)
                assert again.size == (306, 396) and again.getpixel((75, 75)) == box(2)
        assert seen == ["1", "2", "3", "4", "5"]
        smaller, _ = session.draw(3, 210, 298)  # a page drawn again after later ones
        assert smaller.size == (210, 298) and smaller.getpixel((75, 75)) == box(4)
    finally:
        session.close()
        pool.close()
    assert pool.started == 1


def test_pages_picked_here_and_there_are_drawn_right(tmp_path):
    # A routed question draws pages out of order (and reads them all first): nothing guessed may
    # stand in for them, and guesses for pages passed by must not hold the buffers.
    path = numbered(tmp_path / "a.pdf", [(612, 792)] * 8)
    session = Session(path, None, Budget(60), list(range(8)), pools=lambda: None)
    try:
        words = [session.read(index).words[1][4] for index in range(8)]
        for index in (1, 2, 3, 5, 6, 0, 7, 4, 5, 6):
            image, _ = session.draw(index, 612, 792)
            assert image.getpixel((150, 150)) == box(index + 1), index
            assert session.read(index).words[1][4] == str(index + 1)
    finally:
        session.close()
    assert words == [str(n) for n in range(1, 9)]


def test_a_document_closed_with_work_ahead_gives_its_worker_to_the_next(tmp_path):
    tools = Tools(IngestOptions())
    path = make_pdf(tmp_path / "a.pdf", pages=4)
    for _ in range(2):
        with pdf.load(path, IngestOptions(), tools) as doc:
            first = next(doc.pages())
            first.render(612, 792)  # the worker now reads and draws page 2 ahead; nobody asks for it
    assert tools.pdf_workers().started == 1
    tools.close()
