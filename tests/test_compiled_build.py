"""``SCALER_MYPYC=1`` builds a wheel whose hot path is compiled with mypyc, and that
wheel simulates exactly what the pure-Python package simulates.

This builds the wheel as a user would (a bare venv's pip, build isolation, mypy
fetched into the build environment), so it needs a C compiler and Python's headers:
it takes about half a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPILED = (
    "scaler.policy.engine",
    "scaler.policy.stabilization",
    "scaler.simulate.runner",
    "scaler.simulate.pipeline",
)
SIMULATE = ["-m", "scaler.cli", "simulate", "--json", "--scenario", "spikes", "--seed", "4"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled wheel, unpacked into a directory that can go on PYTHONPATH."""
    wheels = tmp_path_factory.mktemp("wheels")
    # From a bare venv, as a user would: no dev tools or type stubs to lean on.
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        env={**os.environ, "SCALER_MYPYC": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        cwd=wheels,
        timeout=600,
    )
    (wheel,) = wheels.glob("scaler-*.whl")
    unpacked = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
    return unpacked


def _python(args: list[str], path: Path | None, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    done = subprocess.run(
        [sys.executable, *args], check=True, capture_output=True, text=True, env=env, cwd=cwd
    )
    return done.stdout


def test_the_wheel_holds_compiled_modules_and_python_loads_them(
    compiled: Path, tmp_path: Path
) -> None:
    script = (
        "import importlib, json; "
        f"print(json.dumps([importlib.import_module(m).__file__ for m in {COMPILED!r}]))"
    )
    files = json.loads(_python(["-c", script], compiled, tmp_path))
    assert all(f.startswith(str(compiled)) and f.endswith(".so") for f in files), files


def test_the_compiled_simulator_gives_the_pure_one_s_figures(
    compiled: Path, tmp_path: Path
) -> None:
    fast = json.loads(_python(SIMULATE, compiled, tmp_path))
    pure = json.loads(_python(SIMULATE, None, tmp_path))
    assert fast == pure
    assert any(p["scale_events"] > 0 for p in pure["policies"].values())


def test_an_editable_install_refuses_to_compile(tmp_path: Path) -> None:
    # setup.py exits before setuptools runs, so the project directory is left as it was.
    done = subprocess.run(
        [sys.executable, str(ROOT / "setup.py"), "editable_wheel"],
        capture_output=True,
        text=True,
        env={**os.environ, "SCALER_MYPYC": "1"},
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode != 0
    assert "SCALER_MYPYC=1 compiles a regular install only" in done.stderr
