"""A Sentry envelope endpoint for tests: parses each POSTed envelope with sentry-sdk's own
parser and appends one JSON line per item to the file given as argv[1]. Prints its port.

An optional argv[2] is a rate limit, as JSON: {"seconds": S, "status": 429, "headers": {...}}.
Every request within S seconds of the first is answered with that status and those headers and
written as one line of type "limited"; later ones are accepted. Every line has "received_at"
(Unix seconds)."""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from sentry_sdk.envelope import Envelope

OUT = sys.argv[1]
LIMIT = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
FIRST = []


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        auth = self.headers.get("X-Sentry-Auth", "")
        ok_path = self.path.startswith("/api/") and self.path.endswith("/envelope/")
        if "sentry_key=" not in auth or not ok_path:
            self.send_response(401)
            self.end_headers()
            return
        now = time.time()
        if not FIRST:
            FIRST.append(now)
        if LIMIT and now - FIRST[0] < LIMIT["seconds"]:
            with open(OUT, "a") as f:
                f.write(json.dumps({"type": "limited", "received_at": now}) + "\n")
            self.send_response(LIMIT["status"])
            for k, v in LIMIT["headers"].items():
                self.send_header(k, v)
            self.end_headers()
            return
        env = Envelope.deserialize(body)
        with open(OUT, "a") as f:
            for item in env.items:
                f.write(json.dumps({
                    "path": self.path,
                    "auth": auth,
                    "envelope": env.headers,
                    "type": item.type,
                    "payload": json.loads(item.payload.get_bytes()),
                    "parsed_as_json": item.payload.json is not None,
                    "received_at": now,
                }) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
