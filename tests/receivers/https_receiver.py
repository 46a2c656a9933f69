"""An HTTPS endpoint for tests: serves TLS with the certificate and key given as argv[1] and
argv[2] (tests/fixtures/tls, issued by a private test CA), appends one JSON line per POST
(path and body length) to the file given as argv[3], answers 200. Prints its port."""
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

CERT, KEY, OUT = sys.argv[1], sys.argv[2], sys.argv[3]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(OUT, "a") as f:
            f.write(json.dumps({"path": self.path, "length": len(body)}) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(CERT, KEY)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
