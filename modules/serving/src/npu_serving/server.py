"""The HTTP server: KServe v2 / Open Inference Protocol endpoints over a set of served models."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
import zlib
from importlib.metadata import PackageNotFoundError, version as distribution_version
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import protocol
from .backend import CompilerBackend
from .errors import BadRequest, NotFound, ServingError
from .metrics import Metrics
from .model import READY, ServedModel
from .repository import scan_repository

log = logging.getLogger("npu_serving")

SERVER_NAME = "npu-serving"
EXTENSIONS = ["binary_tensor_data"]


def server_version() -> str:
    try:
        return distribution_version("npu-serving")
    except PackageNotFoundError:
        return "unknown"


class InferenceServer:
    """The models of one server and their lifecycle: loading starts with the server, in the
    background, so that liveness answers at once and readiness waits for every model."""

    def __init__(self, models: list[ServedModel]):
        self.models = {model.name: model for model in models}
        self.metrics = Metrics()
        self._loading: asyncio.Task | None = None

    @classmethod
    def from_repository(cls, root: str | Path, sku) -> "InferenceServer":
        return cls([
            ServedModel(
                entry.name,
                entry.version,
                CompilerBackend(
                    entry.path,
                    sku,
                    precision=entry.config.precision,
                    batching=entry.config.max_batch_size > 0,
                ),
                entry.config,
            )
            for entry in scan_repository(root)
        ])

    def model(self, name: str, version: str | None = None) -> ServedModel:
        if name not in self.models:
            raise NotFound(f"unknown model {name!r}: serving {', '.join(self.models) or 'none'}")
        model = self.models[name]
        model.check_version(version)
        return model

    def not_ready(self) -> list[str]:
        return [f"{m.name} ({m.state})" for m in self.models.values() if m.state != READY]

    async def start(self) -> None:
        for model in self.models.values():
            await model.start(self.metrics)
        self._loading = asyncio.get_running_loop().create_task(self._load_all())

    async def _load_all(self) -> None:
        # One model after another: compiling is CPU-bound, so loading in parallel gains nothing.
        for model in self.models.values():
            await model.load()

    async def stop(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        for model in self.models.values():
            await model.stop()


def create_app(server: InferenceServer) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(title=SERVER_NAME, version=server_version(), lifespan=lifespan)
    app.state.server = server
    _add_error_handlers(app)
    _add_health_routes(app, server)
    _add_model_routes(app, server)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServingError)
    async def serving_error(request: Request, exc: ServingError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": f"{request.url.path}: {exc.detail}"}, exc.status_code)


def _add_health_routes(app: FastAPI, server: InferenceServer) -> None:
    @app.get("/v2/health/live")
    async def live():
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready():
        waiting = server.not_ready()
        if waiting:
            return JSONResponse(
                {"ready": False, "error": f"models not ready: {', '.join(waiting)}"}, 503
            )
        return {"ready": True}

    @app.get("/v2")
    async def server_metadata():
        return {"name": SERVER_NAME, "version": server_version(), "extensions": EXTENSIONS}

    @app.get("/metrics")
    async def metrics():
        return Response(server.metrics.exposition(), media_type=server.metrics.content_type)


def _add_model_routes(app: FastAPI, server: InferenceServer) -> None:
    async def model_metadata(name: str, version: str | None = None):
        return server.model(name, version).metadata()

    async def model_ready(name: str, version: str | None = None):
        model = server.model(name, version)
        model.require_ready()
        return {"name": model.name, "ready": True}

    async def infer(request: Request, name: str, version: str | None = None):
        return await _infer(server, request, server.model(name, version))

    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.add_api_route(prefix, model_metadata, methods=["GET"])
        app.add_api_route(prefix + "/ready", model_ready, methods=["GET"])
        app.add_api_route(prefix + "/infer", infer, methods=["POST"])


async def _infer(server: InferenceServer, request: Request, model: ServedModel) -> Response:
    started = time.perf_counter()
    outcome = "server_error"
    try:
        model.require_ready()
        body = _decompressed(await request.body(), request.headers.get("content-encoding"))
        parsed = protocol.parse_infer_request(
            body, request.headers.get(protocol.HEADER_LENGTH), model
        )
        outputs = await model.infer(parsed.inputs)
        content, headers = protocol.encode_infer_response(model, parsed, outputs)
        outcome = "success"
        return Response(content, headers=headers)
    except ServingError as exc:
        outcome = "client_error" if exc.status < 500 else "server_error"
        raise
    except Exception as exc:  # a backend crash answers 500 with its message, not a traceback
        log.exception("inference on model %s failed", model.name)
        raise ServingError(f"inference on model {model.name!r} failed: {type(exc).__name__}: {exc}")
    finally:
        server.metrics.requests.labels(**model.labels, outcome=outcome).inc()
        elapsed = time.perf_counter() - started
        server.metrics.request_duration.labels(**model.labels).observe(elapsed)


def _decompressed(body: bytes, encoding: str | None) -> bytes:
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error) as exc:
        raise BadRequest(f"request body is not valid {encoding} data: {exc}") from None
    if encoding not in (None, "identity"):
        raise ServingError(f"Content-Encoding {encoding!r} is not supported", 415)
    return body

