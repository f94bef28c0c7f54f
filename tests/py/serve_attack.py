"""The attacks of issue #23 items 5-9 together against one serve, while a
normal client keeps asking: does it stay answered, and memory bounded?

serve_attack.py PORT PID FACE NOISE SECONDS [key=value ...]
  FACE: a normal face picture; NOISE: a face-free noise photo (item 7).
  Keys (defaults in brackets): addresses [17] and per_address [32]: a
  slowloris from 127.0.0.10 onwards, each connection trickling a header byte
  every 0.5 s and reconnecting when closed (item 8); uploads [64] and
  upload_bytes [8 MiB]: that many concurrent uploads of the noise photo
  padded to that size, repeated (item 9); noise [2]: clients posting NOISE
  with face=on in a loop (item 7); bombs [1]: clients posting a progressive
  scan bomb and a JPEG that declares 8000 x 8000 (items 5, 6).
  The normal client posts FACE and gets /api/health once a second.

Prints one JSON line: the normal requests' and health checks' statuses and
worst latency, the attackers' counts, the server's peak RSS during the
attack and its RSS 3 s after.
"""
import http.client
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import hostile_jpeg  # noqa: E402

port, pid, face_path, noise_path, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], \
    float(sys.argv[5])
opt = {"addresses": 17, "per_address": 32, "uploads": 64, "upload_bytes": 8 << 20, "noise": 2, "bombs": 1}
for kv in sys.argv[6:]:
    k, v = kv.split("=")
    opt[k] = int(v)
face, noise = open(face_path, "rb").read(), open(noise_path, "rb").read()
bombs = [hostile_jpeg.scans(6000, True), hostile_jpeg.huge(8000, 8000, False)]
stop = threading.Event()
lock = threading.Lock()
counts = {}


def count(key):
    with lock:
        counts[key] = counts.get(key, 0) + 1


def post(body, query, timeout=60, source=None):
    """(status, seconds, headers); status 0 when the connection failed."""
    t = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                       source_address=(source, 0) if source else None)
        c.request("POST", "/api/translate?" + query, body=body, headers={"Content-Type": "image/jpeg"})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, time.monotonic() - t, r
    except OSError:
        return 0, time.monotonic() - t, None


def get(path, timeout=30):
    t = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, time.monotonic() - t
    except OSError:
        return 0, time.monotonic() - t


def slowloris(addr):
    socks = []
    while not stop.is_set():
        while len(socks) < opt["per_address"] and not stop.is_set():
            s = socket.socket()
            s.settimeout(1)
            try:
                s.bind((addr, 0))
                s.connect(("127.0.0.1", port))
                s.sendall(b"POST /api/translate?direction=young2old HTTP/1.1\r\nHost: x\r\n")
                s.setblocking(False)
                socks.append(s)
                count("slow_opened")
            except OSError:
                s.close()
                count("slow_refused")
                break
        for s in list(socks):
            try:
                gone = s.recv(4096) == b""
            except BlockingIOError:
                gone = False
            except OSError:
                gone = True
            if not gone:
                try:
                    s.send(b"X")
                except OSError:
                    gone = True
            if gone:
                count("slow_closed")
                socks.remove(s)
                s.close()
        stop.wait(0.5)
    for s in socks:
        s.close()


def loop(body, query, key, source=None):
    while not stop.is_set():
        status, _, _ = post(body, query, source=source)
        count("%s_%d" % (key, status))
        if status in (0, 503):
            stop.wait(0.2)


big = noise + bytes(max(0, opt["upload_bytes"] - len(noise)))
threads = [threading.Thread(target=slowloris, args=("127.0.0.%d" % (10 + i),)) for i in range(opt["addresses"])]
threads += [threading.Thread(target=loop, args=(big, "direction=young2old&face=off", "upload",
                                                "127.0.1.%d" % (1 + i % 200))) for i in range(opt["uploads"])]
threads += [threading.Thread(target=loop, args=(noise, "direction=young2old&face=on", "noise"))
            for _ in range(opt["noise"])]
threads += [threading.Thread(target=loop, args=(b, "direction=old2young", "bomb"))
            for b in bombs for _ in range(opt["bombs"])]


def rss():
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


peak = [0]


def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], rss())
        stop.wait(0.2)


threads.append(threading.Thread(target=sample))
rss_before = rss()
for t in threads:
    t.daemon = True
    t.start()
time.sleep(min(2, seconds / 4))  # let the attack take hold
normal, health = [], []
end = time.monotonic() + seconds
while time.monotonic() < end:
    status, dt, _ = post(face, "direction=young2old", timeout=30)
    normal.append((status, round(dt, 3)))
    health.append(get("/api/health"))
    time.sleep(1)
stop.set()
for t in threads:
    t.join(timeout=70)
time.sleep(3)
print(json.dumps({
    "normal_status": sorted({s for s, _ in normal}), "normal_n": len(normal),
    "normal_max_s": max(d for _, d in normal), "normal_median_s": sorted(d for _, d in normal)[len(normal) // 2],
    "health_status": sorted({s for s, _ in health}), "health_max_s": round(max(d for _, d in health), 3),
    "rss_before_mb": rss_before, "rss_peak_mb": peak[0], "rss_after_mb": rss(), "attackers": counts}))
