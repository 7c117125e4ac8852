"""``scaler proxy``: what it adds to latency, first byte and throughput, and its memory.

Run:
  .venv/bin/python -m benchmarks.bench_proxy [--requests 500] [--streams 200]

Every figure compares the proxy with a direct connection to the same fake Ollama in the
same run. The proxy is a real ``scaler proxy`` child process (its RSS is read from
``/proc/PID/status``); the fake Ollama (``tests.fake_ollama``) is a second child process,
so neither shares a GIL with the aiohttp client here. Each phase starts a fresh pair.

- latency: sequential non-streaming ``/api/generate`` (5 tokens, no prefill), direct and
  proxy alternated (ABBA) after a warm-up. Goal: p50 added <= 1 ms.
- first byte: streaming ``/api/chat`` with a 20 ms prefill; time from sending to the
  first body byte (the first token). Goal: p50 added <= 2 ms.
- throughput: ``--streams`` concurrent streaming ``/api/chat`` of 200 tokens each,
  rounds ABBA; tokens received per second. Goal: proxy >= 0.9x direct. Twice:
  "stress" (1000 tokens/s per stream, 8 rounds per side): the fake itself is the
  limit (its one GIL) and the three processes share the machine's cores, so this
  mostly shows what the proxy's CPU takes from the others; "paced" (200 tokens/s per
  stream, 2 rounds per side; 12,800 tokens/s asked of 64 slots, above what one real
  Ollama serves): whether the proxy keeps up. The cores each process used are
  printed, so the proxy's cost per token can be scaled to real rates.
- memory: the proxy's VmRSS sampled every 20 ms through all phases (and the kernel's
  VmHWM). Goal: peak <= 80 MiB.

The proxy accepts at most ``--parallel 64`` (``ProxySettings.parallel``), so the
throughput phase gives the fake 64 slots and the proxy ``--parallel 64``: direct, the
other streams wait in the fake's queue; through the proxy, in the proxy's queue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MODEL = "llama3.2"
SLOTS = 64
"""``ProxySettings.parallel``'s upper bound; the fake gets as many slots."""
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
PROCESSES = ("proxy", "fake", "client")
STREAM_TOKENS = 200
FAKE_LAUNCHER = """
import json, signal, sys
from tests.fake_ollama import running_fake_ollama
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
with running_fake_ollama(**json.loads(sys.argv[1])) as fake:
    print(fake.port, flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
"""


# -- child processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stop(child: subprocess.Popen[Any]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(STOP_TIMEOUT)


def start_fake(settings: dict[str, Any]) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", FAKE_LAUNCHER, json.dumps(settings)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    readable, _, _ = select.select([child.stdout], [], [], START_TIMEOUT)
    port = child.stdout.readline().strip() if readable else ""
    if not port.isdigit():
        stop(child)
        raise RuntimeError(f"the fake Ollama did not start (exit code {child.poll()})")
    return child, f"http://{HOST}:{port}"


def start_proxy(upstream: str, parallel: int, max_queue: int) -> tuple[subprocess.Popen[Any], str]:
    port = free_port()
    args = ["--host", HOST, "--port", str(port), "--upstream", upstream]
    args += ["--parallel", str(parallel), "--max-queue", str(max_queue), "--log-level", "warning"]
    child = subprocess.Popen([sys.executable, "-m", "scaler.cli", "proxy", *args], cwd=ROOT)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and child.poll() is None:
        try:
            socket.create_connection((HOST, port), timeout=0.1).close()
            return child, f"http://{HOST}:{port}"
        except OSError:
            time.sleep(0.05)
    stop(child)
    raise RuntimeError(f"the proxy did not start (exit code {child.poll()})")


def proc_status_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime + stime


class RssSampler:
    """Samples a process's VmRSS from a thread; ``peak`` in MiB."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            try:
                self.peak = max(self.peak, proc_status_mib(self.pid, "VmRSS"))
            except (FileNotFoundError, ProcessLookupError):
                return  # the proxy is gone; the phase reports the error
            self._done.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()


@dataclass
class Stack:
    direct: str
    proxied: str
    proxy_pid: int
    fake_pid: int
    rss: RssSampler
    idle_mib: float
    hwm_mib: float = 0.0


@contextmanager
def running_stack(fake: dict[str, Any], *, parallel: int, max_queue: int) -> Iterator[Stack]:
    """A fake Ollama and a proxy in front of it, both child processes, stopped after."""
    fake_child, direct = start_fake(fake)
    try:
        proxy_child, proxied = start_proxy(direct, parallel, max_queue)
        try:
            with RssSampler(proxy_child.pid) as rss:
                idle = proc_status_mib(proxy_child.pid, "VmRSS")
                stack = Stack(direct, proxied, proxy_child.pid, fake_child.pid, rss, idle)
                yield stack
                stack.hwm_mib = proc_status_mib(proxy_child.pid, "VmHWM")
        finally:
            stop(proxy_child)
    finally:
        stop(fake_child)


# -- measurements ----------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def generate_once(session: aiohttp.ClientSession, url: str) -> float:
    body = {"model": MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 5}}
    started = time.perf_counter()
    async with session.post(url + "/api/generate", json=body) as response:
        await response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise RuntimeError(f"{url}: /api/generate answered {response.status}")
    return elapsed


async def first_byte_once(session: aiohttp.ClientSession, url: str) -> float:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    started = time.perf_counter()
    async with session.post(url + "/api/chat", json=body) as response:
        first = await response.content.readany()
        elapsed = time.perf_counter() - started
        await response.read()
        if response.status != 200 or not first:
            raise RuntimeError(f"{url}: /api/chat answered {response.status}")
    return elapsed


Once = Callable[[aiohttp.ClientSession, str], Awaitable[float]]


async def alternate(
    stack: Stack, once: Once, count: int, warmup: int
) -> tuple[dict[str, list[float]], float]:
    """``count`` timings per side, direct and proxy alternated ABBA to cancel drift; and
    the proxy's CPU seconds per request over them."""
    times: dict[str, list[float]] = {"direct": [], "proxy": []}
    sides = {"direct": stack.direct, "proxy": stack.proxied}
    cpu0 = 0.0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as session:
        for i in range(warmup + count):
            if i == warmup:
                cpu0 = cpu_seconds(stack.proxy_pid)
            order = ("direct", "proxy") if i % 2 == 0 else ("proxy", "direct")
            for side in order:
                elapsed = await once(session, sides[side])
                if i >= warmup:
                    times[side].append(elapsed)
    return times, (cpu_seconds(stack.proxy_pid) - cpu0) / count


async def stream_tokens(session: aiohttp.ClientSession, url: str, tokens: int) -> int:
    """One streamed chat; returns the token chunks received (the final one excluded)."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "options": {"num_predict": tokens},
    }
    lines = 0
    async with session.post(url + "/api/chat", json=body) as response:
        async for chunk in response.content.iter_any():
            lines += chunk.count(b"\n")
        if response.status != 200:
            raise RuntimeError(f"{url}: /api/chat answered {response.status}")
    return lines - 1


async def throughput_round(url: str, streams: int, tokens: int) -> tuple[int, float]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        calls = (stream_tokens(session, url, tokens) for _ in range(streams))
        counts = await asyncio.gather(*calls)
        elapsed = time.perf_counter() - started
    if sum(counts) != streams * tokens:
        raise RuntimeError(f"{url}: {sum(counts)} tokens of {streams * tokens}")
    return sum(counts), elapsed


@dataclass
class Load:
    """Tokens and seconds of one side's throughput rounds, with the CPU seconds each
    process used meanwhile."""

    tokens: int = 0
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PROCESSES, 0.0))

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds

    def cores(self) -> str:
        return ", ".join(f"{name} {used / self.seconds:.2f}" for name, used in self.cpu.items())


def cpu_now(stack: Stack) -> dict[str, float]:
    return {
        "proxy": cpu_seconds(stack.proxy_pid),
        "fake": cpu_seconds(stack.fake_pid),
        "client": time.process_time(),
    }


async def throughput(stack: Stack, streams: int, tokens: int, rounds: int) -> dict[str, Load]:
    """``rounds`` rounds per side, ABBA."""
    loads = {"direct": Load(), "proxy": Load()}
    for i in range(rounds):
        for side in ("direct", "proxy") if i % 2 == 0 else ("proxy", "direct"):
            before = cpu_now(stack)
            url = stack.direct if side == "direct" else stack.proxied
            count, elapsed = await throughput_round(url, streams, tokens)
            after, load = cpu_now(stack), loads[side]
            load.tokens += count
            load.seconds += elapsed
            for name in PROCESSES:
                load.cpu[name] += after[name] - before[name]
    return loads


# -- phases and report -----------------------------------------------------------------


@dataclass
class Row:
    measure: str
    direct: float | None
    proxy: float
    added: str
    target: str = ""
    met: bool | None = None


def timing_rows(name: str, times: dict[str, list[float]], limit_ms: float) -> list[Row]:
    rows = []
    for label, q in (("p50", 0.50), ("p95", 0.95)):
        direct, proxy = pct(times["direct"], q) * 1e3, pct(times["proxy"], q) * 1e3
        row = Row(f"{name} {label} (ms)", direct, proxy, f"{proxy - direct:+.2f}")
        if label == "p50":
            row.target, row.met = f"+ <= {limit_ms:g} ms", proxy - direct <= limit_ms
        rows.append(row)
    return rows


def latency_phase(args: argparse.Namespace, peaks: list[float]) -> list[Row]:
    fake = {"slots": 4, "tokens": 5, "tokens_per_second": 1e6}
    with running_stack(fake, parallel=4, max_queue=16) as stack:
        times, cpu = asyncio.run(alternate(stack, generate_once, args.requests, args.warmup))
    peaks += [stack.rss.peak, stack.hwm_mib]
    print(f"latency: proxy CPU {cpu * 1e6:.0f} us per request")
    return timing_rows("latency", times, 1.0)


def first_byte_phase(args: argparse.Namespace, peaks: list[float]) -> list[Row]:
    fake = {"slots": 4, "tokens": 5, "tokens_per_second": 1e6, "prefill": 0.02}
    with running_stack(fake, parallel=4, max_queue=16) as stack:
        times, cpu = asyncio.run(
            alternate(stack, first_byte_once, args.first_bytes, args.warmup // 5)
        )
    peaks += [stack.rss.peak, stack.hwm_mib]
    print(f"first byte: proxy CPU {cpu * 1e6:.0f} us per request")
    return timing_rows("first byte", times, 2.0)


def throughput_phase(
    args: argparse.Namespace, peaks: list[float], *, name: str, rate: float, rounds: int
) -> list[Row]:
    fake = {"slots": SLOTS, "tokens": STREAM_TOKENS, "tokens_per_second": rate}
    with running_stack(fake, parallel=SLOTS, max_queue=10 * args.streams) as stack:
        loads = asyncio.run(throughput(stack, args.streams, STREAM_TOKENS, rounds))
    peaks += [stack.rss.peak, stack.hwm_mib]
    direct, proxy = loads["direct"], loads["proxy"]
    for side, load in loads.items():
        print(f"{name} {side}: cores used: {load.cores()}")
    per_token = proxy.cpu["proxy"] / proxy.tokens
    print(
        f"{name}: proxy CPU {per_token * 1e6:.1f} us per token; RSS idle "
        f"{stack.idle_mib:.1f} MiB, sampled peak {stack.rss.peak:.1f} MiB, "
        f"VmHWM {stack.hwm_mib:.1f} MiB"
    )
    ratio = proxy.rate / direct.rate
    measure = f"tokens/s {name}"
    return [Row(measure, direct.rate, proxy.rate, f"{ratio:.2f}x", ">= 0.9x", ratio >= 0.9)]


def print_table(rows: list[Row]) -> None:
    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.0f}" if value >= 1000 else f"{value:.2f}"

    print(f"\n{'measure':<26}{'direct':>9}{'proxy':>9}{'added':>9}  {'target':<13}met")
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "NO")
        print(
            f"{row.measure:<26}{number(row.direct):>9}{number(row.proxy):>9}{row.added:>9}  "
            f"{row.target:<13}{met}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="scaler proxy against a direct connection")
    parser.add_argument("--requests", type=int, default=500, help="latency requests per side")
    parser.add_argument("--first-bytes", type=int, default=200, help="TTFB requests per side")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=8, help="stress rounds per side")
    parser.add_argument("--paced-rounds", type=int, default=2, help="0: no paced test")
    args = parser.parse_args()
    started = time.monotonic()
    peaks: list[float] = []
    rows = latency_phase(args, peaks) + first_byte_phase(args, peaks)
    rows += throughput_phase(args, peaks, name="stress", rate=1000.0, rounds=args.rounds)
    if args.paced_rounds:
        rows += throughput_phase(args, peaks, name="paced", rate=200.0, rounds=args.paced_rounds)
    peak = max(peaks)
    rows.append(Row("proxy peak RSS (MiB)", None, peak, "", "<= 80 MiB", peak <= 80))
    print_table(rows)
    print(f"\n{time.monotonic() - started:.0f} s on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
