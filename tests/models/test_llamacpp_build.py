"""criticlab's llama.cpp build: the flags it builds with, the guard that refuses a build with
AMX kernels (they segfault on the first decode), and the crash watcher of the CLI."""

import platform
import subprocess
import sys

import pytest

from criticlab.models import llamacpp_build as lb
from tests.conftest import ROOT

# What llama_print_system_info() prints for a -march=native build on a Sapphire Rapids Xeon.
AMX_INFO = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
            "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | "
            "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ")
SAFE_INFO = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
             "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ")


def test_features_are_read_from_the_system_info_string():
    f = lb.features(AMX_INFO)
    assert f["AVX2"] == "1" and f["AMX_INT8"] == "1" and f["REPACK"] == "1"
    assert lb.amx_features(AMX_INFO) == ["AMX_INT8"]
    assert lb.amx_features(SAFE_INFO) == []
    # several backends on one line, as a CUDA build prints them
    assert lb.features("CUDA : ARCHS = 900 | CPU : AVX2 = 1 | ")["AVX2"] == "1"


def test_x86_flags_turn_off_native_avx512_and_amx():
    args = lb.cmake_args("x86_64").split()
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX2=ON" in args
    for off in ("AVX512", "AMX_TILE", "AMX_INT8", "AMX_BF16"):
        assert f"-DGGML_{off}=OFF" in args
    assert lb.cmake_args("aarch64") == ""  # no AMX there: llama.cpp's default stays
    cmd = lb.install_command("0.3.36", "x86_64")
    assert cmd.startswith("CMAKE_ARGS='-DGGML_NATIVE=OFF ")
    assert cmd.endswith("pip install --force-reinstall --no-cache-dir --no-deps "
                        "llama-cpp-python==0.3.36")


def test_guard_refuses_amx_with_the_fix_and_the_opt_in(monkeypatch):
    monkeypatch.delenv(lb.ALLOW_AMX_ENV, raising=False)
    problem = lb.guard_problem(AMX_INFO)
    assert problem is not None and "\n" not in problem
    assert "AMX_INT8" in problem and "segmentation fault" in problem
    assert "-DGGML_AMX_INT8=OFF" in problem and "--no-cache-dir" in problem
    assert "CRITICLAB_ALLOW_AMX=1" in problem
    assert lb.guard_problem(SAFE_INFO) is None
    monkeypatch.setenv(lb.ALLOW_AMX_ENV, "1")
    assert lb.guard_problem(AMX_INFO) is None


def test_installed_build_is_criticlabs_portable_one():
    """The build `make` installed uses the flags above: on this x86-64 machine (which has
    AVX-512) a native build would report AVX512; criticlab's must not."""
    pytest.importorskip("llama_cpp")
    if platform.machine() != "x86_64":
        pytest.skip("the flags are x86-64 only")
    used = {k for k, v in lb.features(lb.system_info()).items() if v == "1"}
    assert {"AVX2", "FMA", "F16C"} <= used
    assert not any(k.startswith(("AVX512", "AMX")) for k in used), used


def cli_with_system_info(info: str, *args: str, env: dict | None = None):
    """A real criticlab process whose llama-cpp-python reports ``info`` as its build."""
    code = ("import sys, llama_cpp\n"
            f"llama_cpp.llama_print_system_info = lambda: {info.encode()!r}\n"
            "from criticlab.cli import main\n"
            "main(sys.argv[1:])\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, env=env)


def test_cli_refuses_an_amx_build_in_one_line_exit_2(tmp_path, embedded_path):
    import os

    env = {**os.environ, "CRITICLAB_STORE": str(tmp_path / "s.sqlite")}
    env.pop(lb.ALLOW_AMX_ENV, None)
    p = cli_with_system_info(AMX_INFO, "critique", "examples/demo.json", "--critic",
                             "processbench", "--max-tokens", "8", env=env)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: llama-cpp-python was built with AMX")
    assert "CMAKE_ARGS=" in lines[0] and "CRITICLAB_ALLOW_AMX=1" in lines[0]
    # opting in runs the model (this machine's real build is safe)
    env[lb.ALLOW_AMX_ENV] = "1"
    p = cli_with_system_info(AMX_INFO, "critique", "examples/demo.json", "--critic",
                             "processbench", "--max-tokens", "8", "--json", env=env)
    assert p.returncode == 0, p.stderr
    assert '"critique"' in p.stdout


def test_a_native_crash_prints_where_and_how_to_report():
    from criticlab.crash import HELP

    code = "from criticlab import crash; crash.install(); import ctypes; ctypes.string_at(0)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == -11
    assert "Fatal Python error: Segmentation fault" in p.stderr
    assert 'File "<string>", line 1' in p.stderr  # where it happened
    assert p.stderr.rstrip().endswith(HELP)
    ok = subprocess.run([sys.executable, "-c", "from criticlab import crash; crash.install()"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stderr == ""  # a normal exit leaves no trace


def test_readme_gives_the_same_flags_as_make():
    assert f'CMAKE_ARGS="{lb.X86_64_CMAKE_ARGS}"' in (ROOT / "README.md").read_text()
