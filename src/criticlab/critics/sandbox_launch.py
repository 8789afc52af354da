"""The sandbox launcher: the half of :mod:`criticlab.critics.sandbox` that runs inside the
namespaces. :func:`~criticlab.critics.sandbox.run_sandboxed` starts it as
``python -I -S sandbox_launch.py CONFIG`` (as PID 1 of the new namespaces when there are
namespaces); it builds the minimal root, forks the program (chroot, limits, dropped privileges,
exec) and reports how it ended in the status file named in CONFIG.

Standard library only, and nothing imported from criticlab: it runs isolated (``-I -S``), so
neither the package nor its directory is on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import sys
from typing import Any

_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group",
              "nsswitch.conf", "hosts", "mime.types", "alternatives")
_DEVICES = ("null", "zero", "full", "random", "urandom")

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_CLONE_NEWUSER = 0x10000000
_PR_SET_NO_NEW_PRIVS = 38


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        import ctypes

        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(libc: Any, src: str | None, dst: str, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return None if s is None else s.encode()

    _check(libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), f"mount {dst}")


def _bind_ro(libc: Any, src: str, dst: str) -> None:
    _mount(libc, src, dst, None, _MS_BIND)
    # A remount must keep the flags the source is locked with (inside a user namespace).
    kept = os.statvfs(src).f_flag
    flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV
    for st, ms in ((os.ST_NOEXEC, _MS_NOEXEC), (os.ST_NOATIME, 1024),
                   (os.ST_NODIRATIME, 2048), (os.ST_RELATIME, 1 << 21)):
        flags |= ms if kept & st else 0
    _mount(libc, None, dst, None, flags)


def _build_root(libc: Any, cfg: dict[str, Any]) -> None:
    """Mount the minimal root described in the docstring of :mod:`criticlab.critics.sandbox`
    (the child chroots into it)."""
    new, owner = os.path.join(cfg["tmp"], "root"), cfg["uid"]
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount(libc, "tmpfs", new, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={cfg['tmpfs']},mode=755")
    bound = []
    for name in _SYSTEM_DIRS:
        src, dst = "/" + name, os.path.join(new, name)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isdir(src):
            os.mkdir(dst)
            _bind_ro(libc, src, dst)
            bound.append(src + "/")
    for path in cfg["binds"]:
        if os.path.isdir(path) and not any((path + "/").startswith(b) for b in bound):
            os.makedirs(new + path, 0o755)
            _bind_ro(libc, path, new + path)
            bound.append(path + "/")
    os.mkdir(os.path.join(new, "etc"), 0o755)
    for name in _ETC_FILES:
        src = os.path.join("/etc", name)
        with contextlib.suppress(OSError):
            if os.path.isdir(src) and not os.path.islink(src):
                shutil.copytree(src, os.path.join(new, "etc", name), symlinks=True)
            elif os.path.exists(src):
                shutil.copy2(src, os.path.join(new, "etc", name))
    dev = os.path.join(new, "dev")
    os.mkdir(dev, 0o755)
    for name in _DEVICES:
        open(os.path.join(dev, name), "w").close()
        _mount(libc, "/dev/" + name, os.path.join(dev, name), None, _MS_BIND)
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", os.path.join(dev, name))
    os.symlink("/proc/self/fd", os.path.join(dev, "fd"))
    for path in (os.path.join(dev, "shm"), os.path.join(new, "tmp")):
        os.mkdir(path)
        os.chmod(path, 0o1777)
    os.mkdir(os.path.join(new, "proc"), 0o555)
    _mount(libc, "proc", os.path.join(new, "proc"), "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    box = os.path.join(new, "sandbox")
    os.mkdir(box, 0o700)
    os.mkdir(os.path.join(box, "tmp"), 0o700)
    shutil.copy(os.path.join(cfg["work"], "main.py"), os.path.join(box, "main.py"))
    if owner is not None:
        for path in (box, os.path.join(box, "tmp"), os.path.join(box, "main.py")):
            os.chown(path, owner, owner)
    cfg.update(root=new, work="/sandbox")


def _become_program(libc: Any, cfg: dict[str, Any]) -> None:
    """In the forked child: chroot, limits, then drop every privilege and exec the program."""
    uid = cfg["uid"]
    if uid is None and cfg["namespaces"]:
        # We are root of our own user namespace; in a nested one we are the real user again
        # (not 0), so exec drops every capability and the mounts cannot be undone. (This
        # must come before chroot: a chrooted process may not create a user namespace.)
        _check(libc.unshare(_CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
        real_uid, real_gid = cfg["real"]
        for name, text in (("setgroups", "deny"), ("uid_map", f"{real_uid} 0 1"),
                           ("gid_map", f"{real_gid} 0 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as f:
                f.write(text)
    if cfg.get("root"):
        os.chroot(cfg["root"])
    os.chdir(cfg["work"])
    for lim, value in ((resource.RLIMIT_AS, cfg["memory"]), (resource.RLIMIT_FSIZE, cfg["fsize"]),
                       (resource.RLIMIT_NPROC, cfg["nproc"]), (resource.RLIMIT_CORE, 0),
                       (resource.RLIMIT_NOFILE, 256)):
        resource.setrlimit(lim, (value, value))
    resource.setrlimit(resource.RLIMIT_CPU, (cfg["cpu"], cfg["cpu"] + 1))
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    work = cfg["work"]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": f"{work}/tmp",
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    os.execve(cfg["python"], [cfg["python"], "-I", "-S", "main.py"], env)


def _launcher(argv: list[str]) -> None:
    cfg = json.loads(argv[1])
    status = os.open(cfg["status"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def report(**fields: Any) -> None:
        data = json.dumps({"pid": host_pid, **fields}).encode()
        os.ftruncate(status, 0)
        os.pwrite(status, data, 0)

    os.umask(0o022)
    host_pid = int(os.readlink("/proc/self")) if os.path.islink("/proc/self") else os.getpid()
    report()
    libc = _libc()
    try:
        if cfg["namespaces"] and cfg["isolate_fs"]:
            _build_root(libc, cfg)
    except OSError as e:
        report(error=f"cannot build the sandbox: {e}")
        os._exit(125)
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        try:
            _become_program(libc, cfg)
        except BaseException as e:
            os.write(errors_w, f"{type(e).__name__}: {e}".encode())
        os._exit(127)
    os.close(errors_w)
    os.close(0)  # the program's stdin is its own (the code critic's harness reads its key there)
    failure = os.read(errors_r, 4096).decode(errors="replace")
    while True:  # as PID 1, reap every orphan until the program itself ends
        pid, wait, usage = os.wait3(0)
        if pid == child:
            break
    if failure:
        report(error=f"cannot start {cfg['python']} as the sandbox user: {failure}")
        os._exit(125)
    report(wait=wait, cpu=usage.ru_utime + usage.ru_stime)
    os._exit(0)


if __name__ == "__main__":
    _launcher(sys.argv)
