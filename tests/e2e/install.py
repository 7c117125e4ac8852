"""The cached virtual environment that holds the real Open WebUI for the e2e tests.

``python -m tests.e2e.install`` builds it (``scripts/test`` does, before pytest, so
that the install time shows apart from the tests); the journey's fixture calls
``ensure_installed`` too, which returns at once when the environment is complete.
The environment lives outside the clone, keyed by the hash of the pinned
requirements, so a new pin builds a new one and an interrupted build (no marker
file) is built again: ``$SCALER_E2E_CACHE`` or ``~/.cache/scaler-e2e``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "open-webui-requirements.txt"
MANIFEST = HERE.parent.parent / "manifests" / "base" / "open-webui.yaml"
_MARKER = "complete"
INSTALL_TIMEOUT = 1200.0
"""Seconds the pip install may take (65 s here from PyPI with no pip cache)."""


class InstallError(RuntimeError):
    """The Open WebUI environment could not be built."""


def pinned_version() -> str:
    """The open-webui version the requirements pin."""
    match = re.search(r"^open-webui==(\S+)$", REQUIREMENTS.read_text(), re.MULTILINE)
    if match is None:
        raise InstallError(f"{REQUIREMENTS} pins no open-webui version")
    return match.group(1)


def manifest_version() -> str:
    """The Open WebUI image tag manifests/base/open-webui.yaml deploys, without its v."""
    tags = set(re.findall(r"ghcr\.io/open-webui/open-webui:v?(\S+)", MANIFEST.read_text()))
    if len(tags) != 1:
        raise InstallError(f"{MANIFEST}: expected one Open WebUI image tag, found {tags}")
    return tags.pop()


def cache_root() -> Path:
    return Path(os.environ.get("SCALER_E2E_CACHE") or Path.home() / ".cache" / "scaler-e2e")


def environment_dir() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    return cache_root() / f"open-webui-{pinned_version()}-{digest}"


def ensure_installed() -> Path:
    """The ``open-webui`` executable of a complete environment, built if missing."""
    target = environment_dir()
    executable = target / "bin" / "open-webui"
    if (target / _MARKER).is_file() and executable.is_file():
        return executable
    shutil.rmtree(target, ignore_errors=True)  # half-built: start again
    target.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(target)])
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q"]
    # --no-deps: the file pins every package, so pip resolves nothing and the set is
    # exactly what was tried (open-webui's own pins would pull torch and CUDA).
    _run([*pip, "--no-deps", "-r", str(REQUIREMENTS)])
    (target / _MARKER).write_text(pinned_version())
    return executable


def _run(command: list[str]) -> None:
    try:
        subprocess.run(command, check=True, timeout=INSTALL_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as error:
        raise InstallError(f"building the Open WebUI environment: {error}") from error


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> None:
    started = time.monotonic()
    executable = ensure_installed()
    root = executable.parent.parent
    print(
        f"Open WebUI {pinned_version()}: {root} "
        f"({_size(root) / 2**20:,.0f} MiB, {time.monotonic() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
