"""`semcore-hf env`: versions of Python, semcore_hf and its stack, and the accelerators; paste it in bug reports."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EnvArguments:
    """The flags of `semcore-hf env`."""

    json: bool = field(default=False, metadata={"help": "Print JSON instead of a list."})


def make_parser(prog: str):
    from semcore_hf.cli._parser import CommandParser

    return CommandParser([EnvArguments], prog=prog, description=__doc__.split(";")[0])


def run(args: EnvArguments) -> int:
    import json

    from semcore_hf._env import environment_report

    report = environment_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    packages = report.pop("packages")
    print("Copy and paste this into your bug report:\n")
    for key, value in report.items():
        print(f"- {key}: {value}")
    for name, version in packages.items():
        print(f"- {name}: {version}")
    return 0
