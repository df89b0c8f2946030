"""api.py - the demo service of the 3 AM incident, in Python (make demo-python).

The same HTTP API as demo/api.c in front of the same database (minidb's line
protocol), written the way the incident's service was: a fixed pool of
connections opened at start-up, checked out and given back by the handlers.

    GET /users/<id>          get_user_data():   the user's name, or 404
    GET /users/<id>/orders   get_user_orders(): the user's order count
    GET /health              no database
    GET /stats               {"pool_size":N,"pool_free":N,"checked_out":N,...}

The bug: on the "user not found" path get_user_data() returns without giving
its connection back.  --fixed runs the corrected handler.

Usage: api.py --db-port N [--port N] [--port-file F] [--pool N] [--workers N]
              [--checkout-timeout-ms N] [--fixed]
Loopback only.  Exits on SIGTERM/SIGINT.
"""
import argparse
import http.server
import json
import signal
import socket
import sys
import threading
import time


class Connection:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.returned = time.monotonic()

    def execute(self, query):
        self.sock.sendall(query.encode() + b"\n")
        while b"\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("database closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()


class Pool:
    def __init__(self, port, size):
        self.size = size
        self.free = [Connection(port) for _ in range(size)]
        self.in_use = set()  # checked out, as real pools keep them (psycopg2's _used)
        self.cv = threading.Condition()
        self.checkouts = self.returns = self.timeouts = 0

    def get_connection(self, deadline):
        with self.cv:
            while not self.free:
                left = deadline - time.monotonic()
                if left <= 0 or not self.cv.wait(left):
                    if not self.free:
                        self.timeouts += 1
                        return None
            self.checkouts += 1
            conn = self.free.pop()
            self.in_use.add(conn)
            return conn

    def release(self, conn):
        with self.cv:
            conn.returned = time.monotonic()
            self.in_use.discard(conn)
            self.free.append(conn)
            self.returns += 1
            self.cv.notify()

    def keepalive(self):
        # ping connections idle in the pool for more than 0.5 s, as real pools do
        while True:
            time.sleep(0.2)
            with self.cv:
                now = time.monotonic()
                idle = [c for c in self.free if now - c.returned > 0.5]
                for c in idle:
                    self.free.remove(c)
            for c in idle:
                c.execute("PING")
                self.release(c)


db = None
FIXED = False
TIMEOUT = 1.0


def get_user_data(user_id, deadline):
    conn = db.get_connection(deadline)
    if conn is None:
        return 503, {"error": "no database connection available"}
    result = conn.execute("USER %d" % user_id)  # LW-MARK: demo.py_leak_use
    if result == "NOTFOUND":
        if FIXED:
            db.release(conn)
        return 404, {"error": "user %d not found" % user_id}  # BUG: conn never released
    db.release(conn)
    return 200, {"id": user_id, "name": result[3:]}


def get_user_orders(user_id, deadline):
    conn = db.get_connection(deadline)
    if conn is None:
        return 503, {"error": "no database connection available"}
    try:
        result = conn.execute("ORDERS %d" % user_id)
    finally:
        db.release(conn)
    return 200, {"id": user_id, "orders": int(result[3:] or 0)}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        deadline = time.monotonic() + TIMEOUT
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "users" and parts[1].isdigit():
            status, body = get_user_data(int(parts[1]), deadline)
        elif len(parts) == 3 and parts[0] == "users" and parts[1].isdigit() and parts[2] == "orders":
            status, body = get_user_orders(int(parts[1]), deadline)
        elif parts == ["health"]:
            status, body = 200, {"ok": True}
        elif parts == ["stats"]:
            with db.cv:
                status, body = 200, {"pool_size": db.size, "pool_free": len(db.free),
                                     "checked_out": db.size - len(db.free), "checkouts": db.checkouts,
                                     "returns": db.returns, "checkout_timeouts": db.timeouts}
        else:
            status, body = 404, {"error": "no such endpoint"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, *args):
        pass


def main():
    global db, FIXED, TIMEOUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--db-port", type=int, required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--pool", type=int, default=16)
    ap.add_argument("--workers", type=int, default=16)  # accepted for api.c's command line
    ap.add_argument("--checkout-timeout-ms", type=int, default=1000)
    ap.add_argument("--fixed", action="store_true")
    a = ap.parse_args()
    FIXED, TIMEOUT = a.fixed, a.checkout_timeout_ms / 1000.0
    db = Pool(a.db_port, a.pool)
    threading.Thread(target=db.keepalive, daemon=True).start()
    http.server.ThreadingHTTPServer.daemon_threads = True
    http.server.ThreadingHTTPServer.request_queue_size = 512
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    port = srv.server_address[1]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("api.py%s listening on 127.0.0.1:%d (pid %d, pool of %d, %d ms checkout timeout)"
          % (" (fixed)" if FIXED else "", port, __import__("os").getpid(), a.pool, a.checkout_timeout_ms),
          flush=True)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        __import__("os").replace(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
