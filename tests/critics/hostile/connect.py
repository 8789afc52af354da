"""Connect to 127.0.0.1 on the port given on stdin and send a few bytes."""

import json
import socket
import sys

port = json.load(sys.stdin)["port"]
with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
    conn.sendall(b"escaped")
print("connected")
