"""A keep-alive connection outlives a worker's pause between two requests (TT_GATEWAY_KEEPALIVE).

With gunicorn's default (2 s) the gateway closed an idle connection while the client still held it
in its pool: the client's next request, sent as the close happened, met a reset (seen in the
suite: a test that slept 2 s between two gets of the same worker).
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit


def _request(sock: socket.socket, host: str) -> bytes:
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            return head  # closed by the server
        head += chunk
    headers, _, body = head.partition(b"\r\n\r\n")
    length = int(next(line.split(b":", 1)[1] for line in headers.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(4096)
    return headers


def test_an_idle_connection_is_reused_after_a_pause(system):
    url = urlsplit(system.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        first = _request(sock, url.netloc)
        assert first.startswith(b"HTTP/1.1 200"), first
        assert b"connection: close" not in first.lower()
        time.sleep(3.5)  # longer than gunicorn's default keep-alive
        second = _request(sock, url.netloc)
        assert second.startswith(b"HTTP/1.1 200"), second
