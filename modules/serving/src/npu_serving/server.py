"""The HTTP server: KServe v2 / Open Inference Protocol endpoints over a set of served models."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import time
from importlib.metadata import PackageNotFoundError, version as distribution_version
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse as _StarletteJSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import config as model_config, protocol, repository
from .backend import CompilerBackend
from .errors import (BadRequest, ClientGone, NotFound, RepositoryError, ServingError,
                     Unavailable, one_line)
from .metrics import Metrics
from .model import FAILED, INDEX_STATES, READY, UNLOADED, ServedModel

log = logging.getLogger("npu_serving")

SERVER_NAME = "npu-serving"
EXTENSIONS = ["binary_tensor_data", "classification", "parameters", "model_configuration",
              "statistics", "model_repository", "schedule_policy"]
CONTROL_MODES = ("none", "explicit")


class JSONResponse(_StarletteJSONResponse):
    """JSON with non-ASCII characters escaped (\\uXXXX): Starlette's writes them raw as UTF-8,
    which fails on a lone surrogate, and strings carry them from clients (a JSON \\ud800 in a
    model configuration, echoed by its parse error) and from the repository (a folder name
    that is not UTF-8 is surrogate-escaped by os.listdir): every such answer was a 500."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


def server_version() -> str:
    try:
        return distribution_version("npu-serving")
    except PackageNotFoundError:
        return "unknown"


class InferenceServer:
    """The models of one server and their lifecycle: loading starts with the server, in the
    background, so that liveness answers at once and readiness waits for every model.

    With a repository, a folder that cannot be served (a bad config, a model outside the
    repository) is listed as unavailable with its one-line reason, and the others load. In
    `explicit` model control mode only the models named at start load, and the repository
    extension loads and unloads models; in `none` it refuses to.
    """

    def __init__(self, models: list[ServedModel], *, repository: Path | None = None,
                 sku=None, control_mode: str = "none", pace: bool = False,
                 limits: protocol.Limits = protocol.Limits()):
        self.versions: dict[str, dict[str, ServedModel]] = {}
        for model in models:
            self.versions.setdefault(model.name, {})[model.version] = model
        self.broken: dict[str, str] = {}
        self.repository = Path(repository) if repository is not None else None
        self.sku = sku
        self.control_mode = control_mode
        self.pace = pace
        self.limits = limits
        self.bodies = protocol.BodyBudget(limits.max_held_bytes)
        self.metrics = Metrics()
        self._loading: asyncio.Task | None = None
        # Loads and unloads one at a time (the start's loads included): interleaved, two loads
        # of one model left the first one's models running unlisted (their threads, plans and
        # engines leaked), and an unload during a load let the model turn ready unlisted.
        self._changing = asyncio.Lock()
        self._blas_limits = None

    @property
    def models(self) -> dict[str, ServedModel]:
        """Each model's highest version served."""
        return {name: versions[max(versions, key=int)] for name, versions in self.versions.items()
                if versions}

    @classmethod
    def from_repository(cls, root: str | Path, sku, *, control_mode: str = "none",
                        load_models: list[str] = (), pace: bool = False,
                        limits: protocol.Limits = protocol.Limits()) -> "InferenceServer":
        server = cls([], repository=Path(root), sku=sku, control_mode=control_mode, pace=pace,
                     limits=limits)
        if not Path(root).is_dir():
            raise RepositoryError(f"{root}: model repository is not a directory")
        wanted = None if control_mode == "none" or "*" in load_models else set(load_models)
        for name in repository.model_names(Path(root)):
            if wanted is not None and name not in wanted:
                continue
            server._add(repository.model_versions(Path(root), name))
        return server

    def _add(self, entry) -> list[ServedModel]:
        if isinstance(entry, repository.BrokenEntry):
            log.error("%s", entry.error)
            self.broken[entry.name] = entry.error
            self.versions.pop(entry.name, None)
            return []
        try:
            served = [ServedModel(e.name, e.version, CompilerBackend(
                e.path, self.sku, precision=e.config.precision,
                batching=e.config.max_batch_size > 0), e.config, pace=self.pace) for e in entry]
        except RepositoryError as exc:
            return self._add(repository.BrokenEntry(entry[0].name, str(exc)))
        self.broken.pop(served[0].name, None)
        self.versions[served[0].name] = {model.version: model for model in served}
        return served

    def model(self, name: str, version: str | None = None) -> ServedModel:
        if name not in self.versions or not self.versions[name]:
            if name in self.broken:
                raise Unavailable(f"model {name!r} is not available: {self.broken[name]}")
            raise NotFound(f"unknown model {name!r}: serving {', '.join(self.versions) or 'none'}")
        versions = self.versions[name]
        if version in (None, ""):
            return versions[max(versions, key=int)]
        if version not in versions:
            raise NotFound(f"model {name!r} has no version {version!r} (serving version"
                           f"{'s' if len(versions) > 1 else ''} {', '.join(versions)})")
        return versions[version]

    def all_models(self) -> list[ServedModel]:
        return [model for versions in self.versions.values() for model in versions.values()]

    def not_ready(self) -> list[str]:
        waiting = [f"{m.name} ({m.state})" for m in self.all_models()
                   if m.state not in (READY, UNLOADED)]
        return waiting + [f"{name} (unavailable)" for name in self.broken]

    def index(self, ready_only: bool = False) -> list[dict]:
        """Triton's repository index: every model of the repository, loaded or not."""
        rows = {}
        for name in self._repository_names():
            rows[name] = [{"name": name, "state": "UNAVAILABLE", "reason": "unloaded"}]
        for name, reason in self.broken.items():
            rows[name] = [{"name": name, "state": "UNAVAILABLE", "reason": reason}]
        for name, versions in self.versions.items():
            rows[name] = [{"name": name, "version": m.version, "state": INDEX_STATES[m.state],
                           "reason": m.error or ("unloaded" if m.state == UNLOADED else "")}
                          for m in versions.values()]
        listed = [row for name in sorted(rows) for row in rows[name]]
        return [row for row in listed if row["state"] == "READY"] if ready_only else listed

    def _repository_names(self) -> list[str]:
        """The model folders of the repository; none when it cannot be read now (removed or
        made unreadable under the server): the models served are still listed."""
        if self.repository is None:
            return []
        try:
            return repository.model_names(self.repository)
        except OSError as exc:
            log.error("%s: model repository not readable: %s", self.repository,
                      exc.strerror or exc)
            return []

    def set_blas_threads(self) -> None:
        """BLAS threads per instance: the cores divided among every model instance, so that
        instances running at once never oversubscribe the machine."""
        from threadpoolctl import threadpool_limits

        instances = sum(m.instances for m in self.all_models()) or 1
        threads = max(1, (os.cpu_count() or 1) // instances)
        self._blas_limits = threadpool_limits(limits=threads, user_api="blas")
        log.info("BLAS threads per instance: %d (%d instances on %d cores)", threads, instances,
                 os.cpu_count() or 1)

    async def start(self) -> None:
        self.set_blas_threads()
        for model in self.all_models():
            await model.start(self.metrics)
        self._loading = asyncio.get_running_loop().create_task(self._load_all())

    async def _load_all(self) -> None:
        # One model after another: compiling is CPU-bound, so loading in parallel gains nothing.
        for model in self.all_models():
            async with self._changing:
                if model.state != UNLOADED:
                    await model.load()

    async def load_model(self, name: str, parameters: dict | None = None) -> None:
        """The repository extension's load: (re)reads the model's folder and loads it.
        `parameters` are the request's: `config`, Triton's JSON configuration, replaces the
        folder's config file (checked before anything is unloaded); `file:` overrides of the
        model's files are refused."""
        self._check_control(name, "load")
        config = _config_override(self.repository / name, parameters or {})
        async with self._changing:
            await self._load(name, config)

    async def _load(self, name: str, config=None) -> None:
        await _unloaded(self.versions.get(name, {}))
        # Reading the folder reads the ONNX files: off the event loop, which serves on.
        entry = await asyncio.to_thread(repository.model_versions, self.repository, name, config)
        if isinstance(entry, repository.BrokenEntry) and not (self.repository / name).is_dir():
            # Not (or no longer) a model of the repository: nothing to list as unavailable
            # (each name a client tried would otherwise stay in the index).
            self.versions.pop(name, None)
            self.broken.pop(name, None)
            raise BadRequest(f"failed to load {name!r}: {entry.error}")
        served = self._add(entry)
        gc.collect()  # the versions it replaced (see _unloaded)
        if not served:
            raise BadRequest(f"failed to load {name!r}: {self.broken[name]}")
        for model in served:
            await model.start(self.metrics)
            await model.load()
        failed = [m for m in served if m.state == FAILED]
        if failed:
            raise BadRequest(f"failed to load {name!r}: {failed[0].error}")

    async def unload_model(self, name: str) -> None:
        self._check_control(name, "unload")
        async with self._changing:
            await self._unload(name)

    async def _unload(self, name: str) -> None:
        if name not in self.versions:
            if name in self.broken:
                del self.broken[name]
                return
            raise NotFound(f"unknown model {name!r}: serving {', '.join(self.versions) or 'none'}")
        await _unloaded(self.versions.pop(name))
        gc.collect()  # see _unloaded

    def _check_control(self, name: str, action: str) -> None:
        if self.control_mode != "explicit" or self.repository is None:
            raise BadRequest(f"explicit model {action} is not allowed: the server runs in model "
                             f"control mode {self.control_mode!r} (start it with "
                             "--model-control-mode explicit)")
        try:
            repository.check_name(name)
        except RepositoryError as exc:
            raise BadRequest(str(exc)) from None

    async def stop(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
            await asyncio.gather(self._loading, return_exceptions=True)
        for model in self.all_models():
            await model.stop()


async def _unloaded(versions: dict[str, ServedModel]) -> None:
    """Unload each of `versions`. Then the caller, holding none of them, runs a full
    collection: an unloaded model lies in reference cycles (its scheduler's bound methods,
    the compiler's graphs), which a busy server seldom collects; without one, a server that
    loads and unloads grew by ~300 MB per load of AlexNet or ResNet-50."""
    for model in versions.values():
        await model.unload()


def _config_override(folder: Path, parameters: dict):
    name = folder.name
    if not isinstance(parameters, dict):
        raise BadRequest(f"load request for {name!r}: parameters: expected an object, got "
                         f"{type(parameters).__name__}")
    files = sorted(key for key in parameters if key.startswith("file:"))
    if files:
        raise BadRequest(f"load request for {name!r}: parameter {files[0][:80]!r}: model file "
                         "overrides are not supported (the files are the repository's)")
    if "config" not in parameters:
        return None
    try:
        return model_config.from_json(parameters["config"], folder)
    except RepositoryError as exc:
        raise BadRequest(str(exc)) from None


def create_app(server: InferenceServer) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await server.start()
        try:
            yield
        finally:
            await server.stop()

    app = FastAPI(title=SERVER_NAME, version=server_version(), lifespan=lifespan,
                  default_response_class=JSONResponse)
    app.state.server = server
    _add_error_handlers(app)
    _add_health_routes(app, server)
    _add_model_routes(app, server)
    _add_repository_routes(app, server)
    app.add_middleware(HeadAsGet)
    return app


class HeadAsGet:
    """HEAD answered as GET without the body (RFC 9110: a server supports HEAD wherever it
    supports GET); FastAPI's routes answered it 405. A route without GET still answers 405."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def without_body(message):
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServingError)
    async def serving_error(request: Request, exc: ServingError):
        return JSONResponse({"error": one_line(str(exc))}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # The exception's headers too: a 405 names the methods allowed (Allow, RFC 9110)
        return JSONResponse({"error": one_line(f"{request.url.path}: {exc.detail}")},
                            exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        return JSONResponse({"error": one_line(f"{request.url.path}: {problems}")}, 400)


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

    @app.get("/v2/models/stats")
    async def all_stats():
        return {"model_stats": [m.stats.to_dict() for m in server.all_models()
                                if m.state == READY]}


def _add_model_routes(app: FastAPI, server: InferenceServer) -> None:
    async def model_metadata(name: str, version: str | None = None):
        return server.model(name, version).metadata()

    async def model_ready(name: str, version: str | None = None):
        model = server.model(name, version)
        model.require_ready()
        return {"name": model.name, "ready": True}

    async def model_config(name: str, version: str | None = None):
        return server.model(name, version).triton_config()

    async def model_stats(name: str, version: str | None = None):
        if version in (None, ""):
            server.model(name)
            return {"model_stats": [m.stats.to_dict() for m in server.versions[name].values()]}
        return {"model_stats": [server.model(name, version).stats.to_dict()]}

    async def infer(request: Request, name: str, version: str | None = None):
        return await _infer(server, request, server.model(name, version))

    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.add_api_route(prefix, model_metadata, methods=["GET"])
        app.add_api_route(prefix + "/ready", model_ready, methods=["GET"])
        app.add_api_route(prefix + "/config", model_config, methods=["GET"])
        app.add_api_route(prefix + "/stats", model_stats, methods=["GET"])
        app.add_api_route(prefix + "/infer", infer, methods=["POST"],
                          openapi_extra=protocol.INFER_REQUEST_OPENAPI)


# The load request body, for the OpenAPI description (what a fuzzer reads): Triton's.
LOAD_REQUEST_OPENAPI = {"requestBody": {"required": False, "content": {"application/json": {
    "schema": {"type": "object", "properties": {"parameters": {
        "type": "object", "properties": {"config": {"type": "string"}}}}},
}}}}


def _add_repository_routes(app: FastAPI, server: InferenceServer) -> None:
    @app.post("/v2/repository/index")
    async def repository_index(request: Request):
        document = await _small_json(request, server)
        ready = document.get("ready", False) if isinstance(document, dict) else False
        if not isinstance(ready, bool):
            raise BadRequest(f"ready: expected true or false, got {ready!r}")
        return server.index(ready_only=ready)

    @app.post("/v2/repository/models/{name}/load", openapi_extra=LOAD_REQUEST_OPENAPI)
    async def repository_load(request: Request, name: str):
        document = await _small_json(request, server)
        await server.load_model(name, document.get("parameters", {}))
        return JSONResponse({})

    @app.post("/v2/repository/models/{name}/unload")
    async def repository_unload(request: Request, name: str):
        parameters = (await _small_json(request, server)).get("parameters", {})
        dependents = parameters.get("unload_dependents", False) \
            if isinstance(parameters, dict) else None
        if not isinstance(dependents, bool):  # Triton's one unload parameter (no ensembles here)
            raise BadRequest(f"unload request for {name!r}: parameters: expected an object with "
                             f"unload_dependents true or false, got {parameters!r:.100}")
        await server.unload_model(name)
        return JSONResponse({})


async def _small_json(request: Request, server: InferenceServer):
    with server.bodies.holding(request, server.limits):
        body = await protocol.read_body(request, server.limits)
        if not body.strip():
            return {}
        return protocol.json_object(body, "request body")


async def _infer(server: InferenceServer, request: Request, model: ServedModel) -> Response:
    started = time.perf_counter()
    outcome, reason = "server_error", "OTHER"
    try:
        model.require_ready()
        with server.bodies.holding(request, server.limits):
            content, headers = await _answer(server, request, model)
        outcome = "success"
        return Response(content, headers=headers)
    except ServingError as exc:
        outcome = "client_error" if exc.status < 500 else "server_error"
        reason = "REJECTED" if isinstance(exc, Unavailable) else \
            "CANCELED" if isinstance(exc, ClientGone) else "OTHER"
        raise
    except Exception as exc:  # a backend crash answers 500 with its message, not a traceback
        reason = "BACKEND"
        log.exception("inference on model %s failed", model.name)
        raise ServingError(f"inference on model {model.name!r} failed: {type(exc).__name__}: {exc}")
    finally:
        metrics = server.metrics
        metrics.requests.labels(**model.labels, outcome=outcome).inc()
        elapsed = time.perf_counter() - started
        metrics.request_duration.labels(**model.labels).observe(elapsed)
        if outcome == "success":
            metrics.nv_success.labels(**model.labels).inc()
            metrics.observe_us("request", model.labels, elapsed)
            model.stats.request("success", elapsed)
        else:
            metrics.nv_failure.labels(**model.labels, reason=reason).inc()
            model.stats.request("fail", elapsed)


async def _answer(server: InferenceServer, request: Request, model: ServedModel):
    body = await protocol.read_body(request, server.limits)
    parsed = await _parsed(body, request.headers.get(protocol.HEADER_LENGTH), model,
                           server.limits)
    outputs, info = await _unless_disconnected(request, model.infer(
        parsed.inputs, parsed.priority, parsed.timeout_us))
    return protocol.encode_infer_response(model, parsed, outputs, info)


async def _unless_disconnected(request: Request, inference):
    """The result of `inference`, which is cancelled if the client disconnects first: a
    request still queued leaves the queue and never executes (before, every abandoned request
    ran: ten clients that gave up after 50 ms on a 0.1 s model cost a second of executions).
    Once the body is read, the ASGI receive only answers the disconnect (or the response's
    end, after this)."""
    task = asyncio.ensure_future(inference)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this handler cancelled (the server stopping): so is the inference
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise ClientGone("the client disconnected before its answer")
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


# Bodies larger than this are parsed on a worker thread: a 64 MB JSON body took 7 s to parse
# on the event loop, where liveness and every other request waited it out (json.loads itself
# still holds the GIL, about 3 s of it; the rest now interleaves).
PARSE_OFF_LOOP_BYTES = 1 << 20


async def _parsed(body: bytes, header_length, model: ServedModel, limits):
    if len(body) <= PARSE_OFF_LOOP_BYTES:  # small ones: a thread hop costs more than parsing
        return protocol.parse_infer_request(body, header_length, model, limits)
    return await asyncio.to_thread(protocol.parse_infer_request, body, header_length, model,
                                   limits)
