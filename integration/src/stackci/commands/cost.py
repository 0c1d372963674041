"""`stackci cost`: price one GEMM or convolution on the stack's performance model.

The harness never imports module code: the question goes to `<python> -m npu_driver cost` in
the stack's interpreter, whose output and exit status are passed through unchanged.
"""

from __future__ import annotations

import argparse
import sys

from stackci.cli import arg, command, interpreter_arguments
from stackci.errors import UsageError
from stackci.stack.interpreter import choose_python
from stackci.stack.port import StackPort

MODES = ("scalesim", "realistic")


def driver_arguments(args: argparse.Namespace) -> list[str]:
    """The `npu_driver cost` command line that asks what `args` ask."""
    argv = ["cost", "--sku", args.sku]
    for assignment in args.set:
        argv += ["--set", assignment]
    if args.gemm is not None:
        argv += ["--gemm", args.gemm, "--batch", str(args.batch)]
    else:
        argv += ["--conv", args.conv]
    argv += ["--mode", args.mode, "--precision", args.precision]
    if args.json:
        argv.append("--json")
    return argv


@command("cost", "price one GEMM or convolution on the stack's performance model",
         [arg("--sku", required=True, help="SKU name or YAML file (see `stackci skus`)"),
          arg("--set", action="append", default=[], metavar="KEY=VALUE",
              help="override a SKU field, e.g. dataflow=ws or array=64x64; repeatable"),
          arg("--gemm", default=None, metavar="M,N,K",
              help="M output rows, N output columns, K reduction"),
          arg("--conv", default=None, metavar="N,C,H,W,K,R,S[,stride[,pad]]",
              help="batch, channels, height, width, filters, kernel height and width"),
          arg("--batch", type=int, default=1, help="independent GEMMs (with --gemm)"),
          arg("--mode", choices=MODES, default="realistic",
              help="scalesim: SCALE-Sim's accounting; realistic: pipelined (default)"),
          arg("--precision", default="fp32", help="fp32, fp16, bf16 or int8 (default fp32)"),
          *interpreter_arguments("npu_driver"),
          arg("--json", action="store_true", help="print the driver's JSON")])
def cost_command(args: argparse.Namespace) -> int:
    if (args.gemm is None) == (args.conv is None):
        raise UsageError("cost needs exactly one of --gemm M,N,K or --conv N,C,H,W,K,R,S")
    python = choose_python(args.home, args.python, args.combination, args.pin, "npu_driver")
    done = StackPort().cost(python, driver_arguments(args))
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode
