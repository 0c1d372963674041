"""`python -m npu_serving --model-repository DIR --sku SKU [--host 127.0.0.1] [--port 8000]
[--model-control-mode none|explicit] [--load-model NAME ...] [--pace-device-time]
[--max-request-bytes N] [--max-decompressed-bytes N] [--request-idle-timeout S]`"""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import RepositoryError
from .protocol import Limits
from .server import CONTROL_MODES, InferenceServer, create_app

PROG = "npu-serving"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Serve a model repository over the KServe v2 protocol."
    )
    parser.add_argument("--model-repository", required=True, metavar="DIR")
    parser.add_argument("--sku", required=True, help="NPU SKU name or YAML path to compile for")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--model-control-mode", default="none", choices=CONTROL_MODES,
                        help="none: serve every model of the repository, refuse load/unload; "
                             "explicit: serve the --load-model ones, load/unload on request")
    parser.add_argument("--load-model", action="append", default=[], metavar="NAME",
                        help="with explicit control: a model to load at start ('*': all)")
    parser.add_argument("--pace-device-time", action="store_true",
                        help="each execution lasts at least its simulated device time")
    parser.add_argument("--max-request-bytes", type=_positive, default=Limits.max_body_bytes,
                        metavar="N", help="larger request bodies are refused with 413")
    parser.add_argument("--max-decompressed-bytes", type=_positive,
                        default=Limits.max_decompressed_bytes, metavar="N",
                        help="gzip/deflate bodies may expand to this many bytes")
    parser.add_argument("--request-idle-timeout", type=_positive_seconds,
                        default=Limits.body_idle_timeout_s, metavar="S",
                        help="a request body that stops arriving for S seconds is answered 408")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive byte count, got {text!r}")
    return int(text)


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return seconds


def check_sku(sku: str) -> None:
    from npu_driver import DriverError, load_sku

    try:
        load_sku(sku)
    except DriverError as exc:  # unknown SKU, or a SKU file that is not valid
        raise RepositoryError(str(exc)) from None


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_sku(args.sku)
        server = InferenceServer.from_repository(
            args.model_repository, args.sku, control_mode=args.model_control_mode,
            load_models=args.load_model, pace=args.pace_device_time,
            limits=Limits(args.max_request_bytes, args.max_decompressed_bytes,
                          args.request_idle_timeout))
    except RepositoryError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    uvicorn.run(create_app(server), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
