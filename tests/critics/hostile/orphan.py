"""Leave a daemon behind: a grandchild in its own session that outlives the program."""

import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
    os._exit(0)
os.wait()
print("left a daemon behind")
