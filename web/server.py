"""The HTTP server behind the pages: static page files, a JSON API, and a per-run token guarding it.

Listens on loopback unless told otherwise. Every /api/ request carries the run's token (the
X-DeepBeat-Token header, or a `token` query parameter where a browser cannot set headers: event
streams and download links); static files need none. Bad input is answered with an HTTP error
status and {"error": "one line"}; never with a traceback. Each request runs on its own daemon
thread, so a slow or stalled browser holds only its own connection.
"""
import hmac
import ipaddress
import json
import mimetypes
import secrets
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

from deepbeat.errors import DeepBeatError
from deepbeat.smf import MAX_FILE_BYTES
from deepbeat.userfiles import parse_json

LOOPBACK = "127.0.0.1"
TOKEN_HEADER = "X-DeepBeat-Token"
MAX_BODY_BYTES = MAX_FILE_BYTES  # the largest request is a MIDI file dropped on the page
STREAM_WRITE_TIMEOUT_S = 5.0  # a stream whose reader takes no bytes for this long is closed
SHUTDOWN_POLL_S = 0.05  # how often a started server looks whether close() was called
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "[::1]"}
# Pages may reach this server only: no other origin, no inline code.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class RequestError(DeepBeatError):
    """A request the server refuses: its HTTP status (400 unless said) and a one-line reason."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


class ServerError(DeepBeatError):
    """The server cannot start (e.g. the address is taken)."""


def new_token():
    """A fresh per-run token: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def is_loopback(host):
    """Whether `host` (a name or an address) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host):
    """The warning a server bound to a non-loopback `host` must print, or None on loopback."""
    if is_loopback(host):
        return None
    return (f"serving on {host}, beyond this machine: anyone on the network who learns the address with its "
            "token can steer and download; use the loopback default unless you mean it")


@dataclass
class Request:
    """One API request: query parameters (the last of each name), the body bytes and the headers."""

    method: str
    path: str
    query: dict
    body: bytes
    headers: object

    def json(self):
        """The body as a JSON object, or RequestError."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("the request body is not UTF-8 text") from None
        value = parse_json(text, "request", RequestError)
        if not isinstance(value, dict):
            raise RequestError("the request body is not a JSON object")
        return value

    def whole_number(self, name, low, high, default=None):
        """Query parameter `name` as a whole number within low-high (or `default` when absent)."""
        text = self.query.get(name)
        if text is None and default is not None:
            return default
        if text is None or not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
            raise RequestError(f"{name} {text!r}: expected a whole number {low}-{high}")
        return int(text)


@dataclass
class Response:
    """A reply: a status and bytes of a content type, or a `stream` function that writes the body in pieces
    (write(bytes) raises OSError once the reader is gone or has taken nothing for the server's stream timeout)."""

    body: bytes = b""
    content_type: str = "application/json"
    status: int = 200
    headers: dict = field(default_factory=dict)
    stream: object = None

    @classmethod
    def json(cls, data, status=200):
        return cls(json.dumps(data, separators=(",", ":"), allow_nan=False).encode(), status=status)

    @classmethod
    def download(cls, data, filename, content_type="audio/midi"):
        """Bytes the browser saves as a file named `filename`."""
        return cls(data, content_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _static_files():
    """{name: (content type, bytes)} of the page files shipped in static/."""
    files = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        if entry.is_file():
            kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind.endswith("javascript"):
                kind += "; charset=utf-8"
            files[entry.name] = (kind, entry.read_bytes())
    return files


class WebServer:
    """Serves `page` (a file of static/) at "/", static/ under /static/, and `routes` under /api/.

    routes: {(method, path): handler}, each handler a function of a Request returning a Response.
    Port 0 picks a free port. `start()` serves on a daemon thread; `close()` stops.
    """

    def __init__(self, routes, page, host=LOOPBACK, port=0, token=None, name="deepbeat web",
                 stream_timeout=STREAM_WRITE_TIMEOUT_S):
        self.routes, self.page, self.name = routes, page, name
        self.stream_timeout = stream_timeout
        self.token = token or new_token()
        self.static = _static_files()
        if page not in self.static:
            raise ValueError(f"no page {page!r} in static/")
        handler = type("Handler", (_Handler,), {"app": self})
        server = type("Server", (ThreadingHTTPServer,), {
            "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET,
            "daemon_threads": True,  # a stream still open never holds up the process's exit
            "block_on_close": False,
        })
        self.http = server((host, port), handler, bind_and_activate=False)
        try:
            self.http.server_bind()
            self.http.server_activate()
        except OSError as error:
            self.http.server_close()
            raise ServerError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None
        self.host = host
        self.port = self.http.server_address[1]
        self.loopback = is_loopback(host)
        self._thread = None

    @property
    def url(self):
        """The address to open, token included."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    def start(self):
        self._thread = threading.Thread(target=self.http.serve_forever, args=(SHUTDOWN_POLL_S,), name=self.name,
                                        daemon=True)
        self._thread.start()
        return self

    def close(self):
        if self._thread is not None:
            self.http.shutdown()
            self._thread.join()
            self._thread = None
        self.http.server_close()

    def serve_until_interrupted(self):
        """Serve on this thread until Ctrl-C."""
        try:
            self.http.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.http.server_close()

    def host_allowed(self, host_header):
        """Whether a request's Host header names this server: on loopback only loopback names are
        answered (a web page elsewhere cannot rebind a name of its own onto this port)."""
        if not self.loopback:
            return True
        name = (host_header or "").rsplit(":", 1)[0] if not (host_header or "").endswith("]") else host_header
        return name in _LOOPBACK_NAMES

    def token_matches(self, given):
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


class _Handler(BaseHTTPRequestHandler):
    """Routes one request of a WebServer (`app`)."""

    app = None
    server_version = "DeepBeat"
    sys_version = ""

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # one line per request would drown the command's own output

    def _handle(self, method):
        try:
            self._reply(self._route(method))
        except RequestError as error:
            self._reply(Response.json({"error": str(error)}, error.status))
        except DeepBeatError as error:
            self._reply(Response.json({"error": " ".join(str(error).splitlines())}, 400))
        except OSError:  # the browser went away mid-reply
            self.close_connection = True
        except Exception as error:  # a fault of ours: one line for the page and one on stderr
            print(f"{self.app.name}: internal error on {method} {self.path.split('?')[0]}: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)
            self._reply(Response.json({"error": f"internal error ({type(error).__name__}); see the terminal"}, 500))

    def _route(self, method):
        if not self.app.host_allowed(self.headers.get("Host")):
            raise RequestError("this server answers to its loopback address only", 403)
        parts = urlsplit(self.path)
        path = parts.path
        if not path.startswith("/api/"):
            name = self.app.page if path == "/" else path[len("/static/"):] if path.startswith("/static/") else None
            if method != "GET" or name not in self.app.static:
                raise RequestError(f"no such file: {path}", 404)
            kind, data = self.app.static[name]
            return Response(data, kind)
        query = dict(parse_qsl(parts.query))
        if not self.app.token_matches(self.headers.get(TOKEN_HEADER) or query.get("token")):
            raise RequestError("missing or wrong token: open the address printed at start-up, token included", 403)
        handler = self.app.routes.get((method, path))
        if handler is None:
            known = any(route_path == path for _, route_path in self.app.routes)
            raise RequestError(f"{method} {path}: " + ("not allowed" if known else "no such endpoint"),
                               405 if known else 404)
        return handler(Request(method, path, query, self._body(), self.headers))

    def _body(self):
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.isdigit():
            raise RequestError("Content-Length is not a number")
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body is left unread
            raise RequestError(f"the request holds {int(length)} bytes; at most {MAX_BODY_BYTES} are read", 413)
        return self.rfile.read(int(length))

    def _reply(self, response):
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        for name, value in {**_SECURITY_HEADERS, **response.headers}.items():
            self.send_header(name, value)
        if response.stream is None:
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
            return
        self.end_headers()
        self.close_connection = True
        self.connection.settimeout(self.app.stream_timeout)
        try:
            response.stream(self.wfile.write)
        except OSError:  # a write timing out raises socket.timeout, an OSError
            pass  # the reader left, or stopped reading: its connection ends here, nothing else waits on it
