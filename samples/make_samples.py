"""Regenerate the demo inputs of README.md: samples/report.pdf and samples/poster.png.

report.pdf: a 2-page quarterly report with a table of figures (page 1) and a bar chart drawn as
vectors with PyMuPDF (page 2). poster.png: a tall conference-style poster (800x4200) drawn with
Pillow. Both are deterministic; run `python3 samples/make_samples.py` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

REGIONS = [  # region, Q1, Q2, Q3, Q4 revenue in thousands of dollars
    ("North", 1204.5, 1311.0, 1398.2, 1467.9),
    ("South", 877.3, 902.6, 951.4, 1010.8),
    ("East", 1530.1, 1498.7, 1562.3, 1611.0),
    ("West", 640.9, 731.2, 845.5, 972.4),
    ("Online", 402.7, 498.3, 611.9, 788.6),
]


def make_report(path: Path) -> None:
    import pymupdf

    doc = pymupdf.open()
    _report_page_one(doc.new_page(width=612, height=792))
    _report_page_two(doc.new_page(width=612, height=792))
    doc.set_metadata({"title": "Northwind Instruments - Q4 report", "author": "docvision samples"})
    doc.save(str(path), garbage=4, deflate=True)
    doc.close()


def _report_page_one(page) -> None:
    import pymupdf

    page.insert_text((54, 70), "Northwind Instruments", fontsize=22, fontname="hebo")
    page.insert_text((54, 94), "Quarterly report, fiscal year 2025", fontsize=13, color=(0.3, 0.3, 0.3))
    page.draw_line((54, 106), (558, 106), color=(0.1, 0.3, 0.6), width=1.5)
    q1, q4 = sum(r[1] for r in REGIONS), sum(r[4] for r in REGIONS)
    summary = (
        f"Revenue reached ${q4:,.1f}k in Q4, up {(q4 / q1 - 1) * 100:.1f}% on Q1. The West region grew "
        "fastest among the\n"
        "physical regions (+51.7% from Q1 to Q4), while Online sales nearly doubled (+95.8%).\n"
        "East remains the largest region. Operating margin improved from 11.2% to 14.6%.\n"
        "Figures are in thousands of US dollars."
    )
    page.insert_textbox(pymupdf.Rect(54, 120, 558, 200), summary, fontsize=10.5, lineheight=1.4)
    page.insert_text((54, 230), "Table 1. Revenue by region ($ thousands)", fontsize=12, fontname="hebo")
    columns = ["Region", "Q1", "Q2", "Q3", "Q4", "Q1 to Q4"]
    xs = [60, 170, 250, 330, 410, 490]
    top, row_h = 242, 24
    page.draw_rect(pymupdf.Rect(54, top, 558, top + row_h), color=None, fill=(0.87, 0.91, 0.97))
    for x, name in zip(xs, columns):
        page.insert_text((x, top + 16), name, fontsize=10.5, fontname="hebo")
    rows = [(r, *q, f"{(q[3] / q[0] - 1) * 100:+.1f}%") for r, *q in REGIONS]
    totals = [sum(r[i] for r in REGIONS) for i in range(1, 5)]
    rows.append(("Total", *totals, f"{(totals[3] / totals[0] - 1) * 100:+.1f}%"))
    for i, row in enumerate(rows, start=1):
        y = top + i * row_h
        page.draw_line((54, y), (558, y), color=(0.7, 0.7, 0.7), width=0.5)
        bold = row[0] == "Total"
        for x, value in zip(xs, row):
            text = f"{value:,.1f}" if isinstance(value, float) else str(value)
            page.insert_text((x, y + 16), text, fontsize=10.5, fontname="hebo" if bold else "helv")
    bottom = top + (len(rows) + 1) * row_h
    page.draw_rect(pymupdf.Rect(54, top, 558, bottom), color=(0.2, 0.2, 0.2), width=0.8)
    page.insert_text((54, bottom + 40), "Margin and headcount", fontsize=12, fontname="hebo")
    facts = ["Operating margin: 11.2% (Q1), 12.5% (Q2), 13.9% (Q3), 14.6% (Q4)",
             "Headcount at year end: 412 (+38)", "Next report due: 2026-04-30"]
    for k, fact in enumerate(facts):
        page.insert_text((66, bottom + 62 + k * 18), "- " + fact, fontsize=10.5)
    page.insert_text((300, 770), "1", fontsize=9)


def _report_page_two(page) -> None:
    import pymupdf

    page.insert_text((54, 70), "Figure 1. Q4 revenue by region ($ thousands)", fontsize=13, fontname="hebo")
    box = pymupdf.Rect(90, 100, 560, 460)
    top_value = 1800.0
    for k in range(0, 7):  # axis ticks every 300
        value = k * 300
        y = box.y1 - value / top_value * box.height
        page.draw_line((box.x0, y), (box.x1, y), color=(0.85, 0.85, 0.85), width=0.5)
        page.insert_text((box.x0 - 36, y + 3), f"{value:,}", fontsize=9)
    page.draw_line((box.x0, box.y0), (box.x0, box.y1), color=(0, 0, 0), width=1)
    page.draw_line((box.x0, box.y1), (box.x1, box.y1), color=(0, 0, 0), width=1)
    colours = [(0.16, 0.38, 0.7), (0.9, 0.5, 0.1), (0.2, 0.6, 0.3), (0.75, 0.2, 0.2), (0.5, 0.35, 0.7)]
    slot = box.width / len(REGIONS)
    for i, ((name, *quarters), colour) in enumerate(zip(REGIONS, colours)):
        value = quarters[3]
        x0 = box.x0 + i * slot + slot * 0.2
        bar = pymupdf.Rect(x0, box.y1 - value / top_value * box.height, x0 + slot * 0.6, box.y1)
        page.draw_rect(bar, color=None, fill=colour)
        page.insert_text((bar.x0 + 4, bar.y0 - 6), f"{value:,.1f}", fontsize=9.5, fontname="hebo")
        page.insert_text((bar.x0 + 6, box.y1 + 16), name, fontsize=10)
    note = ("East leads in absolute revenue; Online shows the steepest growth over the year.\n"
            "Source: Northwind finance, unaudited.")
    page.insert_textbox(pymupdf.Rect(54, 500, 558, 560), note, fontsize=10.5, lineheight=1.4)
    page.insert_text((300, 770), "2", fontsize=9)


def make_poster(path: Path) -> None:
    """A tall poster: a title band, six findings with figures, a footer; flat colours compress well."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 800, 4200
    poster = Image.new("RGB", (width, height), (246, 244, 238))
    draw = ImageDraw.Draw(poster)
    title, big, body = (ImageFont.load_default(size=s) for s in (54, 40, 26))
    draw.rectangle((0, 0, width, 300), fill=(22, 52, 96))
    draw.text((50, 70), "Reading documents", font=title, fill="white")
    draw.text((50, 140), "at 4KHD resolution", font=title, fill="white")
    draw.text((50, 225), "docvision sample poster - 800 x 4200 px", font=body, fill=(190, 205, 230))
    findings = [
        ("HD-9", "9 tiles, 1,489 visual tokens", (231, 111, 81)),
        ("HD-16", "16 tiles, MMBench setting", (244, 162, 97)),
        ("HD-25", "25 tiles, charts, the default", (190, 140, 10)),
        ("HD-55", "55 tiles, DocVQA / InfoVQA", (42, 157, 143)),
        ("336 px", "tile size of the reference model", (38, 70, 83)),
        ("3 x 18", "tiles for a 816 x 5133 poster at HD-55", (131, 56, 236)),
    ]
    y = 380
    for label, text, colour in findings:
        draw.rounded_rectangle((50, y, width - 50, y + 520), radius=24, fill="white", outline=colour, width=6)
        draw.rectangle((50, y, 90, y + 520), fill=colour)
        draw.text((130, y + 60), label, font=big, fill=colour)
        draw.text((130, y + 130), text, font=body, fill=(40, 40, 40))
        for k in range(5):  # a little bar chart per finding
            bar_h = 60 + 40 * ((k * 7 + len(label)) % 5)
            draw.rectangle((140 + k * 110, y + 470 - bar_h, 220 + k * 110, y + 470), fill=colour)
        y += 600
    draw.rectangle((0, height - 150, width, height), fill=(22, 52, 96))
    draw.text((50, height - 100), "Generated by samples/make_samples.py", font=body, fill="white")
    poster.quantize(colors=64, dither=Image.Dither.NONE).save(path, optimize=True)


def main() -> None:
    make_report(HERE / "report.pdf")
    make_poster(HERE / "poster.png")
    for name in ("report.pdf", "poster.png"):
        print(f"{HERE / name}: {(HERE / name).stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
