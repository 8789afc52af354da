"""Speed of criticlab's llama.cpp build (x86-64-v3: AVX2, no AVX-512, no AMX) against an
AVX-512 build of the same llama-cpp-python version, on the embedded model.

criticlab builds llama-cpp-python with explicit flags so that the build runs on every x86-64
CPU and never picks the AMX kernels that crash (see criticlab/models/llamacpp_build.py). This
measures what the portability costs: the installed build (it must be criticlab's) against an
AVX-512 build compiled here once (a few minutes; kept under ~/.cache/criticlab/bench-wheels).
Each round runs both builds in fresh child processes, alternating the order, one thread each:
prefill tokens/s (a ~300-token prompt, no cache reuse) and decode tokens/s (128 tokens, end of
sequence suppressed). Prints every round, the medians and their ratios.

    python benchmarks/llama_cpu_build.py [--rounds 3] [--tokens 128]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from criticlab.models.llamacpp import embedded_model_path
from criticlab.models.llamacpp_build import (
    X86_64_CMAKE_ARGS,
    amx_features,
    features,
    installed_version,
    system_info,
)

AVX512_CMAKE_ARGS = (
    X86_64_CMAKE_ARGS.replace("-DGGML_AVX512=OFF", "-DGGML_AVX512=ON")
    + " -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON"
)

CHILD = r"""
import json, sys, time
import llama_cpp
gguf, tokens = sys.argv[1], int(sys.argv[2])
info = llama_cpp.llama_print_system_info().decode()
llm = llama_cpp.Llama(model_path=gguf, n_ctx=2048, n_threads=1, verbose=False)
eos = llm.token_eos()
text = " ".join(f"Step {i}: {i} + {i} = {2 * i}." for i in range(1, 45))
prompt = llm.tokenize(text.encode())
llm.create_completion(text[:200], max_tokens=8, temperature=0.0)  # warm up
llm.reset()
t = time.perf_counter()
llm.eval(prompt)
prefill = len(prompt) / (time.perf_counter() - t)
llm.reset()
t = time.perf_counter()
out = llm.create_completion("Once upon a time", max_tokens=tokens, temperature=0.0,
                            logit_bias={eos: -1e9})
n = out["usage"]["completion_tokens"]
decode = n / (time.perf_counter() - t)
print(json.dumps({"info": info, "prefill": prefill, "decode": decode, "tokens": n}))
"""


def build_avx512(version: str) -> Path:
    """A site folder holding llama_cpp built with AVX512_CMAKE_ARGS (built once, then kept)."""
    key = hashlib.sha256(f"{version} {AVX512_CMAKE_ARGS}".encode()).hexdigest()[:12]
    root = Path.home() / ".cache" / "criticlab" / "bench-wheels" / f"avx512-{key}"
    site = root / "site"
    if (site / "llama_cpp").is_dir():
        return site
    print(f"building llama-cpp-python {version} with AVX-512 into {root} (a few minutes) ...",
          flush=True)
    env = {**os.environ, "CMAKE_ARGS": AVX512_CMAKE_ARGS, "PIP_CACHE_DIR": str(root / "pip"),
           "CMAKE_BUILD_PARALLEL_LEVEL": os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")}
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    f"llama-cpp-python=={version}"], env=env, check=True)
    wheel = next(wheels.glob("llama_cpp_python-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), str(wheel)], check=True)
    return site


def measure(site: Path | None, gguf: Path, tokens: int) -> dict[str, float | str]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as cwd:  # so the repo's folders shadow nothing
        out = subprocess.run([sys.executable, "-c", CHILD, str(gguf), str(tokens)], env=env,
                             cwd=cwd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def simd(info: str) -> str:
    used = [k for k, v in features(info).items() if v == "1"]
    return " ".join(k for k in used if k.startswith(("AVX", "AMX", "FMA", "F16C")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    args = ap.parse_args()
    version, info = installed_version(), system_info()
    if version is None:
        sys.exit("llama-cpp-python is not installed: make .venv/.installed")
    if "AVX512" in features(info) or amx_features(info):
        sys.exit(f"the installed build is not criticlab's x86-64-v3 build ({simd(info)}); "
                 "reinstall it with `make clean && make .venv/.installed`")
    cpu = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    builds: dict[str, Path | None] = {"x86-64-v3 (criticlab)": None}
    if " avx512f" in cpu:
        builds["AVX-512"] = build_avx512(version)
    else:
        print("this CPU has no AVX-512: only criticlab's build is measured")
    gguf = embedded_model_path()
    runs: dict[str, list[dict[str, float | str]]] = {name: [] for name in builds}
    print(f"llama-cpp-python {version}, {gguf.name}, 1 thread, {args.tokens} decoded tokens")
    for r in range(args.rounds):
        order = list(builds) if r % 2 == 0 else list(reversed(builds))
        for name in order:
            res = measure(builds[name], gguf, args.tokens)
            runs[name].append(res)
            print(f"  round {r + 1}  {name:22s} prefill {res['prefill']:7.1f} tok/s   "
                  f"decode {res['decode']:6.1f} tok/s", flush=True)
    print(f"\n{'build':22s} {'SIMD used':48s} {'prefill tok/s':>13s} {'decode tok/s':>12s}")
    med = {}
    for name, rs in runs.items():
        med[name] = (statistics.median(float(x["prefill"]) for x in rs),
                     statistics.median(float(x["decode"]) for x in rs))
        print(f"{name:22s} {simd(str(rs[0]['info'])):48s} {med[name][0]:13.1f} "
              f"{med[name][1]:12.1f}")
    if "AVX-512" in med:
        ours, ref = med["x86-64-v3 (criticlab)"], med["AVX-512"]
        print(f"\ncriticlab's build / AVX-512 build: prefill {ours[0] / ref[0]:.2f}x, "
              f"decode {ours[1] / ref[1]:.2f}x (medians of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
