"""A Sentry envelope endpoint for tests: parses each POSTed envelope with sentry-sdk's own
parser and appends one JSON line per item to the file given as argv[1]. Prints its port."""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from sentry_sdk.envelope import Envelope

OUT = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        auth = self.headers.get("X-Sentry-Auth", "")
        ok_path = self.path.startswith("/api/") and self.path.endswith("/envelope/")
        if "sentry_key=" not in auth or not ok_path:
            self.send_response(401)
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
