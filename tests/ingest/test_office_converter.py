"""The warm converter's life: one LibreOffice for many files, started again when it dies, killed when it
hangs, and nothing of it left after ``close()`` from any thread; the per-call path without UNO.

Real LibreOffice throughout. A hang is made by stopping soffice.bin (SIGSTOP) in the middle of a
conversion, a crash by killing it; our processes are found by our private profile's folder in their
command lines.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from docvision import ingest
from docvision.document import IngestOptions
from docvision.errors import DocvisionError, ExternalTimeout
from docvision.ingest.office import warm
from docvision.ingest.tools import Tools
from tests.helpers import require_tool

pytestmark = pytest.mark.office


@pytest.fixture(scope="module", autouse=True)
def soffice() -> str:
    return require_tool("soffice", "libreoffice")


def workbook(folder: Path, name: str, rows: int = 3) -> str:
    """A workbook of ``rows`` rows whose first cell says which one it is."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.active["A1"] = f"book {name}"
    for i in range(2, rows + 1):
        wb.active.append([f"row {i}", i * 1.5])
    wb.save(folder / f"{name}.xlsx")
    return str(folder / f"{name}.xlsx")


def ours(tools: Tools) -> dict[int, str]:
    """pid -> command line of every live process that runs on this run's converter's profiles."""
    if not hasattr(tools, "profiles"):
        tools.profiles = str(tools.converter()._root)  # noted before close(), which drops the converter
    return _running_on(tools.profiles)


def none_of_ours(tools: Tools) -> bool:
    """True once no process of ours runs; a SIGKILLed one may take a moment to end."""
    deadline = time.monotonic() + 5
    while ours(tools) and time.monotonic() < deadline:
        time.sleep(0.1)
    return ours(tools) == {}


def _running_on(root: str) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie is dead; only its exit status is left to collect
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if root in command:
            found[int(entry.name)] = command
    return found


@pytest.fixture
def pipes(monkeypatch):
    """A function giving the sockets in /tmp of the LibreOffices this test started that still exist: one
    that outlives its LibreOffice is litter. Only ours: other programs on a busy machine make and leave
    OSL_PIPE_ files of their own (a killed ``soffice --convert-to`` cannot remove its pipe)."""
    made: list[Path] = []
    real = warm.pipe_files

    def recorded(pipe: str, profile: Path) -> list[Path]:
        files = real(pipe, profile)
        made.extend(files)
        return files

    monkeypatch.setattr(warm, "pipe_files", recorded)
    return lambda: {path.name for path in made if path.exists()}


def office_pid(tools: Tools, timeout: float = 60) -> int:
    """The pid of this converter's soffice.bin, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [pid for pid, command in ours(tools).items() if "soffice.bin" in command]
        if pids:
            return pids[0]
        time.sleep(0.1)
    raise AssertionError("no soffice.bin of ours")


def text(source: str, tools: Tools, options: IngestOptions | None = None) -> list[str]:
    with ingest.load(source, options or IngestOptions(), tools) as document:
        return [p.text for p in document.pages()]


def test_one_libreoffice_converts_file_after_file_and_starts_when_the_batch_is_announced(tmp_path, pipes):
    books = [workbook(tmp_path, str(n)) for n in range(3)]
    with Tools(IngestOptions()) as tools:
        tools.expect(books)
        office_pid(tools)  # up before any file asked for it
        for n, book in enumerate(books):
            assert text(book, tools)[0].startswith(f"book {n}")
        assert tools.converter().starts == 1
        assert len(pipes()) == 2  # its two sockets while it runs: the names the litter check looks for
    assert none_of_ours(tools) and not pipes()


def test_the_next_announced_file_is_converted_while_the_run_draws_this_one(tmp_path):
    books = [workbook(tmp_path, name) for name in ("a", "b", "c", "d")]
    with Tools(IngestOptions()) as tools:
        tools.expect(books)
        assert text(books[0], tools)[0].startswith("book a")
        ahead = tools.converter()._ahead
        deadline = time.monotonic() + 30
        while not ahead.pdf.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ahead.pdf.exists()  # b's PDF, written before the run asked for b
        assert text(books[1], tools)[0].startswith("book b")
        # The run skips c (say, its pages came from the render cache): c's answer is dropped, d converts.
        assert text(books[3], tools)[0].startswith("book d")
        assert tools.converter().starts == 1


@pytest.mark.parametrize("announced", [False, True], ids=["one by one", "read ahead"])
def test_killed_libreoffice_is_started_again_and_the_next_file_converts(tmp_path, announced):
    first, second = workbook(tmp_path, "first"), workbook(tmp_path, "second", rows=3000)
    with Tools(IngestOptions()) as tools:
        if announced:
            tools.expect([first, second])
        assert text(first, tools)[0].startswith("book first")
        os.kill(office_pid(tools), signal.SIGKILL)  # with the batch announced, while it reads ahead
        assert text(second, tools)[0].startswith("book second")
        assert tools.converter().starts == 2
    assert none_of_ours(tools)


def test_killed_in_the_middle_of_a_file_that_file_is_converted_again(tmp_path):
    book = workbook(tmp_path, "middle")
    with Tools(IngestOptions()) as tools:
        text(workbook(tmp_path, "warm"), tools)
        pid = office_pid(tools)
        os.kill(pid, signal.SIGSTOP)  # the file's request waits inside LibreOffice...
        result = {}
        worker = threading.Thread(target=lambda: result.update(text=text(book, tools)))
        worker.start()
        time.sleep(1.0)
        os.kill(pid, signal.SIGKILL)  # ...which dies under it
        worker.join(120)
        assert not worker.is_alive() and result["text"][0].startswith("book middle")
        assert tools.converter().starts == 2
    assert none_of_ours(tools)


def test_a_hung_libreoffice_is_killed_after_the_timeout_and_the_next_file_converts(tmp_path):
    options = IngestOptions(timeout=3)
    with Tools(options) as tools:
        text(workbook(tmp_path, "warm"), tools, options)
        hung = office_pid(tools)
        os.kill(hung, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ExternalTimeout, match="did not finish converting in 3 s"):
            text(workbook(tmp_path, "stuck"), tools, options)
        assert time.monotonic() - started < 120  # a hang guard: the message names the 3 s
        assert none_of_ours(tools)  # the hung one was killed, and nothing started yet
        assert text(workbook(tmp_path, "after"), tools, options)[0].startswith("book after")
    assert none_of_ours(tools)


def test_close_from_another_thread_during_a_hang_leaves_no_process(tmp_path, pipes):
    tools = Tools(IngestOptions())
    text(workbook(tmp_path, "warm"), tools)
    os.kill(office_pid(tools), signal.SIGSTOP)
    errors = []

    def convert():
        try:
            text(workbook(tmp_path, "stuck"), tools)
        except DocvisionError as exc:
            errors.append(exc)

    worker = threading.Thread(target=convert)
    worker.start()
    time.sleep(1.0)
    assert ours(tools)
    closer = threading.Thread(target=tools.close)  # as a signal handler's thread would
    closer.start()
    closer.join(30)
    worker.join(30)
    assert not closer.is_alive() and not worker.is_alive()
    assert len(errors) == 1 and "stopped" in str(errors[0])
    assert none_of_ours(tools) and not pipes()
    tools.close()  # twice is fine


def test_close_before_libreoffice_is_up_leaves_no_process(tmp_path, pipes):
    tools = Tools(IngestOptions())
    tools.expect([workbook(tmp_path, "never")])  # starts LibreOffice in the background
    ours(tools)
    time.sleep(2)  # far enough for LibreOffice to have made its pipes
    tools.close()
    assert none_of_ours(tools) and not pipes()


def test_without_uno_files_convert_per_call_with_one_warning(tmp_path, monkeypatch):
    from openpyxl import Workbook

    monkeypatch.setenv(warm.ENV_PYTHON, "none")
    books = []
    for n in range(3):
        wb = Workbook()
        wb.active["A1"] = f"book {n}"
        wb.active["B1"] = 123456789.25
        wb.active["B1"].number_format = '"$"#,##0.00'  # too wide for a default column: ###
        wb.save(tmp_path / f"b{n}.xlsx")
        books.append(str(tmp_path / f"b{n}.xlsx"))
    with Tools(IngestOptions()) as tools:
        tools.expect(books)
        warnings = []
        for book in books:
            with ingest.load(book, IngestOptions(), tools) as document:
                list(document.pages())
                warnings.append(document.warnings)
        assert tools.converter().starts == 1  # the three in one soffice run
    assert "cannot be driven through UNO" in warnings[0][0] and "python3-uno" in warnings[0][0]
    assert not any("UNO" in w for w in warnings[1] + warnings[2])
    assert "Sheet: 1 cell drawn as ### (too narrow for the number)" in warnings[1]
    assert document.metadata["converter"] == "LibreOffice"
