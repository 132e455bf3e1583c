"""Webhook receivers for the tests: HTTP servers on 127.0.0.1 (a free port) that the test
server delivers to, each serving in a thread for the length of a ``with`` block."""

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type

#: What a recorder keeps of each request: its headers (names in lower case) and raw body.
Request = Tuple[Dict[str, str], bytes]


class _NotYet(BaseHTTPRequestHandler):
    """Answers 503 until the test puts the real handler in place (a webhook's secret is
    only known once it is created, and creating it needs the receiver's URL)."""

    def do_POST(self) -> None:
        self.send_response(503)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def recorder(requests: List[Request]) -> Type[BaseHTTPRequestHandler]:
    """A handler that keeps every request as received and answers 204, checking nothing."""

    class Recorder(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Recorder


@contextmanager
def receiving(handler: Optional[Type[BaseHTTPRequestHandler]] = None) -> Iterator[HTTPServer]:
    """A server bound and serving now; set ``.RequestHandlerClass`` to change its handler."""
    httpd = HTTPServer(("127.0.0.1", 0), handler or _NotYet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def url(httpd: HTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/hook"
