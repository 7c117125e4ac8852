"""Optional build step: ``SCALER_MYPYC=1`` compiles the simulator's hot path with mypyc.

Everything else about the package lives in pyproject.toml. Without the variable (the
default, and always for editable installs) the package is pure Python. See
docs/simulate.md, "Speed".
"""

from __future__ import annotations

import os
import sys

from setuptools import setup

# The modules every simulated second runs through: the policy engine, the model and
# the runner. They are typed for mypy --strict, which is what mypyc needs.
COMPILED = [
    "scaler/policy/behavior.py",
    "scaler/policy/calculator.py",
    "scaler/policy/decision.py",
    "scaler/policy/engine.py",
    "scaler/policy/history.py",
    "scaler/policy/legacy.py",
    "scaler/policy/milli.py",
    "scaler/policy/overrides.py",
    "scaler/policy/pods.py",
    "scaler/policy/rate.py",
    "scaler/policy/readings.py",
    "scaler/policy/stabilization.py",
    "scaler/policy/step.py",
    "scaler/policy/zero.py",
    "scaler/simulate/decider.py",
    "scaler/simulate/model.py",
    "scaler/simulate/replica.py",
    "scaler/simulate/runner.py",
    "scaler/simulate/pipeline.py",
]


def _compiling() -> bool:
    return os.environ.get("SCALER_MYPYC", "") == "1"


def _ext_modules() -> list[object]:
    # Only the commands that build code compile: pip also runs this file to read the
    # metadata and the build requirements, before mypy is even installed.
    if not _compiling() or not {"bdist_wheel", "build_ext", "build"} & set(sys.argv):
        return []
    from mypyc.build import mypycify

    # The build environment has mypy but neither the dependencies nor their stubs:
    # only the compiled modules need precise types, and theirs are all our own.
    options = ["--ignore-missing-imports", "--follow-imports=silent"]
    return list(mypycify([*options, *COMPILED], opt_level="3"))


if _compiling() and "editable_wheel" in sys.argv:
    # Compiled modules beside the sources would shadow every later edit.
    raise SystemExit("SCALER_MYPYC=1 compiles a regular install only, not pip install -e")

# pip installs setup_requires into the isolated build environment before building.
setup(
    setup_requires=["mypy>=1.10"] if _compiling() else [],
    ext_modules=_ext_modules(),
)
