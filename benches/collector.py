#!/usr/bin/env python3
"""A minimal OPA decision log collector for benches/load.sh: takes POSTs of gzip'd JSON
arrays, answers 200, and counts the distinct decision ids it took (GET /count).

    python3 benches/collector.py PORT
"""
import gzip
import http.server
import json
import sys
import threading

PORT = int(sys.argv[1])
SEEN = set()
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        events = json.loads(gzip.decompress(body))
        with LOCK:
            SEEN.update(e["decision_id"] for e in events)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        with LOCK:
            body = str(len(SEEN)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
