#!/usr/bin/env python3
"""A minimal OPA decision log collector for benches/load.sh: takes POSTs of gzip'd JSON
arrays, answers 200, and counts the distinct decision ids it took (GET /count).

It shares the machine's cores with the verdicts it measures, so it does as little as it can:
the ids are found with one regular expression over the decompressed array instead of parsing
every event (verdict writes each event's keys sorted and without spaces, and the load's input
has no `decision_id` of its own).

    python3 benches/collector.py PORT
"""
import http.server
import re
import sys
import threading
import zlib

DECISION_ID = re.compile(rb'"decision_id":"([0-9a-f-]{36})"')

PORT = int(sys.argv[1])
SEEN = set()
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ids = DECISION_ID.findall(zlib.decompress(body, wbits=31))
        with LOCK:
            SEEN.update(ids)
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
