"""A webhook receiver with nothing but the standard library and `flywheel.webhooks`.

    FLYWHEEL_WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py 8000

Each delivery is checked (signature and timestamp) before it is trusted; a failed check
answers 400 and the delivery is not processed. ``webhook-id`` is stable per event and
endpoint, so a receiver that may see a retry keeps the ids it has processed.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Callable, Set, Type

from flywheel.webhooks import WebhookVerificationError, verify


def make_handler(secret: str, on_event: Callable[[Any], None]) -> Type[BaseHTTPRequestHandler]:
    seen: Set[str] = set()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            try:
                event = verify(self.headers, body, secret)  # the raw bytes, as received
            except WebhookVerificationError as e:
                self.send_response(400)
                self.end_headers()
                self.wfile.write(str(e).encode())
                return
            msg_id = self.headers["webhook-id"]
            if msg_id not in seen:  # a retried delivery is processed once
                seen.add(msg_id)
                on_event(event)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Receiver


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    handler = make_handler(os.environ["FLYWHEEL_WEBHOOK_SECRET"], lambda e: print(json.dumps(e), flush=True))
    HTTPServer(("127.0.0.1", port), handler).serve_forever()
