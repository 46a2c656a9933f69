"""An HTTPS endpoint for tests: serves TLS with the certificate and key given as argv[1] and
argv[2] (tests/fixtures/tls, issued by a private test CA), appends one JSON line per request
(method, path and body length) to the file given as argv[3]. Answers 200 with `{}`, or, for a
path listed in the optional JSON file argv[4] (`{"/path": answer}`), with that answer; a GET of
an unlisted path gets 404. Prints its port."""
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

CERT, KEY, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
ANSWERS = {}
if len(sys.argv) > 4:
    with open(sys.argv[4]) as f:
        ANSWERS = json.load(f)


class Handler(BaseHTTPRequestHandler):
    def answer(self, method, length):
        with open(OUT, "a") as f:
            f.write(json.dumps({"method": method, "path": self.path, "length": length}) + "\n")
        if self.path in ANSWERS:
            status, body = 200, json.dumps(ANSWERS[self.path]).encode()
        elif method == "GET":
            status, body = 404, b'{"error": "not found"}'
        else:
            status, body = 200, b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.answer("POST", len(body))

    def do_GET(self):
        self.answer("GET", 0)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
