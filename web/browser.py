"""Page watchers for measuring what the live page costs a session: the page open in headless Chromium, and a
snapshot stream that is opened and never read (a frozen tab).

The bridge benchmark runs its measurement inside either one, e.g.
`with chromium_page(server.url): ...` or `with stalled_reader(server.url): ...`, and reads the
server's stats() afterwards to see that the page did read.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

from deepbeat.errors import DeepBeatError

from .live import EVENTS_PATH

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
STALLED_RECEIVE_BUFFER = 4096  # bytes the stalled reader's socket holds before the server's writes wait


class BrowserError(DeepBeatError):
    """No browser to open a page with."""


def find_chromium():
    """The path of a Chromium (or Chrome) executable on PATH, or None."""
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


@contextmanager
def chromium_page(url, executable=None):
    """The page at `url` open in headless Chromium (its scripts running, as in a producer's open tab) while
    inside; the browser's process is yielded. BrowserError when no Chromium is found."""
    executable = executable or find_chromium()
    if executable is None:
        raise BrowserError(f"no Chromium found on PATH (looked for {', '.join(CHROMIUM_NAMES)})")
    sandbox = ["--no-sandbox"] if getattr(os, "geteuid", lambda: 1)() == 0 else []  # root has no user namespace
    # Chromium's helpers (renderer, crash handler) outlive its main process for a moment and write to the
    # profile: they run in a session of their own, which is ended whole, and the profile's removal tolerates one
    with tempfile.TemporaryDirectory(prefix="deepbeat-chromium-", ignore_cleanup_errors=True) as profile:
        process = subprocess.Popen(
            [executable, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--mute-audio",
             f"--user-data-dir={profile}", *sandbox, url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            yield process
        finally:
            _end_session(process)


def _end_session(process):
    """Terminate a process and everything in its session (the process alone where there are no process
    groups); kill what is left after 10 s."""
    for last in (False, True):
        if hasattr(os, "killpg"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL if last else signal.SIGTERM)
        else:
            (process.kill if last else process.terminate)()
        try:
            process.wait(None if last else 10)
            return
        except subprocess.TimeoutExpired:
            pass


@contextmanager
def stalled_reader(url):
    """The live server at `url` (token included) streaming snapshots to a connection that never reads, while
    inside: its socket buffers fill, then the server's writes to it wait until its stream timeout ends it."""
    parts = urlsplit(url)
    token = parse_qs(parts.query).get("token", [""])[0]
    connection = socket.socket(socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RECEIVE_BUFFER)  # before connecting
    try:
        connection.connect((parts.hostname, parts.port))
        connection.sendall(f"GET {EVENTS_PATH}?token={token} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        yield connection
    finally:
        connection.close()
