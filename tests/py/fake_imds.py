"""A stand-in EC2 instance metadata service (IMDSv2) on 127.0.0.1 for tests.

fake_imds.py PORTFILE: serves PUT /latest/api/token and, with that token,
GET /latest/meta-data/instance-id and /placement/region; writes its port
to PORTFILE and exits after 120 s at most.
"""
import http.server
import sys
import threading

TOKEN = "tok-123"
DATA = {"/latest/meta-data/instance-id": "i-0abc123", "/latest/meta-data/placement/region": "eu-west-3"}


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_PUT(self):
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self.reply(200, TOKEN)
        else:
            self.reply(400, "bad token request")

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self.reply(401, "no token")
        elif self.path in DATA:
            self.reply(200, DATA[self.path])
        else:
            self.reply(404, "not found")


srv = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(srv.server_address[1]))
threading.Timer(120, srv.shutdown).start()
srv.serve_forever()
