"""A lossy HTTP proxy in front of the real gateway: it forwards every request and, for the ones a
test marks, lets the server process the request but then drops the connection instead of
delivering the answer — the "lost answer" a client must survive by retrying with the same
Idempotency-Key. It also records each request's method, path and Idempotency-Key."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Seen:
    method: str
    path: str
    key: str | None
    dropped: bool


@dataclass
class LossyProxy:
    target: tuple[str, int]
    drops: dict[str, int] = field(default_factory=dict)  # path prefix -> answers still to drop
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def drop(self, path_prefix: str, times: int = 1) -> None:
        with self._lock:
            self.drops[path_prefix] = self.drops.get(path_prefix, 0) + times

    def close(self) -> None:
        self._closed = True
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _should_drop(self, path: str) -> bool:
        with self._lock:
            for prefix, left in self.drops.items():
                if left > 0 and path.startswith(prefix):
                    self.drops[prefix] = left - 1
                    return True
        return False

    def _serve(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(self.target)
        reader, up_reader = _Reader(conn), _Reader(upstream)
        try:
            while True:
                head, body = reader.message()
                if head is None:
                    return
                method, path = head.split(b" ", 2)[:2]
                path_s = path.decode()
                key = _header(head, b"idempotency-key")
                dropped = self._should_drop(path_s)
                self.seen.append(Seen(method.decode(), path_s, key, dropped))
                upstream.sendall(head + body)
                answer_head, answer_body = up_reader.message()
                if answer_head is None or dropped:
                    return  # the server did the work; the client never hears of it
                conn.sendall(answer_head + answer_body)
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            with contextlib.suppress(OSError):
                upstream.close()


def _header(head: bytes, name: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip().decode()
    return None


class _Reader:
    """Reads whole HTTP/1.1 messages (head through the blank line, body by Content-Length)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def message(self) -> tuple[bytes | None, bytes]:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None, b""
            self.buf += chunk
        end = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:end], self.buf[end:]
        length = int(_header(head, b"content-length") or 0)
        while len(self.buf) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None, b""
            self.buf += chunk
        body, self.buf = self.buf[:length], self.buf[length:]
        return head, body
