"""A real Prometheus server for integration tests, on 127.0.0.1 in a temporary directory.

    with prometheus_server(tmp_path, openmetrics=text) as prom:   # backfilled history
        load_trace_prometheus(prom.url, ...)

    job = scrape_job("proxy", f"127.0.0.1:{port}")
    with prometheus_server(tmp_path, scrape_configs=[job], scrape_interval=0.5) as prom:
        wait_for(prom, 'up{job="proxy"} == 1')                   # scraping an exporter
        await wait_for_async(prom, 'sum(queue) == 3')           # same, loop keeps running

Prometheus 2.42 applies new scrape targets every 5 s, so the first scrape comes about
5 s after start, whatever the interval; ``wait_for`` polls for it.

Needs the ``prometheus`` and ``promtool`` binaries on PATH (Debian/Ubuntu:
``apt-get install prometheus``); written against Prometheus 2.42. Backfilled history may
lie at any past date: time-based retention counts from the newest block, not from the
wall clock, so fixed dates (and so deterministic tests) work.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

READY_TIMEOUT = 30.0
"""Seconds to wait for ``/-/ready``; startup takes ~1 s, more on a loaded CI runner."""
STOP_TIMEOUT = 10.0
"""Seconds to wait after SIGTERM before SIGKILL."""
_POLL_INTERVAL = 0.05
_PORT_ATTEMPTS = 3
# Loopback only, whatever HTTP(S)_PROXY says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def binaries_missing() -> list[str]:
    """Which of ``prometheus`` and ``promtool`` are not on PATH."""
    return [name for name in ("prometheus", "promtool") if shutil.which(name) is None]


def require_binaries() -> None:
    """Fail, never skip, without Prometheus: these tests are what proves the queries."""
    missing = binaries_missing()
    if missing:
        raise RuntimeError(
            f"not on PATH: {', '.join(missing)}; `bash scripts/test` installs them "
            "(apt-get install prometheus)"
        )


@dataclass(frozen=True)
class PrometheusServer:
    """A running server: ``url`` is ``http://127.0.0.1:PORT``."""

    url: str
    port: int
    data_dir: Path
    config_file: Path
    log_file: Path
    process: subprocess.Popen[bytes]


def scrape_job(
    name: str, *targets: str, interval: float | None = None, metrics_path: str = "/metrics"
) -> dict[str, Any]:
    """One ``scrape_configs`` entry for static ``host:port`` targets."""
    job: dict[str, Any] = {
        "job_name": name,
        "metrics_path": metrics_path,
        "static_configs": [{"targets": list(targets)}],
    }
    if interval is not None:
        job["scrape_interval"] = _duration(interval)
    return job


def backfill(openmetrics: str, data_dir: Path) -> None:
    """Write historical samples into ``data_dir`` with ``promtool``.

    ``openmetrics``: OpenMetrics text (``# TYPE`` lines, samples with timestamps in
    seconds, ending with ``# EOF``).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / "backfill.om"
    source.write_text(openmetrics, encoding="utf-8")
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        check=True,
        capture_output=True,
        timeout=60,
    )


@contextmanager
def prometheus_server(
    workdir: Path,
    *,
    openmetrics: str | None = None,
    scrape_configs: Sequence[Mapping[str, Any]] = (),
    scrape_interval: float = 15.0,
    extra_args: Sequence[str] = (),
    ready_timeout: float = READY_TIMEOUT,
) -> Iterator[PrometheusServer]:
    """Start Prometheus in ``workdir`` (config, data, log), yield it once ready, stop it.

    Raises RuntimeError when Prometheus is not installed.

    ``openmetrics``: history to backfill before starting (see ``backfill``).
    ``scrape_configs``: Prometheus ``scrape_configs`` entries (``scrape_job`` makes one).
    ``scrape_interval``: the global scrape and rule evaluation interval, seconds.
    """
    require_binaries()
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    if openmetrics is not None:
        backfill(openmetrics, data_dir)
    config_file = workdir / "prometheus.yml"
    config = {
        "global": {
            "scrape_interval": _duration(scrape_interval),
            "evaluation_interval": _duration(scrape_interval),
        },
        "scrape_configs": [dict(job) for job in scrape_configs],
    }
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    log_file = workdir / "prometheus.log"
    server = None
    for _ in range(_PORT_ATTEMPTS):
        server = _start(workdir, config_file, data_dir, log_file, extra_args, ready_timeout)
        if server is not None:
            break
    if server is None:
        raise RuntimeError(f"Prometheus found no free port; see {log_file}")
    try:
        yield server
    finally:
        _stop(server.process)


def _start(
    workdir: Path,
    config_file: Path,
    data_dir: Path,
    log_file: Path,
    extra_args: Sequence[str],
    ready_timeout: float,
) -> PrometheusServer | None:
    """A ready server, or ``None`` if another process took the port first."""
    port = _free_port()
    command = [
        "prometheus",
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        # Backfilled blocks may be old; retention counts from the newest block anyway.
        "--storage.tsdb.retention.time=100y",
        *extra_args,
    ]
    log_start = log_file.stat().st_size if log_file.exists() else 0
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=_loopback_env()
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_text = log_file.read_bytes()[log_start:].decode(errors="replace")
            if "address already in use" in log_text:
                return None
            raise RuntimeError(f"Prometheus exited with {process.returncode}:\n{log_text[-2000:]}")
        if _ready(url):
            return PrometheusServer(url, port, data_dir, config_file, log_file, process)
        time.sleep(_POLL_INTERVAL)
    _stop(process)
    raise TimeoutError(f"Prometheus at {url} not ready after {ready_timeout} s; see {log_file}")


def instant_query(server: PrometheusServer, promql: str) -> list[dict[str, Any]]:
    """``data.result`` of an instant query: one ``{"metric": ..., "value": [t, v]}`` a series."""
    url = f"{server.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with _OPENER.open(url, timeout=5.0) as response:
        body = json.load(response)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for(
    server: PrometheusServer, promql: str, *, timeout: float = READY_TIMEOUT
) -> list[dict[str, Any]]:
    """Poll ``promql`` until it returns a series, e.g. ``up{job="proxy"} == 1`` after the
    first scrape; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = instant_query(server, promql)
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{promql!r} returned nothing for {timeout} s at {server.url}")
        time.sleep(_POLL_INTERVAL)


async def wait_for_async(
    server: PrometheusServer, promql: str, *, timeout: float = READY_TIMEOUT
) -> list[dict[str, Any]]:
    """``wait_for`` from async code: the polling runs in a worker thread, so tasks on the
    caller's event loop (a controller under test) keep running while it waits."""
    return await asyncio.to_thread(wait_for, server, promql, timeout=timeout)


def _ready(url: str) -> bool:
    try:
        with _OPENER.open(f"{url}/-/ready", timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _loopback_env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    return env


def _duration(seconds: float) -> str:
    """Seconds as a Prometheus duration: ``15s``, ``500ms``."""
    milliseconds = round(seconds * 1000)
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"
