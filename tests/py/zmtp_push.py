"""A foreign ZeroMQ PUSH peer for tests, speaking ZMTP 3.0 on a raw socket
(no pyzmq in Debian's python3 here), so a test can send what no tool sends.

zmtp_push.py ipc:///PATH|tcp://HOST:PORT end [RECORDS]
    send one `end` record ({"kind": "end", "producers": 1}, 21 bytes; with
    RECORDS, also "records": RECORDS)
zmtp_push.py ENDPOINT big MB
    announce one message of MB megabytes and send it; prints how many
    bytes went out before the peer closed the connection
"""
import socket
import struct
import sys

import msgpack


def connect(ep):
    if ep.startswith("ipc://"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(ep[len("ipc://"):])
    else:
        host, port = ep[len("tcp://"):].rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    greeting = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\x00" + bytes(31)
    s.sendall(greeting)
    got = b""
    while len(got) < 64:
        chunk = s.recv(64 - len(got))
        if not chunk:
            sys.exit("zmtp_push.py: the peer closed during the greeting")
        got += chunk
    ready = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 4) + b"PUSH"
    s.sendall(b"\x04" + bytes([len(ready)]) + ready)
    return s


def frame_header(n):
    return b"\x00" + bytes([n]) if n < 256 else b"\x02" + struct.pack(">Q", n)


def main():
    ep, what = sys.argv[1], sys.argv[2]
    s = connect(ep)
    if what == "end":
        rec = {"kind": "end", "producers": 1}
        if len(sys.argv) > 3:
            rec["records"] = int(sys.argv[3])
        body = msgpack.packb(rec)
        s.sendall(frame_header(len(body)) + body)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(2)
        try:
            s.recv(1024)  # the peer's READY; wait for it to read ours
        except OSError:
            pass
    elif what == "big":
        n = int(float(sys.argv[3]) * 1e6)
        sent = 0
        block = bytes(1 << 20)
        try:
            s.sendall(frame_header(n))
            while sent < n:
                sent += s.send(block[: min(len(block), n - sent)])
        except OSError:
            pass
        print(sent)
    s.close()


main()
