"""A private LibreOffice user profile that keeps a converted document from reaching anything outside it.

In: a folder to create the profile in, and whether it gets our macro. Out: the profile's folder, whose
``as_uri()`` goes to ``soffice -env:UserInstallation=...``.

What a document could otherwise make LibreOffice do while it is converted (measured here on 7.4
with the default profile: a .docx with an external linked image and an .odt with a linked graphic
each sent OPTIONS and GET to the server the document named), and the setting that stops it:

- linked graphics, OLE links, linked sections: "block any links from documents not among the trusted
  locations" (BlockUntrustedRefererLinks; we trust no location);
- link and DDE updates when a document opens: never (Calc and Writer each have their own switch; the
  converter also opens documents with UpdateDocMode NO_UPDATE);
- macros, including event handlers: never (highest macro security, macro execution disabled; the
  converter also opens documents with MacroExecutionMode NEVER_EXECUTE);
- recalculating a workbook on load (a WEBSERVICE or a link formula would fetch): never; formulas keep
  the values the file stored;
- and, should anything still try, every HTTP/HTTPS/FTP request goes to a proxy at 127.0.0.1 port 9
  (discard), which refuses it.

Lock files and autosave are off too: the converter opens its own copy of each file and writes only
the PDF.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

from docvision.errors import ExternalTimeout

MACRO_NAME = "docvision_macro.py"  # the file name under user/Scripts/python/ that the worker calls

# (configuration path, property, XML Schema type, value)
SETTINGS = (
    ("/org.openoffice.Office.Common/Security/Scripting", "BlockUntrustedRefererLinks", "boolean", "true"),
    ("/org.openoffice.Office.Common/Security/Scripting", "MacroSecurityLevel", "int", "3"),
    ("/org.openoffice.Office.Common/Security/Scripting", "DisableMacrosExecution", "boolean", "true"),
    ("/org.openoffice.Office.Calc/Content/Update", "Link", "int", "1"),  # Calc: 1 = never
    ("/org.openoffice.Office.Writer/Content/Update", "Link", "int", "0"),  # Writer: 0 = never
    ("/org.openoffice.Office.Calc/Formula/Load", "OOXMLRecalcMode", "int", "1"),  # 1 = never
    ("/org.openoffice.Office.Calc/Formula/Load", "ODFRecalcMode", "int", "1"),
    ("/org.openoffice.Inet/Settings", "ooInetProxyType", "int", "1"),  # 1 = manual
    ("/org.openoffice.Inet/Settings", "ooInetNoProxy", "string", ""),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPProxyName", "string", "127.0.0.1"),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPProxyPort", "int", "9"),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPSProxyName", "string", "127.0.0.1"),
    ("/org.openoffice.Inet/Settings", "ooInetHTTPSProxyPort", "int", "9"),
    ("/org.openoffice.Inet/Settings", "ooInetFTPProxyName", "string", "127.0.0.1"),
    ("/org.openoffice.Inet/Settings", "ooInetFTPProxyPort", "int", "9"),
    ("/org.openoffice.Office.Common/Misc", "UseDocumentOOoLockFile", "boolean", "false"),
    ("/org.openoffice.Office.Common/Misc", "UseDocumentSystemFileLocking", "boolean", "false"),
    ("/org.openoffice.Office.Common/Misc", "FirstRun", "boolean", "false"),
    ("/org.openoffice.Office.Recovery/AutoSave", "Enabled", "boolean", "false"),
    ("/org.openoffice.Office.Recovery/RecoveryInfo", "Enabled", "boolean", "false"),
)


def registry() -> str:
    """The profile's registrymodifications.xcu with SETTINGS."""
    items = "".join(
        f'<item oor:path="{path}"><prop oor:name="{name}" oor:op="fuse"><value>{escape(value)}</value></prop></item>\n'
        for path, name, _kind, value in SETTINGS)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
            'xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
            f"{items}</oor:items>\n")


def create(parent: Path, macro: bool, processes) -> Path:
    """A new profile folder under ``parent``; with ``macro``, our macro in its user scripts.

    ``processes`` is the converter's register (``soffice.Processes``): once it is closed -- the run is
    ending, ``Converter.close`` removes ``parent`` from another thread (a signal handler, the engine's
    last clean-up) -- no profile is made, and a profile whose folder vanished under it while being made
    is that same ending, said in one line. Before this, a LibreOffice restarted (after a crash) at the
    moment the run closed its converter made its profile in the removed folder: FileNotFoundError on the
    profile, reported as an internal error. A ``parent`` removed by anyone else (a temporary-file cleaner)
    is made again.
    """
    if processes.closed:
        raise ExternalTimeout("LibreOffice was stopped: the run is ending")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return _create(parent, macro)
    except FileNotFoundError:
        if processes.closed:
            raise ExternalTimeout("LibreOffice was stopped: the run is ending") from None
        raise


def _create(parent: Path, macro: bool) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="profile-", dir=parent))
    user = folder / "user"
    user.mkdir()
    (user / "registrymodifications.xcu").write_text(registry(), encoding="utf-8")
    if macro:
        scripts = user / "Scripts" / "python"
        scripts.mkdir(parents=True)
        shutil.copyfile(Path(__file__).with_name("macro.py"), scripts / MACRO_NAME)
    return folder
