"""A keep-alive connection outlives a worker's pause between two requests (TT_GATEWAY_KEEPALIVE),
while a connection that sends no request is still closed after gunicorn's 2 s (tracker/patches.py).

With gunicorn's 2 s between requests too, the gateway closed an idle connection while the client
still held it in its pool: the client's next request, sent as the close happened, met a reset (seen
in the suite: a test that slept 2 s between two gets of the same worker).
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest


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


def test_a_connection_that_sends_nothing_is_closed_after_two_seconds(system):
    url = urlsplit(system.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(10) == b""  # closed by the gateway, not by our timeout
        assert 1.5 < time.monotonic() - started < 6


def test_a_trickled_request_is_closed_after_two_seconds(system):
    """A slow client's headers, a byte at a time, hold a connection no longer than a silent one."""
    url = urlsplit(system.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        started = time.monotonic()
        with pytest.raises(OSError):
            for byte in f"GET /healthz HTTP/1.1\r\nHost: {url.netloc}\r\nX-Slow: ".encode() + b"a" * 100:
                sock.send(bytes([byte]))
                time.sleep(0.1)
            raise AssertionError("the whole trickle was taken")
        assert time.monotonic() - started < 6
