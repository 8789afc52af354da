"""Each process stays under a per-process memory limit, but together they do not: six
children each hold 96 MiB (touched) and wait."""

import os
import time

for _ in range(6):
    if os.fork() == 0:
        block = b"\x01" * (96 << 20)
        time.sleep(60)
        os._exit(0)
time.sleep(60)
