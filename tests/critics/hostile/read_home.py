"""Print the contents of files in the user's home: the path given on stdin, then ~/.bashrc."""

import json
import os
import sys

path = json.load(sys.stdin)["path"]
print("home is", os.path.expanduser("~"))
for name in ("/root/.bashrc", path):
    try:
        with open(name) as f:
            print(name, f.read())
    except OSError as e:
        print(name, "unreadable:", e, file=sys.stderr)
with open(path) as f:
    print(f.read())
