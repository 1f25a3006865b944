#!/usr/bin/env python3
"""A minimal model of the 2012 registry.py, as the benchmark's baseline.

What it keeps from the legacy design, because that is what the benchmark
compares against:
  - xmlrpc.server.SimpleXMLRPCServer, single-threaded (the legacy subclassed
    the plain server, no ThreadingMixIn), logRequests=False, allow_none=True;
  - getPeerList(n, ip) as `SELECT prefix, address FROM peers ORDER BY random()
    LIMIT ?` on the registry's SQLite file, one connection opened at start.

What it leaves out: the other methods, the certificate authority, mail, the
IPv6 listener and the check that `ip` is inside the network (none of them is
on the getPeerList path in a way that costs time).

--http11 answers with HTTP/1.1 and keeps connections open. With a
single-threaded server that serves one connection until the client closes it,
so 16 concurrent keep-alive clients mostly wait: the benchmark therefore runs
the legacy default (HTTP/1.0, one request per connection). See
docs/benchmarks.md.

Usage: legacy_registry.py PORT --db DB [--http11]
"""
import argparse
import sqlite3
import sys
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer


class Http11Handler(SimpleXMLRPCRequestHandler):
    protocol_version = "HTTP/1.1"


class LegacyRegistry:
    def __init__(self, db_path):
        self.db = sqlite3.connect(db_path, isolation_level=None)

    def getPeerList(self, n, node_ip):
        assert 0 < n < 1000
        return self.db.execute(
            "SELECT prefix, address FROM peers ORDER BY random() LIMIT ?", (n,)
        ).fetchall()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--db", required=True)
    parser.add_argument("--http11", action="store_true")
    args = parser.parse_args()
    handler = Http11Handler if args.http11 else SimpleXMLRPCRequestHandler
    server = SimpleXMLRPCServer(("127.0.0.1", args.port), requestHandler=handler,
                                logRequests=False, allow_none=True)
    server.register_instance(LegacyRegistry(args.db))
    port = server.server_address[1]
    print(f"legacy registry listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
