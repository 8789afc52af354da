"""Print forever, to both streams."""

import sys

line = "x" * 999
while True:
    print(line)
    print(line, file=sys.stderr)
