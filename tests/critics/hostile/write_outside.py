"""Write a file at the path given on stdin (meant to be outside the sandbox's directory)."""

import json
import sys

path = json.load(sys.stdin)["path"]
with open(path, "w") as f:
    f.write("escaped")
print("wrote", path)
