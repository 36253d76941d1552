"""The go-between for a warm LibreOffice: started by docvision under a Python that has LibreOffice's ``uno``.

Usage: PYTHON unoworker.py SOFFICE PROFILE_URL PIPE_NAME START_TIMEOUT
In: one JSON request per line on stdin, passed as is to our macro inside LibreOffice. Out: one JSON
line per request on stdout, preceded by {"ready": true} once LibreOffice listens, or by
{"ready": false, "error": "no-uno" | "no-macro" | "start", "exited": exit status or null, "message": ...}
when it cannot be driven.
A lost LibreOffice answers {"error": "crashed", ...} and ends the worker; the line "quit" (or the end of
stdin) asks LibreOffice to terminate before the worker ends.

Why a separate process: python3-uno is built for Debian's own python3, and loading it into another
CPython worked for plain calls but failed on the script provider here (std::bad_alloc thrown across
the bridge); and a LibreOffice that hangs inside a call can only be cut loose from outside. The
worker runs soffice in its own process group, so killing that group stops the worker, the soffice
script, oosplash and soffice.bin together. It kills that group itself when its stdin closes or its
parent dies, so nothing outlives a docvision that was killed outright.

Nothing here imports docvision: it runs under another interpreter, with the standard library only.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

MACRO_URI = "vnd.sun.star.script:docvision_macro.py$convert?language=Python&location=user"
DEBIAN_UNO = "/usr/lib/python3/dist-packages"
QUIT = "quit"  # the line that ends the worker, and LibreOffice with it, cleanly


def _say(answer):
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


def _import_uno(soffice):
    """LibreOffice's ``uno`` module: importable already, or from LibreOffice's own program folder (its
    bundled Python), or from Debian's python3-uno."""
    try:
        import uno
        return uno
    except ImportError:
        pass
    sys.path += [os.path.dirname(os.path.realpath(soffice)), DEBIAN_UNO]
    import uno
    return uno


def _end_all():
    """Kill our process group: this worker and the LibreOffice it started (only if the group is ours)."""
    if os.getpgid(0) == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)


def _watch_parent(parent):
    while os.getppid() == parent:
        time.sleep(1.0)
    _end_all()


def _office_environment():
    """The environment for soffice: our interpreter's folder first on PATH, no PYTHON* variables.

    LibreOffice's embedded Python finds its standard library from the first python3 on PATH: under
    pyenv that was another CPython 3.11, and the script provider then failed with std::bad_alloc.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    return env


def _connect(uno, office, pipe, deadline):
    """The remote component context, once soffice accepts connections on the pipe."""
    from com.sun.star.connection import NoConnectException

    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    while True:
        try:
            return resolver.resolve("uno:pipe,name={};urp;StarOffice.ComponentContext".format(pipe))
        except NoConnectException:
            if office.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _start(uno, soffice, profile, pipe, timeout):
    """Start soffice listening on ``pipe``: (soffice, its component context, our macro), or an error answer."""
    command = [soffice, "-env:UserInstallation=" + profile, "--headless", "--invisible", "--norestore",
               "--nologo", "--nodefault", "--nolockcheck",
               "--accept=pipe,name={};urp;StarOffice.ComponentContext".format(pipe)]
    office = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=_office_environment())
    try:
        context = _connect(uno, office, pipe, time.monotonic() + timeout)
    except Exception as exc:
        return None, {"ready": False, "error": "start", "exited": office.poll(), "message": str(exc)[:200]}
    try:
        factory = context.ServiceManager.createInstanceWithContext(
            "com.sun.star.script.provider.MasterScriptProviderFactory", context)
        return (office, context, factory.createScriptProvider("").getScript(MACRO_URI)), None
    except Exception as exc:  # no Python script provider (libreoffice-script-provider-python)
        return None, {"ready": False, "error": "no-macro", "message": str(exc).splitlines()[0][:200]}


def _quit(office, context):
    """Ask LibreOffice to end (it then removes its pipes from /tmp, which a kill leaves behind)."""
    try:
        desktop = context.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", context)
        desktop.terminate()
        office.wait(timeout=5)
    except Exception:  # the bridge went first, or it took too long: the group is killed anyway
        pass


def main():
    soffice, profile, pipe, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        uno = _import_uno(soffice)
    except ImportError as exc:
        _say({"ready": False, "error": "no-uno", "message": str(exc)})
        return
    started, refusal = _start(uno, soffice, profile, pipe, timeout)
    if refusal is not None:
        _say(refusal)
        return
    office, context, script = started
    _say({"ready": True})
    for line in sys.stdin:
        if line.strip() == QUIT:
            break
        try:
            answer = script.invoke((line.strip(),), (), ())[0]
        except Exception as exc:  # the bridge is gone (DisposedException): LibreOffice died or was killed
            _say({"error": "crashed", "message": type(exc).__name__})
            return
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
    _quit(office, context)


if __name__ == "__main__":
    try:
        main()
    finally:
        _end_all()
