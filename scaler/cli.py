"""The ``scaler`` command. Builds the configuration at the edge and passes it down."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from scaler.config import load_config
from scaler.errors import ConfigError, ScalerError, UsageError
from scaler.policy import Behavior, ScalingRules
from scaler.simulate import command as simulate_command

EXIT_ERROR = 1
EXIT_USAGE = 2


def _describe_rules(name: str, rules: ScalingRules) -> list[str]:
    policies = ", ".join(
        f"{p.value}{'%' if p.type.value == 'Percent' else ' pods'} per {p.period_seconds}s"
        for p in rules.policies
    )
    return [
        f"  {name}: window {rules.stabilization_window_seconds}s, "
        f"select {rules.select_policy.value}, tolerance {rules.tolerance:g}, "
        f"policies: {policies}"
    ]


def _describe_behavior(behavior: Behavior) -> list[str]:
    return _describe_rules("scaleUp", behavior.scale_up) + _describe_rules(
        "scaleDown", behavior.scale_down
    )


def _config_check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(f"{args.file or 'built-in default'}: valid; poll every {config.poll_interval:g}s")
    for target in config.targets:
        policy = target.to_policy()
        print(f"{target.key}: {policy.min_replicas}..{policy.max_replicas} replicas")
        for metric in policy.metrics:
            print(
                f"  metric {metric.name}: {metric.source.value}, "
                f"{metric.target_type.value} {metric.target:g}"
            )
        print("\n".join(_describe_behavior(policy.behavior)))
    return 0


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from scaler import logs
    from scaler.controller.app import run
    from scaler.settings import load_settings

    config = load_settings(args.config)
    logs.configure(args.log_level)
    return asyncio.run(run(config, kubeconfig=args.kubeconfig))


def _proxy(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import signal

    from scaler import logs
    from scaler.proxy.app import serve
    from scaler.proxy.settings import load_proxy_settings

    settings = load_proxy_settings(
        host=args.host,
        port=args.port,
        upstream=args.upstream,
        management_upstream=args.management_upstream,
        parallel=args.parallel,
        max_queue=args.max_queue,
        retry_after=args.retry_after,
        ready_model=args.ready_model,
    )
    logs.configure(args.log_level)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serve(settings)

    asyncio.run(main())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaler",
        description="Event-driven autoscaler for Ollama on Kubernetes, with HPA-exact rules.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    config = commands.add_parser("config", help="check a configuration file")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION")
    check = config_commands.add_parser(
        "check", help="validate a config file and print the effective policy"
    )
    check.add_argument("file", nargs="?", help="YAML file (default: the built-in config)")
    check.set_defaults(handler=_config_check)
    simulate_command.add_parser(commands)
    run = commands.add_parser(
        "run",
        help="run the controller (in the cluster)",
        description="Poll Prometheus, decide with the HPA's rules, scale the Deployments.",
    )
    run.add_argument("--config", help="YAML file (default: $SCALER_CONFIG, else built-in)")
    run.add_argument("--kubeconfig", help="default: in-cluster, else $KUBECONFIG")
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    run.set_defaults(handler=_run)
    proxy = commands.add_parser(
        "proxy",
        help="run the admission proxy in front of Ollama (a sidecar)",
        description="Queue requests into Ollama's slots, measure the queue, pass the rest.",
    )
    proxy.add_argument("--host", help="listen address (0.0.0.0)")
    proxy.add_argument("--port", type=int, help="listen port (11434)")
    proxy.add_argument("--upstream", help="Ollama (http://127.0.0.1:11435)")
    proxy.add_argument("--management-upstream", help="where pull/create/copy/delete/push go")
    proxy.add_argument("--parallel", type=int, help="OLLAMA_NUM_PARALLEL (1)")
    proxy.add_argument("--max-queue", type=int, help="requests allowed to wait (16)")
    proxy.add_argument("--retry-after", type=int, help="seconds sent with a 503 (5)")
    proxy.add_argument("--ready-model", help="ready only once this model is loaded")
    proxy.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    proxy.set_defaults(handler=_proxy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE if args.command else 0
    try:
        result: int = handler(args)
    except (UsageError, ConfigError) as error:
        print(f"scaler: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ScalerError as error:
        print(f"scaler: {error}", file=sys.stderr)
        return EXIT_ERROR
    return result


if __name__ == "__main__":
    sys.exit(main())
