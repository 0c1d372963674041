"""`python -m npu_serving --model-repository DIR --sku SKU [--host 127.0.0.1] [--port 8000]`"""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import RepositoryError
from .server import InferenceServer, create_app

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
    return parser.parse_args(argv)


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
        server = InferenceServer.from_repository(args.model_repository, args.sku)
    except RepositoryError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    uvicorn.run(create_app(server), host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
