"""A WSGI app for gunicorn-level tests (tests/test_patches.py): ``GET /?sleep=S`` answers ``{}``
after S seconds (``time.sleep``, cooperative under the gevent worker's monkey patching)."""

import time


def app(environ, start_response):
    time.sleep(float(environ.get("QUERY_STRING", "").partition("=")[2] or 0))
    body = b"{}"
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
