# Python allocation-heavy: objects, lists, dicts and bytes made and dropped
# in a few Python frames (pymalloc serves the small ones, malloc the big).
# Prints the elapsed seconds of the loop.
import sys, time
N = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
def make(i):
    d = {"id": i, "name": "user%d" % i, "tags": [i, i + 1, i + 2]}
    b = bytes(1024 + (i % 8) * 4096)
    return d, b
def handler(n):
    keep = []
    for i in range(n):
        keep.append(make(i))
        if len(keep) > 64:
            keep.clear()
t0 = time.perf_counter()
handler(N)
print("%.4f" % (time.perf_counter() - t0))
