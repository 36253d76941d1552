"""``docvision chat SOURCE...``: questions about documents, one after another, the model loaded once.

On a terminal: a prompt with line editing and history (readline), answers streamed with their evidence,
``/pages 3-5``, ``/hd 55``, ``/reset``, ``/save FILE``, ``/help``; Ctrl-C stops an answer, Ctrl-D
leaves. Not on a terminal: one question (or command) per line on stdin, one JSON record per answer
on stdout, so a script can drive it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import docvision.cli.options as o
import docvision.cli.runner as runner
from docvision.cli.console import say_warning

HELP = ("/pages 3-5  hold the conversation to these pages (/pages all: every page)\n"
        "/hd N       the resolution budget for the next answers\n"
        "/reset      forget the conversation\n"
        "/save FILE  write the conversation so far as JSON Lines records\n"
        "/help       this list; Ctrl-C stops an answer, Ctrl-D leaves")


def chat(
    sources: o.Sources,
    hd: o.Hd = None,
    max_pages: o.MaxPages = None,
    max_new_tokens: o.MaxNewTokens = None,
    system: o.System = None,
    pages: o.Pages = None,
    password: o.Password = None,
    model: o.Model = None,
    backend: o.Backend = None,
    base_url: o.BaseUrl = None,
    quant: o.Quant = None,
    device: o.Device = None,
    dtype: o.Dtype = None,
    request_timeout: o.RequestTimeout = None,
    max_context: o.MaxContext = None,
    prefix_cache_mb: o.PrefixCacheMb = None,
    json_out: o.Json = False,
    output: o.Output = None,
    resume: o.Resume = False,
    no_timings: o.NoTimings = False,
    hub_kernels: o.HubKernels = False,
    no_cache: o.NoCache = False,
    recursive: o.Recursive = False,
    max_image_pixels: o.MaxImagePixels = None,
    timeout: o.Timeout = None,
    browser: o.Browser = None,
    viewport_width: o.ViewportWidth = None,
    scale: o.Scale = None,
    offline: o.Offline = False,
    local_pages_online: o.LocalPagesOnline = False,
    local_root: o.LocalRoot = None,
    ocr: o.Ocr = None,
    lang: o.Lang = None,
    config_file: o.Config = None,
    debug: o.Debug = False,
) -> int:
    """Talk about SOURCE...: each question routed to its pages and answered with the conversation so far.

    With --json, or when stdin or stdout is not a terminal, questions are read one per line and each answer
    is a JSON record on stdout. --output FILE appends every answer to FILE; --resume skips the questions
    FILE already answers (their answers still count as the conversation so far).

    \b
    Examples:
      docvision chat report.pdf
      printf 'who wrote it?\\nwhen?\\n' | docvision chat report.pdf > answers.jsonl
      docvision chat report.pdf --output talk.jsonl --resume < questions.txt
    """
    from docvision.cli.console import say_error, show_status

    given = dict(locals())
    kept = Kept(output, resume)  # a bad --output or --resume is a usage error before anything is loaded
    with kept, runner.open_session(given) as session, session.chat(
            sources, pages=pages, password=password, recursive=recursive, system=system,
            on_status=show_status) as talk:
        for source, error in talk.failed:
            say_error(f"{source}: {error.message}")
        if talk.conversation is None:
            return 1
        kept.start(talk, timings=not session.settings.no_timings)
        loop = _terminal if sys.stdin.isatty() and sys.stdout.isatty() and not json_out else _pipe
        failed = loop(talk, kept)
    return int(kept.status(failed))


class Kept:
    """A chat's answers appended to --output as every command's records are (run/sink.py: locked, whole
    lines, a torn last line cut); with --resume, the questions the file answers already."""

    def __init__(self, output: Path | None, resume: bool):
        from docvision.cli.console import say_warning
        from docvision.errors import UsageError
        from docvision.run.calls import output_path
        from docvision.run.sink import OutputFile

        if resume and output is None:
            raise UsageError("--resume needs --output FILE (the file whose answered questions are skipped)")
        path = output_path(output)
        self.file = OutputFile(path, say_warning) if path is not None else None
        self.resume, self.sink, self.answered, self.name, self.skipped = resume, None, {}, "", 0

    def start(self, talk, timings: bool) -> None:
        from docvision.run.sink import RecordSink, resume

        self.name = talk.name
        self.sink = RecordSink(None, self.file, timings=timings, say=say_warning)
        if self.resume:
            resume(self.file, "chat", say_warning, answers=self.answered)

    def earlier(self, talk, question: str) -> bool:
        """Whether --resume found ``question`` answered; its answer then joins the conversation so far."""
        from docvision.tasks.chat import Turn

        question = " ".join(question.split())
        answer = self.answered.get((self.name, question))
        if answer is None:
            return False
        talk.conversation.history.append(Turn(question, answer))
        if not self.skipped:
            say_warning(f"resuming: questions already answered in {self.file.path} are skipped")
        self.skipped += 1
        return True

    def keep(self, record: dict) -> dict:
        return self.sink.keep(record) if self.sink is not None else record

    def status(self, failed: bool):
        from docvision.run.status import exit_status

        lost = self.sink is not None and self.sink.output_lost is not None
        return exit_status(failed=failed, output_lost=lost)

    def __enter__(self) -> "Kept":
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()


def _command(chat, line: str, saved: list[dict]) -> str | None:
    """Run a /command; the line to show for it (None: not a command)."""
    from docvision.errors import UsageError

    talk = chat.conversation
    word, _, rest = line.partition(" ")
    rest = rest.strip()
    if word == "/help":
        return HELP
    if word == "/reset":
        talk.reset()
        return "the conversation is forgotten; the documents stay open"
    if word == "/pages":
        talk.set_pages(None if rest in ("", "all") else rest)
        return f"pages: {talk.pages or 'all'}"
    if word == "/hd":
        if not rest.isdigit():
            raise UsageError("/hd takes a number, e.g. /hd 55")
        talk.set_hd(int(rest))
        return f"HD-{talk.hd}"
    if word == "/save":
        if not rest:
            raise UsageError("/save needs a file name")
        import docvision.records as records

        Path(rest).write_text("".join(records.dumps(r) + "\n" for r in saved), encoding="utf-8")
        return f"{len(saved)} answer(s) written to {rest}"
    if word.startswith("/"):
        raise UsageError(f"unknown command {word} (/help lists them)")
    return None


def _pipe(talk, kept: Kept) -> bool:
    """One question or command per line of stdin; one JSON record per answer on stdout. Whether one failed."""
    import docvision.records as records
    from docvision.cli.console import guarded, say_error
    from docvision.errors import DocvisionError

    saved: list[dict] = []
    failed = False
    show = guarded(lambda record: records.write(record, sys.stdout))
    for raw in sys.stdin:
        line = raw.strip()
        if not line:
            continue
        try:
            shown = _command(talk, line, saved)
        except DocvisionError as exc:
            say_error(exc.message)
            continue
        if shown is not None:
            sys.stderr.write(shown + "\n")  # what a command did; stdout holds records only
            continue
        if kept.earlier(talk, line):
            continue
        record = kept.keep(talk.ask(line))
        if record["status"] != "ok":
            say_error(f"{line}: {record['error']['message']}")
        failed |= record["status"] != "ok"
        saved.append(record)
        show(record)
    return failed


def _terminal(talk, kept: Kept) -> bool:
    """The interactive loop: prompt, stream, evidence lines; Ctrl-C stops an answer, Ctrl-D leaves."""
    remember = _history()
    try:
        return _converse(talk, kept)
    finally:
        remember()


def _converse(talk, kept: Kept) -> bool:
    import docvision.cli.human as human
    from docvision.cli.console import clear_status, release_status, say_error
    from docvision.errors import DocvisionError

    saved: list[dict] = []
    names = ", ".join(Path(d.source).name or d.source for d in talk.documents)
    print(f"chat about {names} ({sum(d.page_count for d in talk.documents)} pages); /help for commands, "
          "Ctrl-D to leave")
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            print()
            return False
        except KeyboardInterrupt:  # at the prompt: a new line, as a shell does
            print()
            continue
        if not line:
            continue
        try:
            shown = _command(talk, line, saved)
            if shown is not None:
                print(shown)
                continue
            if kept.earlier(talk, line):
                print(kept.answered[(kept.name, " ".join(line.split()))])
                continue
            record = kept.keep(talk.ask(line, on_text=_stream))
        except KeyboardInterrupt:
            clear_status()
            print("\n(stopped)")
            continue
        except DocvisionError as exc:
            say_error(exc.message)
            continue
        finally:
            release_status()
        if record["status"] != "ok":
            say_error(record["error"]["message"])
            continue
        print()
        saved.append(record)
        human._print([(text, "dim") for text in human.detail_lines(record)])


def _stream(text: str) -> None:
    from docvision.cli.console import clear_status

    clear_status(hold=True)  # the answer takes the line until it is done
    sys.stdout.write(text)
    sys.stdout.flush()


def _history():
    """Line editing, and questions remembered across sessions (in the user state folder); returns the
    function that writes them back."""
    try:
        import readline

        from platformdirs import user_state_dir
    except ImportError:  # no readline on this platform: plain input still works
        return lambda: None
    path = Path(user_state_dir("docvision")) / "chat_history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            readline.read_history_file(path)
        readline.set_history_length(1000)
    except OSError:
        pass

    def remember() -> None:
        try:
            readline.write_history_file(path)
        except OSError:
            pass

    return remember
