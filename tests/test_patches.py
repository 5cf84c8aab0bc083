"""Every framework patch of tracker/patches.py still does what it claims on the installed versions.

Fast unit tests (no broker, no database, no system): each one fails when an upgrade of nameko or
gunicorn removes or changes the internal a patch relies on, or when the patch stops being needed.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tracker import patches

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.filterwarnings(r"ignore:\s*Eventlet is deprecated")


def _imported_after(statement: str, env: dict[str, str] | None = None) -> set[str]:
    """Top-level modules loaded by a fresh interpreter after running ``statement``."""
    code = f"import sys; {statement}; print(','.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return set(out.stdout.strip().split(","))


# --- the module itself -------------------------------------------------------------------------

def test_importing_the_patches_loads_no_framework():
    loaded = _imported_after("import tracker.patches")
    assert not loaded & {"nameko", "eventlet", "gunicorn", "gevent"}


def test_the_gateway_config_patches_gunicorn_without_loading_nameko(tmp_path):
    loaded = _imported_after(
        "import gateway.gunicorn_conf; from gunicorn import util; from gunicorn.http import wsgi; "
        "assert util.write_error.__module__ == 'tracker.patches', util.write_error; "
        "assert wsgi.Response.__name__ == 'OneWriteResponse'; "
        "from gunicorn.workers.ggevent import GeventWorker; assert GeventWorker.tt_keep_alive_patched",
        {"TT_METRICS_DIR": str(tmp_path)})
    assert "gunicorn" in loaded
    assert not loaded & {"nameko", "eventlet"}


def test_pinned_versions_are_installed_and_match_pyproject():
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"nameko=={patches.NAMEKO_VERSION}" in pins
    assert f"gunicorn=={patches.GUNICORN_VERSION}" in pins
    patches.require("nameko", patches.NAMEKO_VERSION, "test")
    patches.require("gunicorn", patches.GUNICORN_VERSION, "test")


def test_a_different_version_is_refused_naming_the_patch():
    with pytest.raises(patches.PatchedVersionMismatch, match="^OneWriteResponse patches gunicorn 0.0.1.*re-check"):
        patches.require("gunicorn", "0.0.1", "OneWriteResponse")


# --- gunicorn ----------------------------------------------------------------------------------

class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.timeout = 5.0

    def gettimeout(self):
        return self.timeout

    def setblocking(self, flag):
        self.timeout = None if flag else 0.0

    def sendall(self, data: bytes) -> None:
        self.sent.append(bytes(data))


def test_gunicorn_still_answers_unparsable_requests_through_util_write_error():
    from gunicorn import util
    from gunicorn.workers import base

    assert base.util is util  # looked up on the module at call time, so replacing it there works
    assert "util.write_error(client, status_int, reason, mesg)" in inspect.getsource(base.Worker.handle_error)
    assert list(inspect.signature(util.write_nonblock).parameters)[:2] == ["sock", "data"]


def test_json_error_writer_sends_one_json_envelope_with_the_extra_headers():
    sock = FakeSocket()
    patches.json_error_writer({"X-Frame-Options": "DENY"})(sock, 400, "Bad Request", "Invalid header")
    assert len(sock.sent) == 1
    head, _, body = sock.sent[0].partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    assert "X-Frame-Options: DENY" in lines and "Content-Type: application/json" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body) == {"ok": False, "message": "Bad Request: Invalid header"}


def test_gunicorn_builds_responses_through_the_module_global():
    from gunicorn.http import wsgi

    source = inspect.getsource(wsgi.create)
    assert "response_class = Response" in source  # the module global, read per request


class FakeRequest:
    version = (1, 1)
    method = "GET"

    def should_close(self) -> bool:
        return False


class FakeCfg:
    sendfile = False
    is_ssl = False


@pytest.mark.parametrize(("body", "chunked"), [(b'{"ok":true}', False), (b"", False)])
def test_one_write_response_sends_headers_and_body_together(body, chunked):
    from gunicorn.http import wsgi

    response_class = patches.one_write_response()
    assert issubclass(response_class, wsgi.Response)
    sock = FakeSocket()
    resp = response_class(FakeRequest(), sock, FakeCfg())
    resp.start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    resp.write(body)
    assert len(sock.sent) == 1, sock.sent  # one send: headers (and the body if any) together
    head, _, rest = sock.sent[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and rest == body
    assert resp.headers_sent


def test_stock_gunicorn_response_still_writes_headers_and_body_apart():
    """The patch is still needed: stock gunicorn sends the same answer in two writes."""
    from gunicorn.http import wsgi

    sock = FakeSocket()
    resp = wsgi.Response(FakeRequest(), sock, FakeCfg())
    resp.start_response("200 OK", [("Content-Length", "2")])
    resp.write(b"{}")
    assert len(sock.sent) == 2


def test_the_keepalive_loop_reads_each_request_inside_timeout_ctx():
    """keep_alive_between_requests times and marks each wait for a request in timeout_ctx."""
    from gunicorn.workers import base_async, ggevent

    source = inspect.getsource(base_async.AsyncWorker.handle)
    assert "with self.timeout_ctx():\n                            req = next(parser)" in source
    run = inspect.getsource(ggevent.GeventWorker.run)
    assert "while self.alive:" in run and "server.pool.free_count() != server.pool.size" in run
    assert "super().handle(listener, client, addr)" in inspect.getsource(ggevent.GeventWorker.handle)


def _get(port: int, path: str = "/") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return sock


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"{}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("patched", [True, False], ids=["patched", "stock"])
def test_a_stopping_gateway_closes_idle_keepalive_connections_and_finishes_requests(tmp_path, patched):
    """With the patch a stop ends an idle keep-alive connection at once, and a request in flight
    still gets its answer; stock gunicorn waits for the idle one until the graceful timeout."""
    from tests.harness import free_port

    port, graceful = free_port(), 6
    # patched: gunicorn's --keep-alive (2 s) for a first request, TT_GATEWAY_KEEPALIVE (75 s) between
    config = ["--config", "python:gateway.gunicorn_conf"] if patched else ["--keep-alive", "75"]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *config, "--worker-class", "gevent", "--workers", "1",
         "--graceful-timeout", str(graceful), "--bind", f"127.0.0.1:{port}",
         "--no-control-socket", "tests.slow_wsgi:app"],
        cwd=ROOT, env={**os.environ, "TT_METRICS_DIR": str(tmp_path)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                idle = _get(port)
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        assert _answer(idle).startswith(b"HTTP/1.1 200")  # now idle, kept alive
        slow = _get(port, "/?sleep=1.5")
        time.sleep(0.3)
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert _answer(slow).startswith(b"HTTP/1.1 200")  # in flight: finished
        server.wait(timeout=graceful + 10)
        took = time.monotonic() - started
        idle.settimeout(1)
        assert idle.recv(10) == b""  # closed by the server
    finally:
        server.kill()
    if patched:
        assert took < graceful - 1.5, took
    else:
        assert took >= graceful - 0.2, took  # the patch is still needed


# --- nameko ------------------------------------------------------------------------------------

class FailingConsumer:
    def handle_result(self, message, result, exc_info):
        raise OSError("broker gone")


def _entrypoint(cls):
    entry = cls()
    entry.rpc_consumer = FailingConsumer()
    entry.method_name = "work"
    return entry


def test_stock_rpc_lets_a_publish_error_escape_and_ours_survives_it():
    import nameko.rpc

    with pytest.raises(OSError):  # still nameko's behaviour: the patch is still needed
        _entrypoint(nameko.rpc.Rpc).handle_result(object(), None, {"ok": True}, None)
    rpc_class, _ = patches._nameko_classes()
    assert issubclass(rpc_class, nameko.rpc.Rpc)
    assert _entrypoint(rpc_class).handle_result(object(), None, {"ok": True}, None) == ({"ok": True}, None)


def test_rpc_decorator_marks_an_entrypoint_of_our_class():
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

    def work(self):
        return 1

    decorated = patches.rpc(work)
    rpc_class, _ = patches._nameko_classes()
    (ext,) = getattr(decorated, ENTRYPOINT_EXTENSIONS_ATTR)
    assert type(ext) is rpc_class


class Message:
    properties = {"content_type": "application/json", "reply_to": "reply-queue", "correlation_id": "c1"}


def test_responder_publishes_through_publisher_cls_and_replies_are_transient_unconfirmed():
    import nameko.rpc
    from nameko.amqp.publish import Publisher

    made = []

    class Recorder:
        def __init__(self, amqp_uri, **kwargs):
            made.append(self)

        def publish(self, payload, **kwargs):
            self.payload, self.kwargs = payload, kwargs

    class Responder(nameko.rpc.Responder):
        publisher_cls = Recorder

    Responder("memory://", "tt-rpc", "json", Message()).send_response({"ok": True}, None)
    assert len(made) == 1 and made[0].payload == {"result": {"ok": True}, "error": None}
    assert made[0].kwargs["routing_key"] == "reply-queue"

    _, reply_publisher = patches._nameko_classes()
    assert issubclass(reply_publisher, Publisher)
    publisher = reply_publisher("memory://")
    assert publisher.use_confirms is False and publisher.delivery_mode == 1
    assert "self.use_confirms" in inspect.getsource(Publisher.publish)  # the class attributes are read


def test_apply_service_patches_sets_publisher_and_queue_names(monkeypatch):
    import nameko.rpc
    from nameko.containers import ServiceContainer

    monkeypatch.setattr(nameko.rpc.Responder, "publisher_cls", nameko.rpc.Responder.publisher_cls)
    monkeypatch.setattr(nameko.rpc, "RPC_QUEUE_TEMPLATE", nameko.rpc.RPC_QUEUE_TEMPLATE)
    patches.apply_service_patches("tt-test.{}")
    assert nameko.rpc.Responder.publisher_cls is patches._nameko_classes()[1]

    class Service:
        name = "svc"

        @patches.rpc
        def work(self):
            return 1

    container = ServiceContainer(Service, {"AMQP_URI": "memory://", "rpc_exchange": "tt-test"})
    (consumer,) = [ext for ext in container.extensions if isinstance(ext, nameko.rpc.RpcConsumer)]
    consumer.setup()  # declares nothing yet: only names the queue
    assert consumer.queue.name == "tt-test.svc"


def _rpc_consumer(config: dict, entrypoint=None):
    import nameko.rpc
    from nameko.containers import ServiceContainer

    decorate = entrypoint or patches.rpc

    class Service:
        name = "svc"

        @decorate
        def work(self):
            return 1

    container = ServiceContainer(Service, {"AMQP_URI": "memory://", "rpc_exchange": "tt-test", **config})
    (consumer,) = [ext for ext in container.extensions if isinstance(ext, nameko.rpc.RpcConsumer)]
    consumer.setup()
    return consumer


def test_service_queues_are_declared_with_the_configured_arguments_and_stock_nameko_ignores_them():
    from nameko.rpc import rpc as stock_rpc

    from tracker.patches import QUEUE_ARGUMENTS_KEY

    quorum = {QUEUE_ARGUMENTS_KEY: {"x-queue-type": "quorum"}}
    queue = _rpc_consumer(quorum).queue
    assert queue.queue_arguments == {"x-queue-type": "quorum"}
    # what a quorum queue must be, and what nameko's own declaration still gives
    assert queue.durable and not queue.exclusive and not queue.auto_delete
    assert _rpc_consumer({QUEUE_ARGUMENTS_KEY: {}}).queue.queue_arguments is None  # classic: as before
    # stock nameko declares the same queue without them: the patch is still needed
    assert _rpc_consumer(quorum, stock_rpc).queue.queue_arguments is None


def test_the_queue_arguments_reach_the_declaration_kombu_sends(monkeypatch):
    """kombu declares the Queue nameko built, with ``queue_arguments``, on each (re)connection
    (the consumer's ``declare``): so a failover re-declares a quorum queue as one."""
    from kombu import Connection, Consumer

    from tracker.patches import QUEUE_ARGUMENTS_KEY

    queue = _rpc_consumer({QUEUE_ARGUMENTS_KEY: {"x-queue-type": "quorum"}}).queue
    declared = []
    with Connection("memory://") as conn:
        channel = conn.channel()
        monkeypatch.setattr(channel, "queue_declare", lambda **kw: declared.append(kw) or (queue.name, 0, 0))
        Consumer(channel, queues=[queue], auto_declare=True)
    assert declared and declared[0]["arguments"] == {"x-queue-type": "quorum"}
    assert declared[0]["durable"] is True and declared[0]["exclusive"] is False


def test_a_service_calling_another_gets_a_reply_queue_that_is_not_durable_and_stock_nameko_does_not():
    """A durable reply queue is stuck on its broker node while that node is down (patches.rpc_proxy)."""
    import nameko.rpc
    from nameko.containers import ServiceContainer

    def listener(proxy) -> object:
        class Service:
            name = "caller"
            other = proxy

        container = ServiceContainer(Service, {"AMQP_URI": "memory://", "rpc_exchange": "tt-test"})
        (found,) = [ext for ext in container.extensions if isinstance(ext, nameko.rpc.ReplyListener)]
        found.setup()
        return found.queue

    ours = listener(patches.rpc_proxy("other"))
    assert ours.durable is False and ours.queue_arguments == {"x-expires": nameko.rpc.RPC_REPLY_QUEUE_TTL}
    assert ours.name.startswith("rpc.reply-caller-")
    assert listener(nameko.rpc.RpcProxy("other")).durable is True  # still nameko's: the patch is needed


def test_broker_passwords_are_hidden_in_every_url_of_a_multi_node_uri(monkeypatch):
    import nameko.messaging
    import nameko.rpc
    from nameko.utils import sanitize_url

    uri = "amqp://tt:s3cret@mq-0:5672/;amqp://tt:s3cret@mq-1:5672/;amqp://tt:s3cret@mq-2:5672/"
    assert "s3cret" in sanitize_url(uri)  # nameko's own hides the first one only: the patch is needed
    assert "s3cret" not in patches.sanitize_urls(uri) and patches.sanitize_urls(uri).count("mq-") == 3
    monkeypatch.setattr(nameko.messaging, "sanitize_url", nameko.messaging.sanitize_url)
    monkeypatch.setattr(nameko.rpc, "RPC_QUEUE_TEMPLATE", nameko.rpc.RPC_QUEUE_TEMPLATE)
    monkeypatch.setattr(nameko.rpc.Responder, "publisher_cls", nameko.rpc.Responder.publisher_cls)
    patches.apply_service_patches("tt-test.{}")
    assert nameko.messaging.sanitize_url is patches.sanitize_urls  # what on_connection_error calls
    assert "sanitize_url(self.amqp_uri)" in inspect.getsource(nameko.messaging.QueueConsumer.on_connection_error)


def _watched_container():
    from nameko.containers import ServiceContainer

    class Service:
        name = "watched"

        @patches.rpc
        def work(self):
            return 1

    container = ServiceContainer(Service, {"AMQP_URI": "memory://"})

    class Runner:
        containers = [container]

    return container, Runner()


def test_the_consumer_internals_consume_watch_reads_still_exist():
    from kombu.mixins import ConsumerMixin
    from nameko.messaging import QueueConsumer

    container, runner = _watched_container()
    watch = patches.ConsumeWatch(runner)
    ((_, rpc_consumer, qc),) = watch.rpc
    assert isinstance(qc, QueueConsumer) and isinstance(qc, ConsumerMixin)
    assert qc._consumers == {} and qc._gt is None and not qc._consumers_ready.ready()
    assert callable(qc._cancel_consumers_if_requested) and qc.should_stop is False
    assert container._worker_threads == {}
    assert "self.on_iteration()" in inspect.getsource(ConsumerMixin.consume)  # the hook replaced
    rpc_consumer.setup()
    assert watch.problem() == f"connecting to the broker ({rpc_consumer.queue.name})"


def test_consume_watch_holds_the_connection_while_workers_run_and_stock_nameko_does_not():
    container, runner = _watched_container()
    qc = patches.ConsumeWatch(runner).rpc[0][2]
    container._worker_threads["in flight"] = object()
    qc.on_iteration()
    assert qc.should_stop is False  # a worker still has to acknowledge
    container._worker_threads.clear()
    qc.on_iteration()
    assert qc.should_stop is True

    stock_container, stock_runner = _watched_container()
    (stock_qc,) = {ext.queue_consumer for ext in stock_container.extensions if hasattr(ext, "queue_consumer")}
    stock_container._worker_threads["in flight"] = object()
    stock_qc.on_iteration()
    assert stock_qc.should_stop is True  # still nameko's behaviour: the patch is still needed
