"""Benchmark: OCR engines on our own scans, and what OCR does for page routing over a scanned PDF.

Scans are made in code (tests/scans.py): report pages printed at 200 dpi, tinted, rotated up to 1.2
degrees, blurred, grained, dusted and JPEG-compressed, placed in a PDF with no text layer; and a
photographed poster. Each engine reads the same images (a PDF page as docvision draws it for OCR,
ocr.ocr_size: 2550x3300 for US Letter) and is scored against the words that were drawn:

  recall      printed words read back with the same text and a box of IoU >= 0.5
  text        printed words read back with the same text, wherever the box
  precision   words read that are printed words (same text, IoU >= 0.5)
  ms/page     median wall time per page, one page at a time, OMP_THREAD_LIMIT=1

Engines: docvision's own (the tesseract CLI, psm 3 and psm 11), pytesseract (the same tesseract through
its wrapper, PNG hand-over), tesserocr (tesseract's C++ API in process, loaded once) and RapidOCR
(rapidocr-onnxruntime, PP-OCRv4 ONNX models shipped in its wheel, word boxes on). An engine whose
package is not installed is reported as such: `pip install --target DIR tesserocr rapidocr-onnxruntime`
and PYTHONPATH=DIR puts them beside the product without installing them into it.

Then routing: one question per page of a 20-page scanned PDF (each page states one fact no other page
does), routed by docvision.tasks.routing.route over the pages' anchors without OCR (--ocr never) and
with it (--ocr auto). Prints the hit rate: the answer's page in the first model call, and ranked first.

Run: python3 tests/benchmarks/bench_ocr.py [--pages 6] [--routing-pages 20] [--engines ours,pytesseract,...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # in-process engines too (tesserocr, onnxruntime threads)

from docvision.document import IngestOptions  # noqa: E402
from docvision.ingest import ocr, pdf  # noqa: E402
from tests import scans  # noqa: E402

TESSDATA = "/usr/share/tesseract-ocr/5/tessdata"


def ours(psm: int):
    def run(image):
        return [(w.text, w.box) for w in ocr.read(image, psm=psm).words]
    return run


def pytesseract_engine():
    import pytesseract

    def run(image):
        data = pytesseract.image_to_data(image, lang="eng", config="--psm 3", output_type=pytesseract.Output.DICT,
                                         timeout=120)
        return [(t.strip(), (x, y, x + w, y + h)) for t, x, y, w, h, c in
                zip(data["text"], data["left"], data["top"], data["width"], data["height"], data["conf"])
                if t.strip() and float(c) >= ocr.MIN_CONFIDENCE]
    return run


def tesserocr_engine():
    import tesserocr

    api = tesserocr.PyTessBaseAPI(path=TESSDATA, lang="eng", psm=tesserocr.PSM.AUTO)

    def run(image):
        api.SetImage(image.convert("L"))
        api.Recognize()
        found = []
        iterator = api.GetIterator()
        level = tesserocr.RIL.WORD
        for word in tesserocr.iterate_level(iterator, level):
            text = word.GetUTF8Text(level)
            box = word.BoundingBox(level)
            if text and text.strip() and box and word.Confidence(level) >= ocr.MIN_CONFIDENCE:
                found.append((text.strip(), tuple(float(v) for v in box)))
        return found
    return run


def rapidocr_engine():
    from rapidocr_onnxruntime import RapidOCR
    import numpy as np

    engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)

    def run(image):
        result, _elapse = engine(np.asarray(image.convert("RGB"))[:, :, ::-1], return_word_box=True)
        found = []
        for _line_box, _text, _score, boxes, pieces, _confs in result or []:
            # Its PP-OCRv4 (Chinese + Latin) recogniser gives a box per character here: join them into
            # words at the spaces it read.
            word, corners = "", []
            for points, piece in [*zip(boxes, pieces), (None, " ")]:
                if piece.strip():
                    word += piece
                    corners.extend(points)
                elif word:
                    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
                    found.append((word, (min(xs), min(ys), max(xs), max(ys))))
                    word, corners = "", []
        return found
    return run


ENGINES = {
    "ours-psm3": lambda: ours(3),
    "ours-psm11": lambda: ours(11),
    "pytesseract": pytesseract_engine,
    "tesserocr": tesserocr_engine,
    "rapidocr": rapidocr_engine,
}


def score(truth: list, found: list) -> dict:
    hits = scans.matched(truth, found)
    texts = {scans.clean(t) for t, _ in found}
    return {"recall": len(hits) / len(truth), "text": sum(scans.clean(t) in texts for t, _ in truth) / len(truth),
            "precision": len(hits) / len(found) if found else 0.0}


def samples(count: int) -> list[tuple[str, object, list]]:
    """(name, image at OCR size, printed words in that image's pixels) for report pages and a poster."""
    out = []
    for index in range(count):
        _topic, line, _q = scans.routing_fact(index)
        scan = scans.report_page(1000 + index, None, line)
        size = ocr.ocr_size((2550, 3300))  # as the PDF ingestor sizes a Letter page at 300 dpi
        fx, fy = size[0] / scan.image.width, size[1] / scan.image.height
        truth = [(t, (b[0] * fx, b[1] * fy, b[2] * fx, b[3] * fy)) for t, b in scan.words]
        out.append((f"page{index + 1}", scan.image.resize(size), truth))
    poster = scans.poster()
    out.append(("poster", poster.image, poster.words))
    return out


def compare(names: list[str], pages: int) -> None:
    data = samples(pages)
    print(f"engines on {pages} scanned report pages (2550x3300) + 1 photographed poster (1400x1900):")
    print(f"  {'engine':12} {'ms/page':>8} {'poster ms':>9} {'recall':>7} {'text':>6} {'precision':>9}")
    for name in names:
        try:
            engine = ENGINES[name]()
        except ImportError as exc:
            print(f"  {name:12} not installed ({exc.name})")
            continue
        times, scores = [], []
        poster_ms = 0.0
        for label, image, truth in data:
            started = time.perf_counter()
            found = engine(image)
            spent = (time.perf_counter() - started) * 1000
            if label == "poster":
                poster_ms = spent
            else:
                times.append(spent)
            scores.append(score(truth, found))
        mean = {k: statistics.mean(s[k] for s in scores) for k in scores[0]}
        print(f"  {name:12} {statistics.median(times):8.0f} {poster_ms:9.0f} {mean['recall']:7.1%} "
              f"{mean['text']:6.1%} {mean['precision']:9.1%}")


def routing_hits(path: Path, pages: int, mode: str) -> tuple[int, int, float]:
    """(answer page in the first call, answer page ranked first, seconds) over one question per page."""
    from docvision.tasks import routing
    from docvision.tasks.pages import survey

    started = time.perf_counter()
    with ocr.with_ocr(pdf.load(str(path), IngestOptions()), mode) as document:
        surveyed = survey(document)
        for page in surveyed:
            len(page.words)  # read now, while the PDF is open
    seconds = time.perf_counter() - started
    first_call = ranked_first = 0
    for index in range(pages):
        _topic, _line, question = scans.routing_fact(index)
        route = routing.route(question, surveyed)
        first_call += (index + 1) in [p.number for p in route.chunks[0]]
        best = max(route.scores, key=lambda n: (route.scores[n], -n)) if route.scores else None
        ranked_first += best == index + 1 and route.reason == "matched"
    return first_call, ranked_first, seconds


def compare_routing(pages: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scanned.pdf"
        scans.scanned_pdf(path, pages)
        print(f"routing {pages} questions over a {pages}-page scanned PDF (one answer page each):")
        for mode in ("never", "auto"):
            first, top, seconds = routing_hits(path, pages, mode)
            print(f"  --ocr {mode:6} answer in first call {first}/{pages} ({first / pages:.0%}), "
                  f"ranked first {top}/{pages} ({top / pages:.0%}); survey {seconds:.1f} s "
                  f"({seconds / pages * 1000:.0f} ms/page)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=6, help="report pages per engine")
    parser.add_argument("--routing-pages", type=int, default=20)
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    compare([e for e in args.engines.split(",") if e], args.pages)
    if args.routing_pages:
        compare_routing(args.routing_pages)


if __name__ == "__main__":
    main()
