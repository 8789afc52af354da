"""Run untrusted Python code in a sandbox: a separate interpreter in throwaway Linux namespaces,
under resource limits, with its output capped. This module is the parent's side; the launcher
that runs inside the namespaces is :mod:`criticlab.critics.sandbox_launch`, run as a script
(``python -I -S sandbox_launch.py CONFIG``).

How a run is isolated (Linux):

* ``unshare`` (util-linux) starts the launcher in new mount, PID and IPC namespaces and, unless
  ``network="allow"``, a new network namespace, whose only interface is a downed loopback: no
  connection can be made, not even to 127.0.0.1 of the host.
* The launcher builds a minimal root on a size-limited tmpfs and the program is chrooted into
  it: read-only, nosuid binds of /usr, /lib*, /bin, /sbin and the interpreter's prefix, a few
  /etc files, /dev/null and friends, a private /proc, /tmp and the working directory /sandbox
  (HOME and TMPDIR are inside it). ``filesystem="allow"`` skips this and runs the program in a
  host temporary directory. Nothing else of the host (home directories, the repository, data
  sets, the real /tmp) is visible, and nothing outside that tmpfs is writable.
* The code runs unprivileged: as root, under a fresh uid/gid per run from a high unused range
  (RLIMIT_NPROC counts per real uid and is not enforced for root, so this bounds the run
  alone); as another user, as that user in a nested user namespace without capabilities.
  No supplementary groups, PR_SET_NO_NEW_PRIVS, a minimal environment.
* Limits are set with ``resource.setrlimit`` in the launcher's forked child before it execs
  the code (CPU, address space, file size, processes, core dumps), not in a ``preexec_fn``,
  which is unsafe in a threaded parent (the critic runs sandboxes from threads). A watchdog
  also sums the resident memory of all the run's processes, since RLIMIT_AS is per process.
* The launcher is PID 1 of its namespace: when it exits or is killed, the kernel kills every
  process left in it, including any that called setsid() to leave the process group.
* stdout and stderr are read as they come; past ``output_limit`` bytes the run is killed.

When the namespaces cannot be created (no ``unshare``, no privilege, user namespaces off) the
run is refused (status "refused") unless ``network="allow"`` and ``filesystem="allow"`` are
both passed: then it runs as a plain child process with the same uid change and limits but
no namespaces, so the network and world-writable directories such as /tmp are reachable.

Not covered: CPU share and disk bandwidth (cgroups), kernel exploits (this is not a VM).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["SandboxResult", "SandboxStatus", "isolation_problem", "run_sandboxed"]

SandboxStatus = Literal[
    "ok", "syntax_error", "runtime_error", "timeout", "memory", "killed", "refused",
    "output_limit",
]

# Per-run uids for root: above sssd's id-mapping range (to 2000200000) and systemd-nspawn's
# container ranges, below 2**31 (some tools read uids as signed).
_UID_BASE = 2_050_000_000
_UID_SPAN = 1 << 24
_WATCH_EVERY = 0.1  # seconds between memory checks
# Run as a script, not imported: under ``-I -S`` the package is not on its sys.path.
_LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_launch.py")


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed run did. ``returncode`` is the program's exit status (negative: the
    signal that killed it), ``None`` when it never ran or the sandbox stopped it. ``message``
    says in one line why a run was refused or stopped. ``uid`` is the host uid it ran as."""

    status: SandboxStatus
    returncode: int | None
    stdout: str
    stderr: str
    duration: float
    message: str = ""
    uid: int | None = None


def run_sandboxed(
    code: str,
    *,
    stdin: str = "",
    timeout: float = 5.0,
    cpu_seconds: int = 5,
    memory_mb: int = 512,
    file_size_mb: int = 10,
    max_processes: int = 32,
    network: Literal["isolate", "allow"] = "isolate",
    filesystem: Literal["isolate", "allow"] = "isolate",
    output_limit: int = 64_000,
) -> SandboxResult:
    """Run ``code`` as ``python -I -S main.py`` (standard library only) in a sandbox (see the
    module docstring), feeding it ``stdin``, and wait at most ``timeout`` seconds. Never raises
    for anything the code does; raises ``ValueError`` for a bad argument. Blocking: call it in
    a thread from async code."""
    if timeout <= 0 or cpu_seconds < 1 or memory_mb < 16 or file_size_mb < 1:
        raise ValueError("timeout, cpu_seconds, memory_mb (>= 16) and file_size_mb must be > 0")
    if max_processes < 1 or output_limit < 1:
        raise ValueError("max_processes and output_limit must be >= 1")
    if network not in ("isolate", "allow") or filesystem not in ("isolate", "allow"):
        raise ValueError("network and filesystem must be 'isolate' or 'allow'")
    try:
        compile(code, "main.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:
        text = "".join(traceback.format_exception_only(type(e), e))
        return SandboxResult("syntax_error", None, "", text, 0.0, text.strip().splitlines()[-1])

    is_root = os.geteuid() == 0
    uid = _fresh_uid() if is_root else None
    tmp = tempfile.mkdtemp(prefix="criticlab-sandbox-")
    os.chmod(tmp, 0o711)  # without a chroot, the sandbox uid must reach its working directory
    try:
        cfg = _config(tmp, code, uid, cpu_seconds, memory_mb, file_size_mb, max_processes)
        limits = (timeout, memory_mb, output_limit, cpu_seconds)
        unshare = shutil.which("unshare")
        try:
            if unshare is None:
                raise _NoNamespaces("the `unshare` program (util-linux) is not installed")
            flags = ["--mount", "--pid", "--fork", "--kill-child", "--ipc"]
            flags += ["--net"] if network == "isolate" else []
            flags += [] if is_root else ["--user", "--map-root-user"]
            cfg.update(namespaces=True, isolate_fs=filesystem == "isolate")
            return _run(tmp, [unshare, *flags, "--"], cfg, stdin, limits)
        except _NoNamespaces as e:
            if network == "isolate" or filesystem == "isolate":
                return _refused(f"cannot isolate the code ({e}); pass network='allow' and "
                                "filesystem='allow' to run it without namespaces", uid)
        cfg.update(namespaces=False, isolate_fs=False)
        return _run(tmp, [], cfg, stdin, limits)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def isolation_problem() -> str | None:
    """Why this machine cannot sandbox with full isolation, or ``None`` when it can."""
    result = run_sandboxed("pass", timeout=30)
    return result.message if result.status == "refused" else None


class _NoNamespaces(Exception):
    """``unshare`` could not create the namespaces."""


def _fresh_uid() -> int:
    rng = random.SystemRandom()
    while True:
        uid = rng.randrange(_UID_BASE, _UID_BASE + _UID_SPAN)
        if not _uid_processes(uid):
            return uid


def _refused(message: str, uid: int | None) -> SandboxResult:
    return SandboxResult("refused", None, "", "", 0.0, message, uid)


def _config(
    tmp: str, code: str, uid: int | None, cpu: int, memory_mb: int, file_mb: int, nproc: int,
) -> dict[str, Any]:
    work = os.path.join(tmp, "work")
    os.mkdir(work, 0o700)
    os.mkdir(os.path.join(tmp, "root"), 0o700)
    with open(os.path.join(work, "main.py"), "w", encoding="utf-8") as f:
        f.write(code)
    if uid is not None:
        for path in (work, os.path.join(work, "main.py")):
            os.chown(path, uid, uid)
    else:
        # RLIMIT_NPROC counts every process of this user, not just the sandbox's.
        nproc += _count_processes(os.getuid()) + 4
    python = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
    prefixes = {os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)}
    prefixes.add(os.path.dirname(python))
    return {
        "tmp": tmp, "work": work, "uid": uid, "python": python, "binds": sorted(prefixes),
        "cpu": cpu, "memory": memory_mb << 20, "fsize": file_mb << 20, "nproc": nproc,
        "tmpfs": (file_mb << 20) + len(code.encode()) + (1 << 20),
        "real": [os.getuid(), os.getgid()],
    }


def _run(
    tmp: str, prefix: list[str], cfg: dict[str, Any], stdin: str,
    limits: tuple[float, int, int, int],
) -> SandboxResult:
    timeout, memory_mb, output_limit, cpu_seconds = limits
    status_path = os.path.join(tmp, "status.json")
    cfg["status"] = status_path
    cmd = [*prefix, cfg["python"], "-I", "-S", _LAUNCHER, json.dumps(cfg)]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=tmp, env=env, start_new_session=True,
    )
    drive = _Drive(proc, status_path, cfg, memory_mb << 20)
    try:
        out, err, stopped = drive.pump(stdin.encode(), start + timeout, output_limit)
    finally:
        drive.stop()
    duration = time.monotonic() - start
    shim = _read_status(status_path)
    uid = cfg["uid"]
    if "pid" not in shim:  # unshare failed before the launcher started
        why = err.decode(errors="replace").strip().splitlines()
        raise _NoNamespaces(why[-1] if why else f"unshare exited with {proc.returncode}")
    if "error" in shim:
        return _refused(str(shim["error"]), uid)
    stdout = out[:output_limit].decode(errors="replace")
    stderr = err[: max(0, output_limit - len(out))].decode(errors="replace")
    if stopped == "output_limit":
        message = f"output passed the limit of {output_limit} bytes"
        return SandboxResult("output_limit", None, stdout, stderr, duration, message, uid)
    if stopped == "memory":
        message = f"the run's processes used more than {memory_mb} MiB together"
        return SandboxResult("memory", None, stdout, stderr, duration, message, uid)
    if stopped == "timeout" or "wait" not in shim:
        message = f"wall-clock limit of {timeout:g} s reached"
        return SandboxResult("timeout", None, stdout, stderr, duration, message, uid)
    status, returncode, message = _classify(int(shim["wait"]), float(shim["cpu"]), stderr,
                                            cpu_seconds)
    return SandboxResult(status, returncode, stdout, stderr, duration, message, uid)


def _classify(
    wait: int, cpu: float, stderr: str, cpu_seconds: int,
) -> tuple[SandboxStatus, int, str]:
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    memory = "MemoryError" in stderr or "Cannot allocate memory" in stderr
    if os.WIFEXITED(wait):
        code = os.WEXITSTATUS(wait)
        if code == 0:
            return "ok", 0, ""
        if memory and last.startswith("MemoryError"):
            return "memory", code, "memory limit reached (MemoryError)"
        return "runtime_error", code, last or f"exited with status {code}"
    sig = os.WTERMSIG(wait)
    name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= cpu_seconds - 0.1):
        return "timeout", -sig, f"CPU time limit of {cpu_seconds} s reached"
    if memory:
        return "memory", -sig, f"memory limit reached (killed by {name})"
    return "killed", -sig, f"killed by {name}"


class _Drive:
    """Feeds stdin, collects output, enforces the wall clock, the output cap and the total
    memory, and kills the whole run when it stops early."""

    def __init__(self, proc: subprocess.Popen[bytes], status: str, cfg: dict[str, Any],
                 memory: int) -> None:
        self.proc, self.status, self.cfg, self.memory = proc, status, cfg, memory
        self.shim_pid: int | None = None

    def pump(self, data: bytes, deadline: float, limit: int) -> tuple[bytes, bytes, str | None]:
        proc = self.proc
        assert proc.stdin and proc.stdout and proc.stderr
        chunks = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
        sel = selectors.DefaultSelector()
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        if data:
            os.set_blocking(proc.stdin.fileno(), False)
            sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        stopped, next_watch, exited_at = None, 0.0, None
        while sel.get_map() and stopped is None:
            now = time.monotonic()
            if now >= deadline:
                stopped = "timeout"
                break
            for key, _ in sel.select(min(deadline - now, _WATCH_EVERY)):
                if key.fd in chunks:
                    piece = os.read(key.fd, 65536)
                    if not piece:
                        sel.unregister(key.fd)
                    chunks[key.fd] += piece
                    if sum(len(c) for c in chunks.values()) > limit:
                        stopped = "output_limit"
                else:
                    data = self._feed(sel, data)
            now = time.monotonic()
            if now >= next_watch:
                next_watch = now + _WATCH_EVERY
                stopped = stopped or self._watch()
            if proc.poll() is not None:  # left-over children may hold the pipes open
                exited_at = exited_at or now
                if now - exited_at > 0.5:
                    break
        if stopped is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
            if proc.poll() is None:
                stopped = "timeout"
        sel.close()
        return bytes(chunks[proc.stdout.fileno()]), bytes(chunks[proc.stderr.fileno()]), stopped

    def _feed(self, sel: selectors.BaseSelector, data: bytes) -> bytes:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            data = data[os.write(stdin.fileno(), data[:65536]):]
        except (BrokenPipeError, BlockingIOError) as e:
            data = data if isinstance(e, BlockingIOError) else b""
        if not data:
            sel.unregister(stdin.fileno())
            stdin.close()
        return data

    def _watch(self) -> str | None:
        if self.shim_pid is None:
            self.shim_pid = _read_status(self.status).get("pid")
        if self.cfg.get("namespaces") and self.shim_pid:
            pids = _descendants(int(self.shim_pid))
        elif self.cfg["uid"] is not None:
            pids = _uid_processes(self.cfg["uid"])
        else:
            return None
        return "memory" if _resident(pids) > self.memory else None

    def stop(self) -> None:
        """Kill whatever is left: the launcher (PID 1 of the namespace, so the kernel kills the
        rest), the process group, and, without namespaces, every process of the sandbox uid."""
        proc, ns = self.proc, self.cfg.get("namespaces")
        if self.shim_pid is None:
            self.shim_pid = _read_status(self.status).get("pid")
        running = proc.poll() is None
        if running and self.shim_pid and ns:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(self.shim_pid), signal.SIGKILL)
        # Unreaped (running) or without namespaces (left-over members keep the group id
        # allocated), the group id cannot belong to anyone else.
        if running or not ns:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        proc.wait()
        uid, end = self.cfg["uid"], time.monotonic() + 5
        while uid is not None and _uid_processes(uid) and time.monotonic() < end:
            if not ns:  # a process may have left the group with setsid()
                subprocess.run(["/bin/sh", "-c", "kill -KILL -1"], user=uid, group=uid,
                               extra_groups=[], check=False, env={}, cwd="/")
            time.sleep(0.01)


def _read_status(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _proc_ids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _uid_processes(uid: int) -> list[int]:
    pids = []
    for pid in _proc_ids():
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}").st_uid == uid:
                pids.append(pid)
    return pids


def _count_processes(uid: int) -> int:
    return len(_uid_processes(uid))


def _descendants(root: int) -> list[int]:
    found: list[int] = []
    todo = [root]
    while todo and len(found) < 4096:
        pid = todo.pop()
        found.append(pid)
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f:
                    todo.extend(int(c) for c in f.read().split())
    return found


def _resident(pids: list[int]) -> int:
    total, page = 0, os.sysconf("SC_PAGE_SIZE")
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError), \
                open(f"/proc/{pid}/statm", encoding="ascii") as f:
            total += int(f.read().split()[1]) * page
    return total
