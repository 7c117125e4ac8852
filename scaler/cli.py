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
