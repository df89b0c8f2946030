# Python socket churn: a loopback listener thread accepts and closes; the
# main thread opens, connects and closes N sockets from a few Python frames.
# Prints the elapsed seconds of the loop.
import socket, sys, threading, time
N = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(512)
def acceptor():
    while True:
        c, _ = srv.accept()
        c.close()
threading.Thread(target=acceptor, daemon=True).start()
addr = srv.getsockname()
def query(i):
    s = socket.create_connection(addr)
    s.sendall(b"x")
    s.close()
def handler(n):
    for i in range(n):
        query(i)
t0 = time.perf_counter()
handler(N)
print("%.4f" % (time.perf_counter() - t0))
