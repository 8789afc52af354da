"""Native crashes (a segfault in llama.cpp, torch, a CUDA driver) print where they happened and
how to report them, instead of a bare ``Segmentation fault``.

Python's faulthandler prints the Python stack of a crashing process, but nothing after it. So
on Linux the CLI forks a small watcher at start: faulthandler writes into a pipe the watcher
reads; when the CLI exits normally the pipe closes empty and the watcher leaves silently; when
it crashes, the watcher prints the stack and then :data:`HELP`.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading

HELP = (
    "criticlab crashed in native code (above: where). Run `criticlab doctor`, which checks "
    "each engine in a child process, and report the crash with `criticlab doctor --json` and "
    "the lines above."
)


def install() -> None:
    """Enable faulthandler for this process, with the watcher where ``fork`` is safe (Linux,
    called before any thread starts). Does nothing if faulthandler is already on (pytest,
    ``python -X faulthandler``)."""
    if faulthandler.is_enabled():
        return
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # a stderr without a file descriptor
        return
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        faulthandler.enable(file=sys.stderr, all_threads=True)
        return
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the watcher
        os.close(write_fd)
        _watch(read_fd, stderr_fd)
    os.close(read_fd)
    os.set_inheritable(write_fd, False)
    crash_file = os.fdopen(write_fd, "w", closefd=False)
    faulthandler.enable(file=crash_file, all_threads=True)
    _keep.append(crash_file)


_keep: list[object] = []  # the pipe's file object lives as long as the process


def _watch(read_fd: int, stderr_fd: int) -> None:
    """The watcher: ignore the signals meant for the CLI (Ctrl-C reaches the whole process
    group), wait for the pipe to close, and pass on what the crash wrote, with :data:`HELP`."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTSTP):
        signal.signal(sig, signal.SIG_IGN)
    chunks = []
    try:
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        if chunks:
            os.write(stderr_fd, b"".join(chunks) + b"\n" + HELP.encode() + b"\n")
    finally:
        os._exit(0)
