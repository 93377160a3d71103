"""A light client of a Gradio app's REST API, for load tests.

Gradio documents a plain-HTTP way to call any named endpoint (the "API" page, ``curl`` examples):

1. ``POST /gradio_api/upload`` (multipart ``files``) for file inputs: the answer lists server paths;
2. ``POST /gradio_api/call/<api_name>`` with ``{"data": [...]}``: the answer is ``{"event_id": ...}``;
3. ``GET /gradio_api/call/<api_name>/<event_id>``: a server-sent event stream of ``generating``
   updates (streamed outputs), ``heartbeat``s, and one ``complete`` (the outputs) or ``error`` event.

:class:`RestClient` does exactly that over one keep-alive ``http.client`` connection, so one
simulated user costs a few milliseconds of CPU per request. ``gradio_client.Client`` costs about
170 ms of CPU per small request on this machine (threads, polling, a new HTTP client per call),
which on a 2-core load test competes with the server and measures the load generator, not the app.
Standard library only.
"""

from __future__ import annotations

import http.client
import json
import mimetypes
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["GradioError", "RestClient", "file_data"]


class GradioError(RuntimeError):
    """The endpoint answered with an ``error`` event (e.g. a ``gr.Error`` message) or a bad status."""


def file_data(server_path: str) -> dict[str, Any]:
    """The JSON value of a file input that was uploaded to ``server_path``."""
    return {"path": server_path, "meta": {"_type": "gradio.FileData"}}


class RestClient:
    """One simulated user: a keep-alive connection to the app at ``url``.

    Args:
        url: the app's root, e.g. ``http://127.0.0.1:7860/``.
        timeout: socket timeout in seconds for every read and connect.
    """

    def __init__(self, url: str, timeout: float = 60.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"RestClient: need an http(s) URL like http://127.0.0.1:7860/, got {url!r}")
        self.prefix = parts.path.rstrip("/") + "/gradio_api"
        conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self._conn = conn_cls(parts.hostname, parts.port, timeout=timeout)
        self.session = uuid.uuid4().hex[:11]

    def set_timeout(self, seconds: float) -> None:
        """Socket timeout for the following reads (and the open connection's)."""
        self._conn.timeout = seconds
        if self._conn.sock is not None:
            self._conn.sock.settimeout(seconds)

    def close(self) -> None:
        """Close the connection; an unfinished event stream is dropped (the server notices)."""
        self._conn.close()

    def __enter__(self) -> RestClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- HTTP ------------------------------------------------------------------------------------

    def _open(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> http.client.HTTPResponse:
        """Send one request and return the response (its body still unread). Reconnects once when
        the server closed the idle keep-alive connection."""
        for attempt in (0, 1):
            try:
                self._conn.request(method, self.prefix + path, body=body, headers=headers or {})
                resp = self._conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._conn.close()
                if attempt:
                    raise
                continue
            if resp.status >= 400:
                detail = resp.read().decode("utf-8", "replace")[:300]
                raise GradioError(f"{method} {self.prefix + path}: HTTP {resp.status}: {detail}")
            return resp
        raise AssertionError("unreachable")

    def _json(
        self,
        method: str,
        path: str,
        payload: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        if payload is not None:
            body = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json"}
        return json.loads(self._open(method, path, body, headers).read())

    # -- API -------------------------------------------------------------------------------------

    def upload(self, path: str | Path) -> dict[str, Any]:
        """Upload one file; returns the JSON value to pass for a file/image input."""
        path = Path(path)
        boundary = uuid.uuid4().hex
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
                f"Content-Type: {mime}\r\n\r\n"
            ).encode()
            + path.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )
        paths = self._json(
            "POST", "/upload", body=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        if not (isinstance(paths, list) and paths and isinstance(paths[0], str)):
            raise GradioError(f"upload of {path.name}: unexpected answer {str(paths)[:200]}")
        return file_data(paths[0])

    def events(self, api_name: str, data: list[Any]) -> Iterator[tuple[str, Any]]:
        """Start ``api_name`` (``"/classify"`` or ``"classify"``) on ``data`` and yield its server-sent
        events as ``(event, decoded data)``: ``("generating", outputs)`` for each streamed update,
        then ``("complete", outputs)``. An ``error`` event raises :class:`GradioError`."""
        name = api_name.lstrip("/")
        event_id = self._json("POST", f"/call/{name}", {"data": data, "session_hash": self.session})["event_id"]
        resp = self._open("GET", f"/call/{name}/{event_id}", headers={"Accept": "text/event-stream"})
        try:
            event, lines = None, []
            while True:
                raw = resp.readline()
                if not raw:
                    raise GradioError(f"{api_name}: the event stream ended without a result")
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    lines.append(line[5:].lstrip())
                elif not line and event is not None:
                    text = "\n".join(lines)
                    value = json.loads(text) if text else None
                    if event == "error":
                        message = value.get("error") if isinstance(value, dict) else value
                        raise GradioError(f"{api_name}: {message or 'the app raised an error'}")
                    if event in ("generating", "complete"):
                        yield event, value
                    if event == "complete":
                        return
                    event, lines = None, []
        finally:
            resp.read()  # drain what is left, so the keep-alive connection can serve the next request

    def predict(self, api_name: str, data: list[Any], on_update: Callable[[float, Any], None] | None = None) -> Any:
        """The outputs of one call; ``on_update(perf_counter_time, outputs)`` sees every streamed
        update as it arrives."""
        for event, value in self.events(api_name, data):
            if on_update is not None and event == "generating":
                on_update(time.perf_counter(), value)
            if event == "complete":
                return value
        raise GradioError(f"{api_name}: no result")
