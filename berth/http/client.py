"""A small blocking HTTP/1.1 client for the Engine API, written for the CLI's start time.

Plain sockets and a hand-written HTTP/1.1 exchange: the CLI sends a handful of requests per run,
so one connection per request keeps things simple (``run`` needs three at once anyway: attach,
wait and start). What it does beyond a textbook client:

* ``unix://PATH`` and ``tcp://HOST:PORT`` daemon addresses (TLS is not supported yet);
* request bodies from bytes, JSON, files (``sendfile`` when the size is known) or iterables of
  chunks (``Transfer-Encoding: chunked``);
* streamed responses (chunks or lines as they arrive: logs, events, pulls);
* **hijack**: ``Connection: Upgrade`` / ``Upgrade: tcp``, after which the socket carries raw
  stream frames both ways (attach, exec start);
* errors: a status >= 400 becomes :class:`APIError` with the daemon's ``{"message": …}``; a
  missing socket or refused connection becomes :class:`DaemonUnavailable`.
"""

from __future__ import annotations

# The C module: `socket` builds its IntEnums at import, ~8 ms of the CLI's start.
import _socket as socket
import io
import os
import stat

from berth import API_VERSION, __version__
from berth.errors import BerthError, Unavailable
from berth.util import jsonlite as _json

TYPE_CHECKING = False  # typing costs milliseconds of the CLI's start
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from typing import IO, Any

__all__ = [
    "DEFAULT_HOST",
    "APIError",
    "Client",
    "DaemonUnavailable",
    "Hijacked",
    "PendingRequest",
    "ProtocolError",
    "Response",
    "parse_host",
]

DEFAULT_HOST = "unix:///run/berth/berth.sock"
_READ_SIZE = 64 * 1024
_MAX_HEADER = 64 * 1024
_USER_AGENT = f"berth-cli/{__version__}"
_PATH_SAFE = "/:@!$&'()*+,;="
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


class APIError(BerthError):
    """The daemon answered with an error status; ``message`` is its explanation."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def is_not_found(self) -> bool:
        return self.status == 404


class DaemonUnavailable(Unavailable):
    """The daemon's socket is missing, refuses connections or may not be used by us."""


class ProtocolError(BerthError):
    """The daemon's answer is not valid HTTP/1.1 or ended early."""


def parse_host(host: str) -> tuple[int, Any]:
    """``unix:///path`` or ``tcp://host:port`` → (address family, connect address)."""
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        if not path:
            raise BerthError(f"invalid daemon address {host!r}: empty socket path")
        return socket.AF_UNIX, path
    if host.startswith("/"):
        return socket.AF_UNIX, host
    if host.startswith(("tcp://", "http://")):
        rest = host.split("://", 1)[1].rstrip("/")
        name, sep, port = rest.rpartition(":")
        if not sep or not port.isdigit():
            name, port = rest, "2375"
        name = name.strip("[]") or "127.0.0.1"
        return socket.AF_INET6 if ":" in name else socket.AF_INET, (name, int(port))
    raise BerthError(f"invalid daemon address {host!r}: use unix:///path or tcp://host:port")


def quote(text: str, safe: str = "") -> str:
    """Percent-encode ``text`` as UTF-8, keeping unreserved characters and ``safe``: what
    ``urllib.parse.quote`` does, without its import (~2.5 ms with ``ipaddress``)."""
    if text.isascii() and text.isalnum():
        return text
    keep = _UNRESERVED.union(safe.encode("ascii"))
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8"))


def _encode_params(params: Mapping[str, Any] | None) -> str:
    """Query string in Docker's conventions: booleans as 1/0, None left out, dicts as JSON."""
    if not params:
        return ""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for v in values:
            if isinstance(v, bool):
                pairs.append((key, "1" if v else "0"))
            elif isinstance(v, dict):
                pairs.append((key, _json.dumps(v)))
            else:
                pairs.append((key, str(v)))
    return "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs) if pairs else ""


class _Reader:
    """Buffered reads from a socket: lines for the head, exact counts and chunks for bodies."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(_READ_SIZE)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_line(self, limit: int = _MAX_HEADER) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("response header line too long")
            if not self._fill():
                raise ProtocolError("connection closed by the daemon before a full response")

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed by the daemon in the middle of a response")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def read_some(self, n: int) -> bytes:
        """Up to ``n`` bytes, at least one unless at EOF."""
        if not self.buf and not self._fill():
            return b""
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def take_buffer(self) -> bytes:
        data = bytes(self.buf)
        self.buf.clear()
        return data


def _read_head(reader: _Reader) -> tuple[int, str, dict[str, str]]:
    while True:
        status_line = reader.read_line().rstrip(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"malformed status line from the daemon: {status_line[:80]!r}")
        status = int(parts[1])
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        headers: dict[str, str] = {}
        while True:
            line = reader.read_line().rstrip(b"\r\n")
            if not line:
                break
            name, sep, value = line.partition(b":")
            if not sep:
                raise ProtocolError(f"malformed header line from the daemon: {line[:80]!r}")
            key = name.strip().decode("latin-1").lower()
            val = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
        # 100 Continue and friends precede the real answer; 101 is the hijack's answer.
        if 100 <= status < 200 and status != 101:
            continue
        return status, reason, headers


class Response:
    """A response whose body is read on demand: whole, or chunk by chunk as it arrives."""

    def __init__(self, sock: socket.socket, reader: _Reader, method: str,
                 status: int, reason: str, headers: dict[str, str]) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self._sock: socket.socket | None = sock
        self._reader = reader
        self._consumed = False
        self.bytes_read = 0  # body bytes handed out so far (progress displays count them)
        te = headers.get("transfer-encoding", "").lower()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self._mode, self._remaining = "length", 0
        elif "chunked" in te:
            self._mode, self._remaining = "chunked", 0
        elif "content-length" in headers:
            try:
                self._mode, self._remaining = "length", int(headers["content-length"])
            except ValueError:
                raise ProtocolError("invalid Content-Length from the daemon") from None
        else:
            self._mode, self._remaining = "close", 0

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def iter_chunks(self) -> Iterator[bytes]:
        """Body bytes in the pieces they arrive in (chunked encoding removed)."""
        for data in self._iter_body():
            self.bytes_read += len(data)
            yield data

    def _iter_body(self) -> Iterator[bytes]:
        if self._consumed:
            raise RuntimeError("response body already consumed")
        self._consumed = True
        try:
            if self._mode == "chunked":
                yield from self._iter_chunked()
            elif self._mode == "length":
                remaining = self._remaining
                while remaining > 0:
                    data = self._reader.read_some(min(remaining, _READ_SIZE))
                    if not data:
                        raise ProtocolError("connection closed before the end of the response")
                    remaining -= len(data)
                    yield data
            else:
                while True:
                    data = self._reader.read_some(_READ_SIZE)
                    if not data:
                        break
                    yield data
        finally:
            self.close()

    def _iter_chunked(self) -> Iterator[bytes]:
        reader = self._reader
        while True:
            line = reader.read_line().strip()
            size_text = line.split(b";", 1)[0]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"invalid chunk size {size_text[:20]!r}") from None
            if size == 0:
                while reader.read_line().strip():  # trailers
                    pass
                return
            while size > 0:
                data = reader.read_some(min(size, _READ_SIZE))
                if not data:
                    raise ProtocolError("connection closed in the middle of a chunk")
                size -= len(data)
                yield data
            if reader.read_exact(2) != b"\r\n":
                raise ProtocolError("missing CRLF after a chunk")

    def iter_lines(self) -> Iterator[bytes]:
        """Body split into lines (each keeps its ``\\n``; a last partial line is yielded too)."""
        pending = b""
        for chunk in self.iter_chunks():
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line + b"\n"
        if pending:
            yield pending

    def read(self) -> bytes:
        return b"".join(self.iter_chunks())

    def fileobj(self) -> io.BufferedReader:
        """The body as a binary file (for ``tarfile``), read as it arrives."""
        return io.BufferedReader(_ChunkStream(self.iter_chunks()), _READ_SIZE)

    def json(self) -> Any:
        data = self.read()
        return _json.loads(data) if data.strip() else None


class _ChunkStream(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class Hijacked:
    """A connection taken over after an upgrade: raw bytes both ways from here on.

    ``buffered`` holds bytes that arrived together with the response head; process them before
    reading from ``sock``.
    """

    def __init__(self, sock: socket.socket, buffered: bytes, status: int,
                 headers: dict[str, str]) -> None:
        self.sock = sock
        self.buffered = buffered
        self.status = status
        self.headers = headers

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def close_write(self) -> None:
        """Half-close: tell the daemon stdin is finished, keep reading output."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Hijacked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if TYPE_CHECKING:
    Body = bytes | IO[bytes] | Iterable[bytes]


class PendingRequest:
    """A request sent whose answer has not been read yet."""

    def __init__(self, sock: socket.socket, method: str) -> None:
        self._sock = sock
        self._method = method

    def wait_response(self, *, check: bool = True, timeout: float | None = None) -> Response:
        """Block until the response head arrives; ``timeout`` in seconds (None: no limit)."""
        if timeout is not None:
            self._sock.settimeout(timeout)
        reader, status, reason, headers = Client._receive(self._sock)
        response = Response(self._sock, reader, self._method, status, reason, headers)
        if check and status >= 400:
            raise _api_error(response)
        return response

    def close(self) -> None:
        self._sock.close()


class Client:
    """Engine API client: ``request`` for ordinary calls, ``hijack`` for attach-style calls.

    Paths are given without the version prefix (``/containers/json``); the client adds
    ``/v1.44`` unless ``versioned=False`` (``/_ping``).
    """

    def __init__(self, host: str = DEFAULT_HOST, *, version: str = API_VERSION,
                 timeout: float | None = None) -> None:
        self.host = host
        self.version = version
        self.timeout = timeout
        self._family, self._address = parse_host(host)
        if self._family == socket.AF_UNIX:
            self._host_header = "api.berth.localhost"
        else:
            name, port = self._address
            self._host_header = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"

    # -- connections --------------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._address)
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError) as e:
            sock.close()
            raise DaemonUnavailable(
                f"Cannot connect to the berth daemon at {self.host}. Is berthd running?"
            ) from e
        except PermissionError as e:
            sock.close()
            raise DaemonUnavailable(
                "permission denied while trying to connect to the berth daemon socket at "
                f"{self.host}: {e.strerror}"
            ) from e
        except OSError as e:
            sock.close()
            raise DaemonUnavailable(
                f"Cannot connect to the berth daemon at {self.host}: {e.strerror or e}. "
                "Is berthd running?"
            ) from e
        return sock

    def _target(self, path: str, params: Mapping[str, Any] | None, versioned: bool) -> str:
        # Names users typed end up in the path: escape what a path segment may not hold
        # (space, ?, #, %), as Go's URL.EscapedPath does, keeping ':' and '@' of references.
        prefix = f"/v{self.version}" if versioned and self.version else ""
        return prefix + quote(path, safe=_PATH_SAFE) + _encode_params(params)

    def _send(self, sock: socket.socket, method: str, target: str,
              headers: Mapping[str, str], body: Body | None) -> None:
        head = [f"{method} {target} HTTP/1.1", f"Host: {self._host_header}",
                f"User-Agent: {_USER_AGENT}"]
        hdrs = dict(headers)
        payload: bytes | None = None
        stream: Iterable[bytes] | None = None
        file_obj: IO[bytes] | None = None
        file_size: int | None = None
        if body is None:
            if method in ("POST", "PUT", "PATCH"):
                payload = b""
        elif isinstance(body, bytes | bytearray | memoryview):
            payload = bytes(body)
        elif hasattr(body, "read"):
            file_obj = body  # type: ignore[assignment]
            file_size = _regular_file_remaining(file_obj)
            if file_size is None:
                stream = _iter_file(file_obj)
        else:
            stream = body  # type: ignore[assignment]
        if payload is not None:
            hdrs["Content-Length"] = str(len(payload))
        elif file_size is not None:
            hdrs["Content-Length"] = str(file_size)
        elif stream is not None:
            hdrs["Transfer-Encoding"] = "chunked"
        head.extend(f"{k}: {v}" for k, v in hdrs.items())
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        try:
            if payload is not None and len(payload) <= 256 * 1024:
                sock.sendall(data + payload)
            else:
                sock.sendall(data)
                if payload:
                    sock.sendall(payload)
                elif file_size:
                    _send_file(sock, file_obj, file_size)
                elif stream is not None:
                    for chunk in stream:
                        if chunk:
                            sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            # The daemon may answer early (an error) and close; its answer says why.
            pass

    def _open(self, method: str, path: str, params: Mapping[str, Any] | None, json: Any,
              body: Body | None, headers: Mapping[str, str] | None, versioned: bool,
              extra: Mapping[str, str]) -> socket.socket:
        """Connect and send a whole request; the answer is read separately."""
        hdrs: dict[str, str] = dict(extra)
        if json is not None:
            body = _json.dumps(json).encode()
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        sock = self._connect()
        try:
            self._send(sock, method, self._target(path, params, versioned), hdrs, body)
        except BaseException:
            sock.close()
            raise
        return sock

    @staticmethod
    def _receive(sock: socket.socket) -> tuple[_Reader, int, str, dict[str, str]]:
        reader = _Reader(sock)
        try:
            status, reason, headers = _read_head(reader)
        except ConnectionResetError as e:
            sock.close()
            raise ProtocolError("the daemon closed the connection without answering") from e
        except BaseException:
            sock.close()
            raise
        return reader, status, reason, headers

    # -- public API ---------------------------------------------------------------------------

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, body: Body | None = None,
                headers: Mapping[str, str] | None = None, versioned: bool = True,
                check: bool = True) -> Response:
        """Send a request; the body of the returned response is read on demand.

        With ``check`` (the default) an error status raises :class:`APIError`.
        """
        return self.send(method, path, params=params, json=json, body=body, headers=headers,
                         versioned=versioned).wait_response(check=check)

    def send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json: Any = None, body: Body | None = None,
             headers: Mapping[str, str] | None = None, versioned: bool = True) -> PendingRequest:
        """Send a request without waiting for the answer.

        ``run`` needs this for ``wait``: the request must be with the daemon before ``start``,
        but its answer only comes when the container exits.
        """
        sock = self._open(method, path, params, json, body, headers, versioned, {})
        return PendingRequest(sock, method)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        with self.request("GET", path, params=params) as r:
            return r.json()

    def post_json(self, path: str, params: Mapping[str, Any] | None = None,
                  json: Any = None) -> Any:
        with self.request("POST", path, params=params, json=json) as r:
            return r.json()

    def hijack(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
               json: Any = None, headers: Mapping[str, str] | None = None) -> Hijacked:
        """Send an upgrade request and hand back the raw connection.

        The daemon answers ``101 UPGRADED`` (or ``200`` from older servers) and from then on the
        socket carries the stream itself; anything else is an error.
        """
        sock = self._open(method, path, params, json, None, headers, True,
                          {"Connection": "Upgrade", "Upgrade": "tcp"})
        reader, status, reason, resp_headers = self._receive(sock)
        if status not in (101, 200):
            raise _api_error(Response(sock, reader, method, status, reason, resp_headers))
        sock.settimeout(None)
        return Hijacked(sock, reader.take_buffer(), status, resp_headers)

    def ping(self) -> dict[str, str]:
        """``GET /_ping``: the daemon's headers (API-Version, OSType …)."""
        with self.request("GET", "/_ping", versioned=False) as r:
            r.read()
            return r.headers


def _api_error(response: Response) -> APIError:
    """Read an error response: ``{"message": …}`` as the daemon sends, else the raw body."""
    try:
        data = response.read()
    except (ProtocolError, OSError):
        data = b""
    finally:
        response.close()
    message = ""
    if data:
        try:
            obj = _json.loads(data)
        except ValueError:
            message = data.decode("utf-8", "replace").strip()
        else:
            if isinstance(obj, dict) and "message" in obj:
                message = str(obj["message"])
            else:
                message = data.decode("utf-8", "replace").strip()
    if not message:
        message = f"{response.status} {response.reason}".strip()
    return APIError(response.status, message)


def _regular_file_remaining(f: IO[bytes]) -> int | None:
    """Bytes left in ``f`` if it is a regular file at a known offset (so sendfile can serve it)."""
    try:
        fd = f.fileno()
        st = os.fstat(fd)
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        pos = f.tell()
    except OSError:
        return None
    return max(st.st_size - pos, 0)


def _iter_file(f: IO[bytes]) -> Iterator[bytes]:
    while True:
        data = f.read(_READ_SIZE)
        if not data:
            return
        yield data


def _send_file(sock: socket.socket, file_obj: IO[bytes], size: int) -> None:
    """Hand a file's bytes to the kernel (``sendfile``) from its current offset."""
    offset = file_obj.tell()
    remaining = size
    while remaining > 0:
        sent = os.sendfile(sock.fileno(), file_obj.fileno(), offset, min(remaining, 1 << 30))
        if sent == 0:
            raise BrokenPipeError("the daemon closed the connection during the upload")
        offset += sent
        remaining -= sent
    file_obj.seek(offset)
