"""The `stackci` command line: subcommands registered by decorator, one module per concern.

Every error the user can act on becomes one line on stderr and an exit code (2 for usage);
a traceback means a bug in the harness.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.exc import SQLAlchemyError

from stackci.errors import StackciError

# The command modules: importing each fills the registry below. One line per module; a new
# concern adds its line here (and nothing else imports a command module).
COMMAND_MODULES = (
    "stackci.commands.models",
    "stackci.commands.workloads",
    "stackci.commands.build",
    "stackci.commands.nightly",
    "stackci.commands.release",
    "stackci.commands.cost",
    "stackci.commands.contracts",
    "stackci.commands.fidelity",
    "stackci.commands.serve",
    "stackci.commands.analysis",
    "stackci.commands.regressions",
    "stackci.commands.store",
)


@dataclass
class Command:
    name: str
    help: str
    func: Callable[[argparse.Namespace], int]
    arguments: list[tuple[tuple, dict]] = field(default_factory=list)


REGISTRY: dict[str, Command] = {}


def arg(*flags, **options) -> tuple[tuple, dict]:
    """One argparse argument, as `parser.add_argument(*flags, **options)` takes it."""
    return flags, options


def command(name: str, help: str, arguments: list[tuple[tuple, dict]] = ()):
    """Register `func(args) -> exit code` as the subcommand `name` (spaces make sub-subcommands
    share a prefix, e.g. "contracts check")."""

    def register(func):
        REGISTRY[name] = Command(name, help, func, list(arguments))
        return func

    return register


def combination_arguments(default: str | None = "master") -> list[tuple[tuple, dict]]:
    """The words that choose a combination, shared by every command that takes one."""
    return [
        arg("--combination", "-c", default=default,
            help="master, worktree, release:latest, release:<manifest> "
                 f"(default: {default or 'the default plan'})"),
        arg("--pin", action="append", default=[], metavar="MODULE=VERSION",
            help="pin one module to a release version, 'master' or a commit; repeatable"),
    ]


def db_argument() -> tuple[tuple, dict]:
    """--db: the results database, shared by every command that reads or writes it."""
    return arg("--db", default=None, metavar="URL",
               help="results database (default: STACKCI_DB or sqlite in the working directory)")


def interpreter_arguments(module: str = "the stack") -> list[tuple[tuple, dict]]:
    """--python, and the combination words with no default, so that "not given" is visible:
    the commands that run the stack choose the interpreter with stack.interpreter."""
    chosen = [(flags, {**options, "default": None if flags[0] == "--combination" else
                       options.get("default")}) for flags, options in combination_arguments()]
    return [arg("--python", default=None, metavar="PATH",
                help=f"interpreter of {module} (default: this one if it has it, else the "
                     "combination's environment)"), *chosen]


def common_arguments() -> list[tuple[tuple, dict]]:
    return [
        arg("--home", default=None, help="working directory of the harness (default ./.stackci)"),
    ]


def build_parser() -> argparse.ArgumentParser:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    parser = argparse.ArgumentParser(prog="stackci", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for name in sorted(REGISTRY):
        cmd = REGISTRY[name]
        head, _, tail = name.partition(" ")
        if tail:
            if head not in groups:
                group = sub.add_parser(head, help=f"{head} commands")
                groups[head] = group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND",
                                                    required=True)
            target = groups[head].add_parser(tail, help=cmd.help, description=cmd.help)
        else:
            target = sub.add_parser(name, help=cmd.help, description=cmd.help)
        for flags, options in common_arguments() + cmd.arguments:
            target.add_argument(*flags, **options)
        target.set_defaults(_command=cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `stackci ... | head` ends quietly, as a Unix tool does
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._command.func(args) or 0)
    except StackciError as exc:
        print(f"stackci: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except SQLAlchemyError as exc:  # a damaged or unreachable store: one line, no traceback
        problem = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        print(f"stackci: error: the results database failed: {problem} (`stackci store "
              "check` names damaged tables)", file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        signum = getattr(stop, "signum", signal.SIGINT)
        print(f"stackci: interrupted ({signal.Signals(signum).name}); finished results are "
              "stored (resume with --resume)", file=sys.stderr)
        return 128 + signum
