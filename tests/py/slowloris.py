"""A slow HTTP client for tests: many connections that send a request a
little at a time, as a slowloris attack does.

slowloris.py HOST PORT N SECONDS MODE READY_FILE
  opens N connections from HOST's address (all from one client address),
  sends the start of a request on each, then for SECONDS either sends one
  more header byte on each every 0.5 s (MODE trickle: never idle) or sends
  nothing more (MODE silent).  It touches READY_FILE once the connections
  are open, and at the end prints one JSON line: how many connections the
  server closed, and after how many seconds the first and the last closed.
"""
import json
import socket
import sys
import time

host, port, n, seconds, mode, ready = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), \
    sys.argv[5], sys.argv[6]
t0 = time.monotonic()
socks, closed_at = [], []
for _ in range(n):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        s.setblocking(False)
        socks.append(s)
    except OSError:
        closed_at.append(time.monotonic() - t0)
open(ready, "w").close()


def alive(s):
    """False once the server has closed the connection."""
    try:
        return s.recv(4096) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


end = t0 + seconds
while socks and time.monotonic() < end:
    for s in list(socks):
        ok = alive(s)
        if ok and mode == "trickle":
            try:
                s.send(b"X")
            except OSError:
                ok = False
        if not ok:
            closed_at.append(time.monotonic() - t0)
            socks.remove(s)
            s.close()
    time.sleep(0.5 if mode == "trickle" else 0.1)
print(json.dumps({"opened": n, "closed": len(closed_at), "open": len(socks),
                  "first_closed": min(closed_at, default=None), "last_closed": max(closed_at, default=None)}))
for s in socks:
    s.close()
