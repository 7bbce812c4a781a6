"""A real local HTTP receiver for notification tests: records every POST, can be stopped and started again on
the same port (a receiver that is down, then back), and can hold its answers (a slow receiver)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from release_readiness_dev.localcluster import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.arrived = threading.Condition()
        self.released = threading.Event()
        self.released.set()
        self._server: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.released.wait(120)  # a slow receiver answers only once released
                with receiver.arrived:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: connections are refused until start() again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def hold(self) -> None:
        self.released.clear()

    def release(self) -> None:
        self.released.set()

    def on(self, path: str, transition: str | None = None) -> list[Received]:
        """What arrived on `path` (of one transition: by the JSON body, the ce-type header or the Slack text)."""
        with self.arrived:
            got = [r for r in self.received if r.path == path]
        return [r for r in got if transition is None or transition_of(r) == transition]


def transition_of(r: Received) -> str:
    if "ce-type" in r.headers:
        return r.headers["ce-type"].rsplit(".", 1)[-1]
    body = r.json()
    if "specversion" in body:
        return str(body["type"]).rsplit(".", 1)[-1]
    if "transition" in body:
        return str(body["transition"])
    return str(body["text"]).split("*", 2)[1]  # Slack: "*Transition*: ..."
