"""The office formats docvision reads: one row per extension, the one place that says what each one is.

In: an extension (".docx"). Out: its ``Format``: the LibreOffice application that opens it (calc, writer,
impress), a person's name for it, the container its bytes must be (a zip, an OLE compound file, text),
and the LibreOffice import filters it may be opened with, tried in order. An extension is opened only
with these filters, never with whatever LibreOffice's own detection guesses (an .xlsx as HTML): the
alternatives are the older versions of the same format (a .doc may be Word 97, 95 or 6.0).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    kind: str  # "calc", "writer" or "impress"
    name: str  # "Excel workbook"
    container: str  # "zip" (OOXML, OpenDocument), "ole" (Office 97-2003), "text" (CSV, RTF)
    filters: tuple[str, ...]  # LibreOffice import filters, tried in this order


_EXCEL_97 = ("MS Excel 97", "MS Excel 95", "MS Excel 5.0/95", "MS Excel 4.0")
_EXCEL_97_TEMPLATE = ("MS Excel 97 Vorlage/Template", "MS Excel 95 Vorlage/Template", *_EXCEL_97)
_WORD_97 = ("MS Word 97", "MS Word 95", "MS WinWord 6.0")
_WORD_97_TEMPLATE = ("MS Word 97 Vorlage", "MS Word 95 Vorlage", *_WORD_97)

FORMATS = {
    ".xlsx": Format("calc", "Excel workbook", "zip", ("Calc MS Excel 2007 XML",)),
    ".xlsm": Format("calc", "Excel workbook", "zip", ("Calc MS Excel 2007 VBA XML", "Calc MS Excel 2007 XML")),
    ".xltx": Format("calc", "Excel template", "zip", ("Calc MS Excel 2007 XML Template", "Calc MS Excel 2007 XML")),
    ".xltm": Format("calc", "Excel template", "zip", ("Calc MS Excel 2007 XML Template", "Calc MS Excel 2007 VBA XML")),
    ".xls": Format("calc", "Excel 97-2003 workbook", "ole", _EXCEL_97),
    ".xlt": Format("calc", "Excel 97-2003 template", "ole", _EXCEL_97_TEMPLATE),
    ".ods": Format("calc", "OpenDocument spreadsheet", "zip", ("calc8",)),
    ".csv": Format("calc", "CSV file", "text", ("Text - txt - csv (StarCalc)",)),
    ".docx": Format("writer", "Word document", "zip", ("MS Word 2007 XML",)),
    ".docm": Format("writer", "Word document", "zip", ("MS Word 2007 XML VBA", "MS Word 2007 XML")),
    ".dotx": Format("writer", "Word template", "zip", ("MS Word 2007 XML Template", "MS Word 2007 XML")),
    ".dotm": Format("writer", "Word template", "zip", ("MS Word 2007 XML Template", "MS Word 2007 XML VBA")),
    ".doc": Format("writer", "Word 97-2003 document", "ole", _WORD_97),
    ".dot": Format("writer", "Word 97-2003 template", "ole", _WORD_97_TEMPLATE),
    ".odt": Format("writer", "OpenDocument text", "zip", ("writer8",)),
    ".rtf": Format("writer", "RTF document", "text", ("Rich Text Format",)),
    ".pptx": Format("impress", "PowerPoint presentation", "zip", ("Impress MS PowerPoint 2007 XML",)),
    ".pptm": Format("impress", "PowerPoint presentation", "zip",
                    ("Impress MS PowerPoint 2007 XML VBA", "Impress MS PowerPoint 2007 XML")),
    ".ppsx": Format("impress", "PowerPoint slide show", "zip",
                    ("Impress MS PowerPoint 2007 XML AutoPlay", "Impress MS PowerPoint 2007 XML")),
    ".potx": Format("impress", "PowerPoint template", "zip",
                    ("Impress MS PowerPoint 2007 XML Template", "Impress MS PowerPoint 2007 XML")),
    ".ppt": Format("impress", "PowerPoint 97-2003 presentation", "ole", ("MS PowerPoint 97",)),
    ".pps": Format("impress", "PowerPoint 97-2003 slide show", "ole",
                   ("MS PowerPoint 97 AutoPlay", "MS PowerPoint 97")),
    ".pot": Format("impress", "PowerPoint 97-2003 template", "ole", ("MS PowerPoint 97 Vorlage", "MS PowerPoint 97")),
    ".odp": Format("impress", "OpenDocument presentation", "zip", ("impress8",)),
}

CALC = frozenset(ext for ext, f in FORMATS.items() if f.kind == "calc")
WRITER = frozenset(ext for ext, f in FORMATS.items() if f.kind == "writer")
IMPRESS = frozenset(ext for ext, f in FORMATS.items() if f.kind == "impress")
OOXML = frozenset(ext for ext, f in FORMATS.items() if f.container == "zip" and ext[1] != "o")  # not .ods/.odt/.odp
# What openpyxl reads (its facts about sheets and charts are a bonus: LibreOffice has the last word).
WORKBOOKS = frozenset({".xlsx", ".xlsm", ".xltx", ".xltm"})


def describe(ext: str) -> str:
    """A person's name for the format of an extension ("Excel workbook")."""
    found = FORMATS.get(ext)
    return found.name if found else ext.lstrip(".").upper() + " file"
