"""A fault-injecting HTTP/1.1 reverse proxy to put between S3 clients and the test S3 server.

Transient storage errors (throttling, dropped connections, stalls, cut-off bodies) must be retried
or fail loudly, never be mistaken for corrupt files. moto cannot produce them, so tests point
pyarrow/boto3 at this proxy instead, which forwards everything to moto unchanged except the
requests that match a fault rule. It also logs every request, so tests can assert request counts.

Standard library only. Request bodies are buffered (the test objects are small, and a buffered
body can be re-sent when a kept-alive upstream connection turns out to be stale); chunked request
bodies are forwarded byte for byte, chunk framing included, so aws-chunked payloads and their
signatures reach the server untouched. ``Expect: 100-continue`` is answered by the proxy itself
and not forwarded. Host is rewritten to the upstream unless ``preserve_host`` (SigV4 signs Host;
moto does not check signatures, a real server does).
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import struct
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

__all__ = [
    "Action",
    "Delay",
    "FaultProxy",
    "FaultRule",
    "LoggedRequest",
    "ProxyRequest",
    "Reset",
    "Status",
    "Truncate",
]

# Hop-by-hop headers (RFC 9110 7.6.1): they describe one connection, not the message.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "upgrade",
        "expect",
    }
)
_S3_CODES = {
    400: ("BadRequest", "Bad request."),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "Bad gateway."),
    503: ("SlowDown", "Please reduce your request rate."),
}
_COPY_SIZE = 64 * 1024


# --- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """Answer with an S3-style XML error instead of forwarding (throttling, 5xx, ...)."""

    code: int = 503
    s3_code: str | None = None
    message: str | None = None

    def body(self, request_id: str) -> bytes:
        default_code, default_message = _S3_CODES.get(self.code, ("InternalError", "Fault."))
        code = self.s3_code or default_code
        message = self.message or default_message
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()


@dataclass(frozen=True)
class Reset:
    """Drop the client connection with a TCP RST and no response.

    With ``after_upstream=True`` the request is forwarded first and the upstream applies it; only
    the response is lost (the "did my PUT land?" case).
    """

    after_upstream: bool = False


@dataclass(frozen=True)
class Delay:
    """Sleep before forwarding, to provoke client read timeouts.

    The request is still forwarded afterwards, as a slow server would still do the work.
    """

    seconds: float


@dataclass(frozen=True)
class Truncate:
    """Forward the response headers as they are, but close after ``nbytes`` of the body."""

    nbytes: int


Action = Status | Reset | Delay | Truncate


# --- requests, rules and the log ----------------------------------------------------------------


@dataclass(frozen=True)
class ProxyRequest:
    """What a rule's ``when`` predicate sees. ``path`` is percent-decoded, ``headers`` are
    case-insensitive (``"range" in req.headers``)."""

    method: str
    path: str
    query: str
    headers: Message
    raw_path: str


@dataclass(eq=False)
class FaultRule:
    """One fault: which requests it hits, what it does, and how often it has fired."""

    action: Action
    method: str | None = None
    path_regex: str | None = None
    query_regex: str | None = None
    when: Callable[[ProxyRequest], bool] | None = None
    times: int | None = 1
    fired: int = 0

    def matches(self, req: ProxyRequest) -> bool:
        """Whether ``req`` is one this rule targets (ignoring ``times``)."""
        return (
            (self.method is None or self.method.upper() == req.method)
            and (self.path_regex is None or re.search(self.path_regex, req.path) is not None)
            and (self.query_regex is None or re.search(self.query_regex, req.query) is not None)
            and (self.when is None or bool(self.when(req)))
        )

    @property
    def exhausted(self) -> bool:
        """True once the rule has fired ``times`` times; it then lets requests pass."""
        return self.times is not None and self.fired >= self.times


@dataclass(eq=False)
class LoggedRequest:
    """One request the proxy saw (``path`` percent-decoded, header names lower-case).

    ``status`` is None while no response was sent (Reset, a Delay still sleeping); it is set
    before the first response byte leaves, so a client that has its answer finds it complete.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    action: Action | None = None
    status: int | None = None

    @property
    def faulted(self) -> bool:
        """Whether a fault rule fired on this request."""
        return self.action is not None


def _select(
    entries: list[LoggedRequest],
    method: str | None,
    path_regex: str | None,
    query_regex: str | None,
    faulted: bool | None,
) -> list[LoggedRequest]:
    return [
        e
        for e in entries
        if (method is None or e.method == method.upper())
        and (path_regex is None or re.search(path_regex, e.path))
        and (query_regex is None or re.search(query_regex, e.query))
        and (faulted is None or e.faulted == faulted)
    ]


# --- the proxy ----------------------------------------------------------------------------------


class FaultProxy:
    """Reverse proxy on ``127.0.0.1:<free port>`` in front of ``upstream`` (``http://host:port``).

    Use as a context manager, or call ``start()``/``stop()``. Rules are checked in the order they
    were added; the first live rule that matches a request fires.
    """

    def __init__(
        self, upstream: str, *, preserve_host: bool = False, upstream_timeout: float = 60.0
    ) -> None:
        """``preserve_host`` forwards the client's Host unchanged: SigV4 signs Host, so a server
        that checks signatures (MinIO, AWS) needs it; moto does not check."""
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be http://host[:port], got {upstream!r}")
        self.upstream = upstream
        self.upstream_host = parts.netloc
        self.preserve_host = preserve_host
        self._upstream_addr = (parts.hostname, parts.port or 80)
        self._upstream_prefix = parts.path.rstrip("/")
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._log: list[LoggedRequest] = []
        self._sockets: set[socket.socket] = set()
        self.connections = 0  # client connections accepted: few for many requests = keep-alive
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FaultProxy:
        """Bind a free port and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("proxy already started")
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fault-proxy:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open (kept-alive) connections and join every handler thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the per-connection threads
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The free port the proxy listens on (while started)."""
        if self._server is None:
            raise RuntimeError("proxy not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The endpoint to give clients instead of the upstream's."""
        return f"http://127.0.0.1:{self.port}"

    # fault rules

    def add_fault(
        self,
        action: Action,
        *,
        method: str | None = None,
        path_regex: str | None = None,
        query_regex: str | None = None,
        when: Callable[[ProxyRequest], bool] | None = None,
        times: int | None = 1,
    ) -> FaultRule:
        """Fault the next ``times`` matching requests (None: every one until removed).

        ``path_regex`` is searched in the percent-decoded path (``/bucket/key``), ``query_regex``
        in the raw query string; ``when`` gets the :class:`ProxyRequest` (headers, not body).
        """
        rule = FaultRule(
            action=action,
            method=method.upper() if method else None,
            path_regex=path_regex,
            query_regex=query_regex,
            when=when,
            times=times,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def outage(self, action: Action) -> FaultRule:
        """Fault every request, ahead of all other rules, until removed or cleared."""
        rule = FaultRule(action=action, times=None)
        with self._lock:
            self._rules.insert(0, rule)
        return rule

    def remove(self, rule: FaultRule) -> None:
        """Withdraw one rule (e.g. end an outage) and keep the others."""
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)

    def clear(self) -> None:
        """Remove every fault rule; requests pass through again."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        """A snapshot of the rules, in matching order."""
        with self._lock:
            return list(self._rules)

    # request log

    @property
    def log(self) -> list[LoggedRequest]:
        """A snapshot of every request seen so far, oldest first."""
        with self._lock:
            return list(self._log)

    def requests(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        *,
        query_regex: str | None = None,
        faulted: bool | None = None,
    ) -> list[LoggedRequest]:
        """Logged requests filtered like fault rules (regexes searched, None = any)."""
        return _select(self.log, method, path_regex, query_regex, faulted)

    def count(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        *,
        query_regex: str | None = None,
        faulted: bool | None = None,
    ) -> int:
        """How many logged requests match, e.g. ``count("GET", query_regex="list-type=2")``."""
        return len(self.requests(method, path_regex, query_regex=query_regex, faulted=faulted))

    def clear_log(self) -> None:
        """Forget the requests so far, so the next counts start from zero (rules are kept)."""
        with self._lock:
            self._log.clear()

    # used by the handler

    def _arrive(self, req: ProxyRequest) -> tuple[LoggedRequest, Action | None]:
        entry = LoggedRequest(
            req.method, req.path, req.query, {k.lower(): v for k, v in req.headers.items()}
        )
        with self._lock:
            self._log.append(entry)
            rules = list(self._rules)
        action = None
        for rule in rules:
            if not rule.exhausted and rule.matches(req):  # user code: outside the lock
                with self._lock:
                    if rule.exhausted or rule not in self._rules:
                        continue
                    rule.fired += 1
                action = entry.action = rule.action
                break
        return entry, action

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins them: no handler thread outlives stop()
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type, proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients and upstreams hanging up mid-exchange is routine here (and provoked on purpose).
        if isinstance(sys.exc_info()[1], OSError | http.client.HTTPException):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # persistent connections, like a real S3 endpoint
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.proxy = self.server.proxy
        threading.current_thread().name = f"fault-proxy:{self.server.server_address[1]}:conn"
        self._upstream: http.client.HTTPConnection | None = None
        self._upstream_sock: socket.socket | None = None
        self._expect_pending = False
        self.proxy._track(self.connection, True)
        with self.proxy._lock:
            self.proxy.connections += 1
        if self.proxy._stopping.is_set():  # accepted while stop() was cutting connections
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._close_upstream()
            self.proxy._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the proxy's own log is the request log

    def handle_expect_100(self) -> bool:
        # Deferred: "100 Continue" is sent only when the body is really wanted (see _read_body),
        # so a faulted upload gets its error before sending the body, as S3 would do it.
        return True

    def _proxy(self) -> None:
        target = self.path
        if "://" in target:  # absolute-form request target
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        raw_path, _, query = target.partition("?")
        req = ProxyRequest(self.command, unquote(raw_path), query, self.headers, raw_path)
        entry, action = self.proxy._arrive(req)
        self._expect_pending = (
            self.headers.get("Expect", "").lower() == "100-continue"
            and self.request_version != "HTTP/1.0"
        )
        if isinstance(action, Delay) and self.proxy._stopping.wait(action.seconds):
            self._reset()
            return
        if isinstance(action, Reset) and not action.after_upstream:
            self._reset()
            return
        if isinstance(action, Status):
            self._send_status(entry, action, drain=True)
            return
        body = self._read_body()
        if body is None:  # the client hung up or sent a broken body
            self.close_connection = True
            return
        try:
            response = self._forward(target, body)
        except (OSError, http.client.HTTPException) as exc:
            self._close_upstream()
            self._send_status(entry, Status(502, "ProxyUpstreamError", repr(exc)), drain=False)
            return
        if isinstance(action, Reset):
            with contextlib.suppress(OSError, http.client.HTTPException):
                response.read()
            self._reset()
            return
        self._relay(entry, response, action.nbytes if isinstance(action, Truncate) else None)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_PATCH = _proxy

    # request side

    def _read_body(self) -> bytes | None:
        """The raw request body (chunk framing kept), or None if it could not be read whole."""
        if self._expect_pending:
            self._expect_pending = False
            self.send_response_only(100)
            self.end_headers()
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        data = self.rfile.read(length) if length > 0 else b""
        return data if len(data) == length else None

    def _read_chunked(self) -> bytes | None:
        parts = []
        while True:
            line = self.rfile.readline(65537)
            if not line.endswith(b"\n"):
                return None
            parts.append(line)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                break
            data = self.rfile.read(size + 2)  # chunk data and its CRLF
            if len(data) != size + 2:
                return None
            parts.append(data)
        while True:  # trailer fields, then the empty line
            line = self.rfile.readline(65537)
            if not line.endswith(b"\n"):
                return None
            parts.append(line)
            if line in (b"\r\n", b"\n"):
                return b"".join(parts)

    def _forward(self, target: str, body: bytes) -> http.client.HTTPResponse:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        listed = {t.strip().lower() for t in self.headers.get("Connection", "").split(",")}
        headers = [
            (name, value)
            for name, value in self.headers.items()
            if name.lower() not in _HOP_BY_HOP
            and name.lower() not in listed
            and (name.lower() != "host" or self.proxy.preserve_host)
            and not (chunked and name.lower() == "content-length")
        ]
        url = self.proxy._upstream_prefix + target
        for attempt in range(2):
            if self._upstream is not None and self._upstream.sock is None:
                self._close_upstream()  # the upstream said "Connection: close" last time
            fresh = self._upstream is None
            if self._upstream is None:
                conn = http.client.HTTPConnection(
                    *self.proxy._upstream_addr, timeout=self.proxy.upstream_timeout
                )
                conn.connect()
                self._upstream, self._upstream_sock = conn, conn.sock
                self.proxy._track(conn.sock, True)
            conn = self._upstream
            try:
                conn.putrequest(self.command, url, skip_host=True, skip_accept_encoding=True)
                if not self.proxy.preserve_host:
                    conn.putheader("Host", self.proxy.upstream_host)
                for name, value in headers:
                    conn.putheader(name, value)
                conn.endheaders()
                if body:
                    conn.send(body)
                return conn.getresponse()
            except ConnectionError:
                # A kept-alive upstream connection the server had already closed: resend once.
                self._close_upstream()
                if fresh or attempt:
                    raise
        raise AssertionError("unreachable")

    def _close_upstream(self) -> None:
        conn, self._upstream = self._upstream, None
        sock, self._upstream_sock = self._upstream_sock, None
        if sock is not None:
            self.proxy._track(sock, False)
        if conn is not None:
            conn.close()

    # response side

    def _send_status(self, entry: LoggedRequest, action: Status, *, drain: bool) -> None:
        if drain:
            if self._expect_pending:
                # The client holds the body back until "100 Continue", which it will not get;
                # it may still send it later, so this connection cannot carry another request.
                self.close_connection = True
            elif self._read_body() is None:
                self.close_connection = True
        request_id = uuid.uuid4().hex[:16].upper()
        body = action.body(request_id)
        entry.status = action.code
        try:
            self.send_response_only(action.code)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amz-request-id", request_id)
            self.send_header("Date", self.date_time_string())
            if self.close_connection:
                self.send_header("Connection", "close")
            self._headers_buffer.append(b"\r\n")
            if self.command != "HEAD":
                self._headers_buffer.append(body)
            self.flush_headers()  # one write: head and body together
        except OSError:
            self.close_connection = True

    def _relay(
        self, entry: LoggedRequest, response: http.client.HTTPResponse, limit: int | None
    ) -> None:
        no_body = self.command == "HEAD" or response.status in (204, 304)
        rechunk = not no_body and (response.chunked or response.length is None)
        listed = {t.strip().lower() for t in (response.getheader("Connection") or "").split(",")}
        entry.status = response.status
        try:
            self.send_response_only(response.status, response.reason)
            for name, value in response.msg.items():
                lower = name.lower()
                if lower in _HOP_BY_HOP or lower in listed or lower == "transfer-encoding":
                    continue
                if rechunk and lower == "content-length":
                    continue
                self.send_header(name, value)
            if rechunk:
                if self.request_version == "HTTP/1.0":
                    self.close_connection = True  # the end of the body is the end of the stream
                    rechunk = False
                else:
                    self.send_header("Transfer-Encoding", "chunked")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            sent = 0
            while not no_body and (limit is None or sent < limit):
                want = _COPY_SIZE if limit is None else min(_COPY_SIZE, limit - sent)
                data = response.read(want)
                if not data:
                    break
                self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data) if rechunk else data)
                sent += len(data)
            if limit is not None:  # Truncate: cut here, never finish the body
                self._close_upstream()
                self.close_connection = True
                return
            if no_body:
                response.read()
            if rechunk:
                self.wfile.write(b"0\r\n\r\n")
        except (OSError, http.client.HTTPException):
            self._close_upstream()
            self.close_connection = True

    def _reset(self) -> None:
        """Abort the client connection with RST (SO_LINGER 0), sending nothing."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile() reference, so close() really closes the fd
        self.connection.close()
