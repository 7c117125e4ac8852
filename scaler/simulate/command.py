"""``scaler simulate``: parse options, check every input, run, then write outputs.

Everything that can be wrong with the input is checked before the simulation runs
and before anything is written, so a bad option never leaves a half-written file.
The options become checked inputs in ``inputs``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import replace
from pathlib import Path

from scaler.errors import UsageError
from scaler.simulate.atomic import OutputError, check_outputs
from scaler.simulate.inputs import (
    HARDWARE,
    params_from,
    policies_from,
    trace_from,
    windows_from,
)
from scaler.simulate.model import ROUTINGS
from scaler.simulate.outputs import write_outputs
from scaler.simulate.overrides import check_windows
from scaler.simulate.policies import BUILT_IN, DEFAULT_POLICIES
from scaler.simulate.progress import Progress
from scaler.simulate.replica import ModelParams
from scaler.simulate.sampling import MAX_TOKEN_SPREAD
from scaler.simulate.scenarios import DEFAULT_SCENARIO, SCENARIOS
from scaler.simulate.side_by_side import Simulation, simulate
from scaler.simulate.types import SimulationError
from scaler.simulate.zero import fill_savings

# The bounds the manifests deploy: the router's whole queue, and each pod's proxy
# queue where there is no router (the cpu-hpa overlay).
DEFAULT_ROUTER_MAX_QUEUE = ModelParams().router_max_queue
DEFAULT_MAX_QUEUE = ModelParams().max_queue


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
    params = params_from(args)
    policies = policies_from(args)
    try:
        check_outputs({"--csv": args.csv, "--plot": args.plot})
    except OutputError as error:
        raise UsageError(str(error)) from error
    if args.plot is not None and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot needs matplotlib: pip install 'scaler[plot]'")
    windows = windows_from(args)
    trace = trace_from(args)
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
