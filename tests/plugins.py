"""Installed plugins for tests, without pip: a folder that holds the modules and a
``NAME-VERSION.dist-info`` (``METADATA``, ``entry_points.txt``), as pip installs them into
site-packages. On ``PYTHONPATH`` it is an installed distribution to ``importlib.metadata``
(no mocks), in a child process whose criticlab is the one under test."""

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.conftest import ROOT


def install(root: Path, name: str, modules: Mapping[str, str],
            entry_points: Mapping[str, Mapping[str, str]], version: str = "0.1") -> Path:
    """Write ``modules`` (module name -> source) and the dist-info of distribution ``name``
    with ``entry_points`` (group -> {entry name: value}) into ``root``; return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source, encoding="utf-8")
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
        for group, eps in entry_points.items()), encoding="utf-8")
    return root


def run(root: Path | None, *args: str, tmp_path: Path, stdin: bytes | None = None,
        pythonpath: Sequence[Path] = ()) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in the repository with ``root`` (if any) and ``pythonpath`` on
    ``PYTHONPATH``, a store in ``tmp_path``, and Python warnings shown."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "COLUMNS": "200", "CRITICLAB_STORE": str(tmp_path / "store.sqlite"),
           "PYTHONWARNINGS": "default"}
    paths = [*([root] if root is not None else []), *pythonpath]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(map(str, paths))
    p = subprocess.run([sys.executable, *args], input=stdin, capture_output=True, cwd=ROOT,
                       env=env, timeout=300)
    return subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(),
                                       p.stderr.decode())


@pytest.fixture
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a test registers is gone after it: both tables are copies for its duration."""
    from criticlab.registry import CRITIC_KINDS, MODEL_KINDS

    for table in (CRITIC_KINDS, MODEL_KINDS):
        list(table)  # built-ins and installed plugins first
        monkeypatch.setattr(table, "_entries", dict(table._entries))
