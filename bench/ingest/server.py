"""A paginated JSON API over the benchmark's records, run in its own process.

    .venv/bin/python bench/ingest/server.py DATA_DIR [--page-size 1000] [--port 0]

Every page is serialized once at startup from the JSON-lines files (their lines are already
JSON), so a request costs a dictionary lookup and one socket write. Pages use cursor
pagination: `GET /orders?cursor=<opaque>` returns `{"data": [...], "meta": {"next": <cursor or
null>}}`. `GET /stats` returns the server's own CPU seconds, so a benchmark can report them
apart from the client's. Prints `listening on http://127.0.0.1:<port>` once it is ready.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import data


def paginate(files: list[Path], size: int) -> tuple[list[bytes], dict[str, int]]:
    """Page bodies in order, and the page index each cursor stands for."""
    bodies: list[bytes] = []
    cursors: dict[str, int] = {}
    chunks = list(_chunks(files, size))
    for index, lines in enumerate(chunks):
        last = index == len(chunks) - 1
        cursor = None if last else _cursor(index + 1)
        if cursor is not None:
            cursors[cursor] = index + 1
        meta = json.dumps({"next": cursor}).encode()
        bodies.append(b'{"data":[' + b",".join(lines) + b'],"meta":' + meta + b"}")
    return bodies, cursors


def _chunks(files: list[Path], size: int) -> Iterator[list[bytes]]:
    pending: list[bytes] = []
    for path in files:
        with path.open("rb") as handle:
            for line in handle:
                pending.append(line.rstrip(b"\n"))
                if len(pending) == size:
                    yield pending
                    pending = []
    if pending or not files:
        yield pending


def _cursor(index: int) -> str:
    # opaque to clients, as real APIs make them
    return base64.urlsafe_b64encode(f"page:{index}".encode()).decode().rstrip("=")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection for the whole run
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: Server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/orders":
            cursor = parse_qs(url.query).get("cursor", [None])[0]
            index = 0 if cursor is None else self.server.cursors.get(cursor)
            if index is None:
                self._send(400, b'{"error":"unknown cursor"}')
            else:
                self.server.requests += 1
                self._send(200, self.server.pages[index])
        elif url.path == "/stats":
            stats = {"cpu_s": time.process_time(), "requests": self.server.requests}
            self._send(200, json.dumps(stats).encode())
        else:
            self._send(404, b'{"error":"not found"}')

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, pages: list[bytes], cursors: dict[str, int]):
        super().__init__(("127.0.0.1", port), Handler)
        self.pages = pages
        self.cursors = cursors
        self.requests = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a folder written by data.py")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args()
    pages, cursors = paginate(data.jsonl_files(args.data), args.page_size)
    server = Server(args.port, pages, cursors)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
