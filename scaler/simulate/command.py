"""``scaler simulate``: parse options, check every input, run, then write outputs.

Everything that can be wrong with the input is checked before the simulation runs
and before anything is written, so a bad option never leaves a half-written file.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from scaler.errors import UsageError, quote
from scaler.simulate.atomic import OutputError, check_outputs
from scaler.simulate.bounds import (
    MAX_CPU_TARGET,
    MAX_DURATION,
    MAX_PARALLEL,
    MAX_REPLICAS,
    MAX_REQUESTS,
    check_range,
)
from scaler.simulate.bounds import MAX_TOKENS_PER_SECOND as MAX_TPS
from scaler.simulate.model import ROUTINGS
from scaler.simulate.outputs import write_outputs
from scaler.simulate.overrides import KINDS, check_windows, parse_window
from scaler.simulate.policies import (
    BUILT_IN,
    DEFAULT_POLICIES,
    SimPolicy,
    build_policy,
    parse_routing,
)
from scaler.simulate.progress import Progress
from scaler.simulate.replica import ModelParams
from scaler.simulate.sampling import MAX_TOKEN_SPREAD
from scaler.simulate.scenarios import DEFAULT_SCENARIO, SCENARIOS, build_scenario
from scaler.simulate.side_by_side import Simulation, simulate
from scaler.simulate.types import OverrideWindow, SimulationError, Trace, TraceError
from scaler.simulate.zero import fill_savings, with_companions

# The bounds the manifests deploy: the router's whole queue, and each pod's proxy
# queue where there is no router (the cpu-hpa overlay).
DEFAULT_ROUTER_MAX_QUEUE = ModelParams().router_max_queue
DEFAULT_MAX_QUEUE = ModelParams().max_queue

# Token rates of a small model (~1-3 B parameters, Q4) on a laptop CPU and on one GPU.
HARDWARE = {
    "cpu": {"prompt_tokens_per_second": 100.0, "completion_tokens_per_second": 15.0},
    "gpu": {"prompt_tokens_per_second": 2000.0, "completion_tokens_per_second": 80.0},
}


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "simulate",
        help="dry-run scaling policies against a load trace",
        description="Replay a load trace against scaling policies, side by side.",
    )
    load = parser.add_argument_group("load (one of)")
    load.add_argument(
        "--scenario",
        help=f"built-in scenario: {', '.join(SCENARIOS)} (default: {DEFAULT_SCENARIO})",
    )
    load.add_argument("--trace", type=Path, help="CSV trace (see docs/simulate.md)")
    load.add_argument("--from-prometheus", metavar="URL", help="build the trace from history")
    load.add_argument("--query", help="with --from-prometheus: PromQL giving requests/s")
    load.add_argument("--start", help="range start: RFC 3339, unix seconds or now-6h")
    load.add_argument("--end", default="now", help="range end (default: now)")
    load.add_argument("--step", type=float, default=15.0, help="seconds per sample (15)")

    policy = parser.add_argument_group("policies")
    policy.add_argument(
        "--policy",
        action="append",
        help=f"{', '.join(BUILT_IN)} or config, optionally NAME@ROUTING; repeat to "
        f"compare (default: {', '.join(DEFAULT_POLICIES)})",
    )
    policy.add_argument(
        "--routing",
        choices=ROUTINGS,
        help="what sends requests to the pods, for every policy: shared (scaler router's "
        "one queue), least (fewest outstanding) or random (the Service); default: each "
        "policy's own stack, cpu-hpa behind random, the others behind shared",
    )
    policy.add_argument("--config", type=Path, help="the config file scaler run reads")
    policy.add_argument("--target", help="namespace/deployment in --config (default: first)")
    policy.add_argument("--cpu-hpa-lag", type=float, default=0.0, help="seconds (seed: 180)")
    policy.add_argument("--cpu-target", type=float, default=80.0, help="percent (80)")
    policy.add_argument(
        "--push",
        action="store_true",
        help="policies reading the routers also decide at each queue change (NAME+push)",
    )

    replay = parser.add_argument_group(
        "overrides to replay (seconds from the trace's start; repeat each for more windows)"
    )
    for kind, metavar, what in (
        ("outage", "START:END", "polls read no metric (a config's fallback applies)"),
        ("pause", "START:END", "scaling is paused (the pause annotation)"),
        ("pin", "START:END=N", "the replicas are pinned to N (the pin annotation)"),
    ):
        replay.add_argument(f"--{kind}", action="append", default=[], metavar=metavar, help=what)

    model = parser.add_argument_group("model of Ollama")
    model.add_argument(
        "--hardware",
        choices=sorted(HARDWARE),
        default="cpu",
        help="token rates of a small model: cpu 100/15, gpu 2000/80 tokens/s (cpu)",
    )
    model.add_argument("--parallel", type=int, default=1, help="OLLAMA_NUM_PARALLEL (1)")
    model.add_argument(
        "--max-queue",
        type=int,
        help=f"requests allowed to wait: in total behind shared routing (the router's, "
        f"{DEFAULT_ROUTER_MAX_QUEUE}), per pod behind least and random (the proxies', "
        f"{DEFAULT_MAX_QUEUE})",
    )
    model.add_argument("--cold-start", type=float, default=30.0, help="seconds (30)")
    model.add_argument(
        "--capacity",
        type=int,
        help="pods the nodes can run; the rest stay Pending (default: no limit)",
    )
    model.add_argument("--prompt-tokens-per-second", type=float, help="override --hardware")
    model.add_argument("--completion-tokens-per-second", type=float, help="override --hardware")
    model.add_argument(
        "--service-time",
        choices=("deterministic", "exponential"),
        default="deterministic",
        help="a request's time from its tokens, or exponential around it (deterministic)",
    )
    model.add_argument(
        "--token-spread",
        type=float,
        default=1.0,
        help=f"factor on the lognormal spread of tokens per request, 0 to "
        f"{MAX_TOKEN_SPREAD:g}; 0: every request gets exactly the mean (1)",
    )
    model.add_argument("--seed", type=int, default=1, help="same seed, same result (1)")

    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print figures as JSON")
    output.add_argument("--csv", type=Path, help="write the per-second timeline")
    output.add_argument("--plot", type=Path, help="write a PNG plot")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    params = _params(args)
    policies = _policies(args)
    try:
        check_outputs({"--csv": args.csv, "--plot": args.plot})
    except OutputError as error:
        raise UsageError(str(error)) from error
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install 'scaler[plot]'")
    windows = _windows(args)
    trace = _trace(args)
    try:
        check_windows(windows, trace.duration)
    except SimulationError as error:
        raise UsageError(str(error)) from error
    trace = replace(trace, overrides=windows)
    simulation = Simulation(
        trace, policies, params, args.seed, exponential=args.service_time == "exponential"
    )
    with Progress(trace.duration * len(policies), stream=sys.stderr) as bar:
        results, burst_at = simulate(simulation, progress=bar.update)
    fill_savings(policies, results)
    write_outputs(args, trace, params, results, burst_at)
    return 0


def _params(args: argparse.Namespace) -> ModelParams:
    rates = dict(HARDWARE[args.hardware])
    if args.prompt_tokens_per_second is not None:
        rates["prompt_tokens_per_second"] = args.prompt_tokens_per_second
    if args.completion_tokens_per_second is not None:
        rates["completion_tokens_per_second"] = args.completion_tokens_per_second
    checks = {
        "--parallel": (args.parallel, 1, MAX_PARALLEL),
        "--max-queue": (0 if args.max_queue is None else args.max_queue, 0, MAX_REQUESTS),
        "--cold-start": (args.cold_start, 0, MAX_DURATION),
        "--capacity": (1 if args.capacity is None else args.capacity, 1, MAX_REPLICAS),
        "--prompt-tokens-per-second": (rates["prompt_tokens_per_second"], 1e-9, MAX_TPS),
        "--completion-tokens-per-second": (
            rates["completion_tokens_per_second"],
            1e-9,
            MAX_TPS,
        ),
        "--cpu-hpa-lag": (args.cpu_hpa_lag, 0, MAX_DURATION),
        "--cpu-target": (args.cpu_target, 1, MAX_CPU_TARGET),
        "--step": (args.step, 1, MAX_DURATION),
        "--token-spread": (args.token_spread, 0, MAX_TOKEN_SPREAD),
    }
    try:
        for option, (value, lowest, highest) in checks.items():
            check_range(option, value, lowest, highest)
    except SimulationError as error:
        raise UsageError(str(error)) from error
    params = replace(
        ModelParams(),
        parallel=args.parallel,
        cold_start=args.cold_start,
        prompt_tokens_per_second=rates["prompt_tokens_per_second"],
        completion_tokens_per_second=rates["completion_tokens_per_second"],
        capacity=args.capacity,
    )
    if args.max_queue is not None:  # one bound, for whichever queue requests wait in
        params = replace(params, max_queue=args.max_queue, router_max_queue=args.max_queue)
    return params


def _policies(args: argparse.Namespace) -> tuple[SimPolicy, ...]:
    names = args.policy
    if names is None:
        names = ["config" if args.config else "queue", "cpu-hpa"]
    if args.config is not None and all(n.partition("@")[0] != "config" for n in names):
        names = [*names, "config"]
    if len(set(names)) != len(names):
        raise UsageError(f"a policy is named twice: {', '.join(names)}")
    try:
        routing = None if args.routing is None else parse_routing(args.routing, what="--routing")
        policies = tuple(
            build_policy(
                name,
                routing=routing,
                config_path=args.config,
                environ=os.environ,
                target=args.target,
                cpu_hpa_lag=args.cpu_hpa_lag,
                cpu_target=args.cpu_target,
                parallel=args.parallel,
                push=args.push,
            )
            for name in names
        )
    except SimulationError as error:
        raise UsageError(str(error)) from error
    for policy in policies:
        most = policy.static_replicas if policy.spec is None else policy.spec.max_replicas
        if most is not None and most > MAX_REPLICAS:  # each pod is modelled one by one
            raise UsageError(
                f"policy {policy.name!r}: {most:,} replicas, more than the "
                f"{MAX_REPLICAS:,} the simulator runs"
            )
    return with_companions(policies)


def _windows(args: argparse.Namespace) -> tuple[OverrideWindow, ...]:
    """``--outage``, ``--pause`` and ``--pin`` as windows, checked before the trace is
    built; that they end within it is checked once it is."""
    try:
        return tuple(parse_window(kind, text) for kind in KINDS for text in getattr(args, kind))
    except SimulationError as error:
        raise UsageError(str(error)) from error


def _trace(args: argparse.Namespace) -> Trace:
    sources = [args.scenario is not None, args.trace is not None, args.from_prometheus is not None]
    if sum(sources) > 1:
        raise UsageError("give only one of --scenario, --trace and --from-prometheus")
    try:
        if args.trace is not None:
            from scaler.simulate.trace_csv import load_trace_csv

            return load_trace_csv(args.trace, seed=args.seed, token_spread=args.token_spread)
        if args.from_prometheus is not None:
            return _prometheus_trace(args)
        name = args.scenario or DEFAULT_SCENARIO
        return build_scenario(name, seed=args.seed, token_spread=args.token_spread)
    except (SimulationError, TraceError) as error:  # a bad trace is bad input: exit 2
        raise UsageError(str(error)) from error


def _prometheus_trace(args: argparse.Namespace) -> Trace:
    from scaler.simulate.trace_prometheus import load_trace_prometheus, parse_time

    if not args.query:
        raise UsageError("--from-prometheus needs --query (a PromQL rate in requests/s)")
    now = datetime.now(UTC)
    start = parse_time(args.start or "now-1h", now=now)
    end = parse_time(args.end, now=now)
    if end <= start:
        raise UsageError(f"--start {quote(args.start)} is not before --end {quote(args.end)}")
    return load_trace_prometheus(
        args.from_prometheus,
        args.query,
        start=start,
        end=end,
        step=args.step,
        seed=args.seed,
        token_spread=args.token_spread,
    )
