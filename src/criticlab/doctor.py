"""``criticlab doctor``: can this machine run criticlab, and what will it use?

Each check is one row: a component, a status and what was found, with the command that fixes
it. The in-process engine is proved by generating a few tokens in a child process, so a native
crash (a llama.cpp build that does not suit this CPU) is reported, not suffered. The default
path is the embedded model on llama.cpp; when it cannot work, :func:`failed` is true and the
command exits non-zero. Optional engines that are absent are "missing", not failures.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

OK, MISSING, WARN, FAIL, SKIP = "ok", "missing", "warn", "fail", "skipped"


@dataclass
class Check:
    """One row: ``status`` is ok, missing (optional and not installed), warn, fail or
    skipped; ``default_path`` marks the checks the default model needs."""

    name: str
    status: str
    detail: str
    fix: str = ""
    default_path: bool = False
    info: dict[str, Any] = field(default_factory=dict)


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def cpu_flags() -> tuple[str, set[str]]:
    """The CPU's model name and flags (Linux's /proc/cpuinfo; empty elsewhere)."""
    name, flags = platform.processor() or platform.machine(), set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            name = value.strip()
        elif key.strip() in ("flags", "Features") and not flags:
            flags = set(value.split())
    return name, flags


def check_system() -> list[Check]:
    from criticlab import __version__

    name, flags = cpu_flags()
    shown = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_vnni", "amx_int8",
                         "amx_bf16", "asimd", "sve") if f in flags]
    return [
        Check("python", OK, f"{platform.python_version()} ({sys.executable})"),
        Check("criticlab", OK, __version__),
        Check("cpu", OK, f"{name}; {os.cpu_count()} cores; {' '.join(shown) or 'no flags read'}",
              info={"model": name, "cores": os.cpu_count(), "flags": shown,
                    "machine": platform.machine()}),
    ]


# The child: report the llama.cpp build's features, then (with "generate") load the embedded
# model as criticlab does, guard included, and generate a few tokens. One JSON line each.
PROBE_CODE = """
import faulthandler, json, sys, time
faulthandler.enable()
from criticlab.models.llamacpp_build import system_info
print(json.dumps({"system_info": system_info()}), flush=True)
if sys.argv[1:] == ["generate"]:
    from criticlab.errors import CriticlabError
    from criticlab.models.base import GenerateConfig, Message
    from criticlab.models.llamacpp import LlamaCppModel
    try:
        m = LlamaCppModel(n_ctx=512)
    except CriticlabError as e:
        print(json.dumps({"error": str(e)}), flush=True)
        sys.exit(0)
    t = time.perf_counter()
    g = m._generate_blocking([Message("user", "Say hello.")],
                             GenerateConfig(max_tokens=16, temperature=0.0, seed=0))[0]
    s = time.perf_counter() - t
    print(json.dumps({"tokens": g.usage.completion_tokens, "seconds": s, "text": g.text}))
"""


def probe_command(generate: bool = True) -> list[str]:
    return [sys.executable, "-c", PROBE_CODE, *(["generate"] if generate else [])]


@dataclass
class Probe:
    """What the child reported (one dict per JSON line) and how it ended."""

    lines: list[dict[str, Any]]
    crash: str | None  # "died of SIGSEGV: <last stderr lines>", a timeout, an exit code

    def get(self, key: str) -> Any:
        return next((line[key] for line in self.lines if key in line), None)


def run_probe(cmd: Sequence[str], timeout: float = 120.0) -> Probe:
    """Run the probe ``cmd`` in a child process: a native crash there is reported here."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              errors="replace")
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else ""
        return Probe(_json_lines(stdout), f"no answer in {timeout:.0f} s")
    lines = _json_lines(proc.stdout)
    tail = " | ".join(line.strip() for line in (proc.stderr or "").strip().splitlines()[-6:])
    if proc.returncode < 0:
        try:
            sig = signal.Signals(-proc.returncode).name
        except ValueError:
            sig = f"signal {-proc.returncode}"
        return Probe(lines, f"died of {sig}" + (f": {tail}" if tail else ""))
    if proc.returncode != 0:
        return Probe(lines, f"exit code {proc.returncode}" + (f": {tail}" if tail else ""))
    return Probe(lines, None)


def _json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


REPORT = "report it with the output of `criticlab doctor --json`"


def check_llama_cpp(probe: Probe) -> Check:
    """llama-cpp-python: installed, which CPU features its build uses, the guard's verdict."""
    from criticlab.models.llamacpp import INSTALL_HINT
    from criticlab.models.llamacpp_build import amx_features, features, guard_problem

    ver = _version("llama-cpp-python")
    if ver is None:
        return Check("llama.cpp", FAIL, "llama-cpp-python is not installed", INSTALL_HINT,
                     default_path=True)
    info = probe.get("system_info")
    if info is None:  # the library did not even load
        return Check("llama.cpp", FAIL, f"llama-cpp-python {ver} does not load: {probe.crash}",
                     INSTALL_HINT, default_path=True)
    used = [k for k, v in features(info).items() if v == "1"]
    problem = guard_problem(info)
    detail = f"llama-cpp-python {ver}; build uses {' '.join(used) or 'no SIMD'}"
    data = {"version": ver, "features": used, "amx": amx_features(info)}
    if problem:
        return Check("llama.cpp", FAIL, f"{detail}; refused: {problem}", default_path=True,
                     info=data)
    if amx_features(info):
        return Check("llama.cpp", WARN, f"{detail}; AMX allowed by CRITICLAB_ALLOW_AMX=1",
                     default_path=True, info=data)
    return Check("llama.cpp", OK, f"{detail}; no AMX: safe", default_path=True, info=data)


def check_generation(probe: Probe) -> Check:
    """The embedded model generating in the child: tokens and speed, or why not."""
    name = "llama.cpp generation"
    if probe.crash:
        return Check(name, FAIL, f"the child process {probe.crash}", REPORT, default_path=True,
                     info={"crash": probe.crash})
    if probe.get("error"):
        return Check(name, FAIL, probe.get("error"), default_path=True)
    tokens, seconds = probe.get("tokens"), probe.get("seconds")
    if tokens is None or not seconds:
        return Check(name, FAIL, "the probe printed no result", REPORT, default_path=True)
    rate = tokens / seconds
    return Check(name, OK, f"{tokens} tokens in {seconds:.2f} s ({rate:.0f} tokens/s, "
                 f"1 thread): {str(probe.get('text'))[:40]!r}", default_path=True,
                 info={"tokens": tokens, "seconds": seconds, "tokens_per_s": rate})


def check_embedded_model() -> Check:
    from criticlab.errors import ConfigError
    from criticlab.models.llamacpp import MODEL_HINT, embedded_model_path

    try:
        path = embedded_model_path()
    except ConfigError as e:
        return Check("embedded model", FAIL, str(e), MODEL_HINT, default_path=True)
    size = path.stat().st_size / 1e6
    return Check("embedded model", OK, f"{path} ({size:.0f} MB)", default_path=True,
                 info={"path": str(path), "mb": round(size, 1)})


def check_torch() -> Check:
    tf, ver = _version("transformers"), _version("torch")
    if ver is None or tf is None:
        return Check("transformers", MISSING, "torch/transformers not installed (hf:, train)",
                     "pip install torch==2.13.0 'criticlab[hf]'  (pin torch to a CPU build "
                     "first on CPU machines)")
    import torch

    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU"
    return Check("transformers", OK, f"transformers {tf}; torch {ver} ({build} build); "
                 f"{torch.get_num_threads()} threads",
                 info={"transformers": tf, "torch": ver, "build": build,
                       "threads": torch.get_num_threads()})


def check_vllm() -> Check:
    ver = _version("vllm")
    cuda = "no CUDA device"
    if _version("torch"):
        import torch

        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            cuda = f"{n} CUDA device(s): {torch.cuda.get_device_name(0)}"
    if ver is None:
        return Check("vllm", MISSING, f"vllm not installed (vllm:, GPU only); {cuda}",
                     "pip install 'criticlab[vllm]'  (on a GPU machine)", info={"cuda": cuda})
    return Check("vllm", OK if "CUDA device(s)" in cuda else WARN, f"vllm {ver}; {cuda}",
                 info={"version": ver, "cuda": cuda})


def check_optional(name: str, dist: str, use: str, fix: str) -> Check:
    ver = _version(dist)
    if ver is None:
        return Check(name, MISSING, f"{dist} not installed ({use})", fix)
    return Check(name, OK, f"{dist} {ver} ({use})", info={"version": ver})


def check_math_verify() -> Check:
    """math-verify is a core dependency (answer equivalence): missing, the install is broken."""
    from criticlab.grading import MATH_VERIFY_HINT

    ver = _version("math-verify")
    if ver is None:
        return Check("math-verify", FAIL, "math-verify not installed (answer equivalence: "
                     "refine, select, label mc, rewards)", MATH_VERIFY_HINT)
    return Check("math-verify", OK, f"math-verify {ver} (answer equivalence)",
                 info={"version": ver})


def check_server(base_url: str | None, timeout: float = 5.0) -> Check:
    if not base_url:
        return Check("openai server", SKIP, "no --base-url given")
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY") or "none",
                           timeout=timeout, max_retries=0)
    try:
        ids = [m.id for m in client.models.list()]
    except openai.APIError as e:
        return Check("openai server", FAIL, f"{base_url}: {type(e).__name__}: {e}",
                     info={"base_url": base_url})
    return Check("openai server", OK, f"{base_url}: reachable; models: {', '.join(ids) or '-'}",
                 info={"base_url": base_url, "models": ids})


def check_store() -> Check:
    from criticlab.cli.common import default_store_path

    path = default_store_path()
    if path.exists():
        return Check("store", OK, f"{path} ({path.stat().st_size / 1e6:.1f} MB)",
                     info={"path": str(path), "mb": path.stat().st_size / 1e6})
    parent = next(p for p in (path, *path.parents) if p.exists())
    writable = os.access(parent, os.W_OK)
    return Check("store", OK if writable else FAIL,
                 f"{path} (not created yet{'' if writable else f'; {parent} is not writable'})",
                 "" if writable else "set CRITICLAB_STORE to a writable file",
                 info={"path": str(path), "mb": 0.0})


def chromium_path() -> str | None:
    """Chromium for the report's browser tests and screenshots: ``CRITICLAB_CHROMIUM`` or the
    first of chromium, chromium-browser on PATH."""
    for name in (os.environ.get("CRITICLAB_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return found
    return None


def check_chromium() -> Check:
    exe = chromium_path()
    if exe is None:
        return Check("chromium", MISSING, "no Chromium (reports open in any browser; it is "
                     "needed only to test or screenshot them)", "apt-get install -y chromium")
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20)
        ver = out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        ver = f"does not run: {e}"
    return Check("chromium", OK, f"{exe}: {ver}", info={"path": exe})


def run_checks(base_url: str | None = None, probe: bool = True,
               probe_cmd: Sequence[str] | None = None, timeout: float = 120.0) -> list[Check]:
    """Every check, in the order shown. ``probe_cmd`` replaces the child process (tests)."""
    checks = check_system()
    model = check_embedded_model()
    installed = _version("llama-cpp-python") is not None
    generate = probe and model.status == OK
    child = (run_probe(probe_cmd or probe_command(generate), timeout) if installed
             else Probe([], "llama-cpp-python is not installed"))
    llama = check_llama_cpp(child)
    checks += [llama, model]
    if not probe:
        checks.append(Check("llama.cpp generation", SKIP, "--no-probe", default_path=True))
    elif llama.status == FAIL or model.status == FAIL:
        checks.append(Check("llama.cpp generation", SKIP, "not tried: fix the rows above",
                            default_path=True))
    else:
        checks.append(check_generation(child))
    optional: list[Callable[[], Check]] = [
        check_torch, check_vllm,
        lambda: check_optional("ray", "ray", "--executor ray", "pip install 'criticlab[ray]'"),
        check_math_verify,
        lambda: check_optional("datasets", "datasets", "benchmarks from the HF hub",
                               "pip install 'criticlab[hub]'"),
        lambda: check_server(base_url), check_store, check_chromium,
    ]
    for make in optional:
        try:
            checks.append(make())
        except Exception as e:  # one broken optional package must not hide the others
            checks.append(Check(getattr(make, "__name__", "check"), WARN, f"check failed: {e}"))
    return checks


def failed(checks: Sequence[Check]) -> bool:
    """Whether the default path (the embedded model on llama.cpp) cannot work, a core
    dependency (math-verify) is missing, or a check that was asked for (the server at
    --base-url, the store) failed."""
    return any(c.status == FAIL for c in checks)


def as_json(checks: Sequence[Check]) -> str:
    return json.dumps({"ok": not failed(checks), "checks": [asdict(c) for c in checks]},
                      indent=2)
