"""A model's configuration, the way Triton reads it: `config.pbtxt` in protobuf text format
against Triton's published model_config schema (`inference.ModelConfig`), or today's
`config.yaml`, whose keys are the same fields (plus `precision`) and go through the same schema.

The schema is the generated module tritonclient ships (`tritonclient/grpc/model_config_pb2.py`).
It is loaded from its file rather than imported as `tritonclient.grpc.model_config_pb2`:
that package's `__init__` insists on grpcio, which the server does not use, and whose
tritonclient extra pins protobuf below the 7.x the stack runs (the generated code itself
validates against protobuf 7, checked at import).

`ModelConfig` is what the server acts on; `ModelConfig.proto` keeps the parsed message for
`GET /v2/models/<m>/config`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import descriptor, json_format, text_format

from .classification import read_labels
from .errors import RepositoryError
from .tensors import check_reshape

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
# Bounds of what a configuration may ask for (Triton's schema takes up to 2**64): each priority
# level is a queue and each instance a thread, a simulated device and its warmed-up plans;
# priority_levels 10**12 failed the load with MemoryError (500, the model stuck loading) and
# an instance count of 10**6 exhausted the server's memory.
MAX_PRIORITY_LEVELS = 1024
MAX_INSTANCES = 64
PBTXT_FILE = "config.pbtxt"
YAML_FILE = "config.yaml"
MODEL_FILE = "model.onnx"  # in each version folder, unless default_model_filename says
# The config.yaml keys: today's three, and the Triton fields the server acts on.
YAML_KEYS = ("precision", "max_batch_size", "dynamic_batching", "instance_group",
             "version_policy", "model_warmup", "input", "output")


@functools.cache
def schema():
    """Triton's model_config_pb2, from the file tritonclient ships."""
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        raise RepositoryError("tritonclient is not installed: it carries Triton's model_config "
                              "schema (pip install tritonclient)")
    path = Path(next(iter(spec.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    module_spec = importlib.util.spec_from_file_location("npu_serving._model_config_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class ModelConfig:
    """What the server does with a model; every field has Triton's meaning and default."""

    precision: str = "fp32"
    max_batch_size: int = 0
    dynamic_batching: bool = True
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = 0  # 0: unbounded
    timeout_action: str = "REJECT"  # REJECT | DELAY
    default_timeout_us: int = 0  # 0: no timeout
    allow_timeout_override: bool = False
    priority_levels: int = 0  # 0: one level
    default_priority_level: int = 0
    instance_count: int = 0  # 0: one per core
    warmup_batch_sizes: tuple[int, ...] = ()
    version_policy: str = "latest"  # latest | all | specific
    version_policy_values: tuple[int, ...] = (1,)  # latest: (num_versions,); specific: versions
    # output name -> its labels (label_filename), for the classification extension
    labels: dict = field(default_factory=dict, compare=False, repr=False)
    # tensor name -> (dims clients use, reshape.shape the model uses): see tensors.py
    input_reshapes: dict = field(default_factory=dict, compare=False, repr=False)
    output_reshapes: dict = field(default_factory=dict, compare=False, repr=False)
    # Triton's default_model_filename: the model file in each version folder
    model_filename: str = MODEL_FILE
    # the configuration file, as errors name it ("" for the defaults)
    source: str = field(default="", compare=False)
    proto: object = field(default=None, compare=False, repr=False)

    @property
    def batches_dynamically(self) -> bool:
        return self.max_batch_size > 0 and self.dynamic_batching

    def instances(self) -> int:
        return self.instance_count or max(1, os.cpu_count() or 1)

    def batch_sizes_to_prepare(self) -> list[int]:
        """Plans compiled at load: the powers of two up to the largest batch, the largest, the
        preferred and the warmup sizes. A batch of another size runs padded to the next of
        these (at most twice its size), so nothing compiles on a request's path."""
        if self.max_batch_size <= 0:
            return []
        ladder = {1 << k for k in range(self.max_batch_size.bit_length())}
        sizes = {*ladder, self.max_batch_size, *self.preferred_batch_sizes,
                 *self.warmup_batch_sizes}
        return sorted(s for s in sizes if 1 <= s <= self.max_batch_size)

    def select_versions(self, available: list[int]) -> list[int]:
        available = sorted(available)
        if self.version_policy == "all":
            return available
        if self.version_policy == "specific":
            return [v for v in available if v in self.version_policy_values]
        return available[-self.version_policy_values[0]:] if available else []


def load(folder: Path) -> ModelConfig:
    """The configuration in `folder` (config.pbtxt, else config.yaml, else the defaults)."""
    pbtxt, yaml_path = folder / PBTXT_FILE, folder / YAML_FILE
    if pbtxt.exists():
        proto = _parse_pbtxt(pbtxt)
        precision = proto.parameters["precision"].string_value \
            if "precision" in proto.parameters else None
        return _from_proto(pbtxt, proto, precision, True)
    if yaml_path.exists():
        return _load_yaml(yaml_path)
    return ModelConfig(proto=schema().ModelConfig())


OVERRIDE = "<load request parameters.config>"


def from_json(text, folder: Path) -> ModelConfig:
    """A configuration given as Triton's JSON: the repository load request's
    `parameters.config`, which replaces the config file of the model in `folder` for that
    load. Errors name it as `folder/<load request parameters.config>` (files it names, such
    as labels, are the folder's)."""
    source, name = folder / OVERRIDE, folder.name
    if not isinstance(text, str):
        raise RepositoryError(f"{source}: expected a string of Triton's model configuration "
                              f"JSON, got {type(text).__name__}")
    try:
        document = json.loads(text)
    except ValueError as exc:  # not JSON, or an integer past Python's 4300 digits
        raise RepositoryError(f"{source}: not valid JSON ({str(exc)[:200]})") from None
    except RecursionError:
        raise RepositoryError(f"{source}: JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise RepositoryError(f"{source}: expected a JSON object of Triton's ModelConfig "
                              f"fields, got {type(document).__name__}")
    _check_unicode(source, document)
    try:
        proto = json_format.ParseDict(document, schema().ModelConfig())
    except (json_format.ParseError, RecursionError) as exc:  # an unknown field, a bad value
        reason = str(exc).splitlines()[0] if str(exc) else "nested too deeply"
        raise RepositoryError(f"{source}: {reason[:300]}") from None
    if proto.name and proto.name != name:
        raise RepositoryError(f"{source}: name {proto.name!r} is not the model loaded ({name!r})")
    precision = proto.parameters["precision"].string_value \
        if "precision" in proto.parameters else None
    return _from_proto(source, proto, precision, True)


def _check_unicode(source, document) -> None:
    """A string with a lone surrogate (JSON's or YAML's "\\ud800") made protobuf's ParseDict
    raise SystemError: a 500 on the load request, and a server exiting at start."""
    try:
        json.dumps(document, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RepositoryError(f"{source}: a name or string is not valid Unicode text "
                              f"({exc.reason})") from None


def _parse_pbtxt(path: Path):
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RepositoryError(f"{path}: not readable ({exc})") from None
    try:
        return text_format.Parse(text, schema().ModelConfig())
    except text_format.ParseError as exc:
        raise RepositoryError(f"{path}: {exc}") from None


def _load_yaml(path: Path) -> ModelConfig:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0]
        raise RepositoryError(f"{path}: not readable YAML ({reason})") from None
    if not isinstance(raw, dict):
        raise RepositoryError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(YAML_KEYS))
    if unknown:
        raise RepositoryError(
            f"{path}: unknown setting {unknown[0]!r}: expected {', '.join(YAML_KEYS)}"
        )
    raw = dict(raw)
    precision = raw.pop("precision", None)
    max_batch_size = raw.get("max_batch_size", 0)
    if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or \
            max_batch_size < 0:
        raise RepositoryError(
            f"{path}: max_batch_size: expected a non-negative integer, got {max_batch_size!r}")
    batching = raw.pop("dynamic_batching", {})
    enabled = batching is not False
    if batching in (None, True, False):
        batching = {}
    if not isinstance(batching, dict):
        raise RepositoryError(f"{path}: dynamic_batching: expected false or a mapping of "
                              f"Triton's dynamic_batching fields, got {batching!r}")
    _check_unicode(path, raw)
    _check_unicode(path, batching)
    try:
        proto = json_format.ParseDict(raw, schema().ModelConfig())
        json_format.ParseDict(batching, proto.dynamic_batching)
    except json_format.ParseError as exc:
        raise RepositoryError(f"{path}: dynamic_batching: expected false or a mapping of "
                              f"Triton's fields: {exc}" if "ModelDynamicBatching" in str(exc)
                              else f"{path}: {exc}") from None
    if not enabled:
        proto.ClearField("dynamic_batching")
    return _from_proto(path, proto, precision, enabled)


def _from_proto(path: Path, proto, precision: str | None, batching: bool) -> ModelConfig:
    pb = schema()
    precision = precision or "fp32"
    if precision not in PRECISIONS:
        raise RepositoryError(
            f"{path}: precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if proto.max_batch_size < 0:
        raise RepositoryError(f"{path}: max_batch_size: expected a non-negative integer, got "
                              f"{proto.max_batch_size}")
    if proto.HasField("sequence_batching") or proto.HasField("ensemble_scheduling"):
        raise RepositoryError(f"{path}: {proto.WhichOneof('scheduling_choice')}: not supported "
                              "by this server (dynamic_batching or none)")
    dynamic = proto.dynamic_batching
    has_batching = proto.HasField("dynamic_batching") and batching
    preferred = tuple(dynamic.preferred_batch_size)
    for size in preferred:
        if not 1 <= size <= max(proto.max_batch_size, 0):
            raise RepositoryError(f"{path}: dynamic_batching.preferred_batch_size: {size} is "
                                  f"not from 1 to max_batch_size {proto.max_batch_size}")
    if dynamic.default_priority_level > dynamic.priority_levels:
        raise RepositoryError(f"{path}: dynamic_batching.default_priority_level: "
                              f"{dynamic.default_priority_level} exceeds priority_levels "
                              f"{dynamic.priority_levels}")
    if dynamic.priority_levels > MAX_PRIORITY_LEVELS:
        raise RepositoryError(f"{path}: dynamic_batching.priority_levels: "
                              f"{dynamic.priority_levels} exceeds the {MAX_PRIORITY_LEVELS} "
                              "levels this server takes")
    if dynamic.priority_queue_policy:
        raise RepositoryError(f"{path}: dynamic_batching.priority_queue_policy: not supported "
                              "(default_queue_policy applies to every level)")
    policy = dynamic.default_queue_policy
    instances = 0
    for group in proto.instance_group:
        if group.count < 0:
            raise RepositoryError(f"{path}: instance_group.count: expected a non-negative "
                                  f"integer, got {group.count}")
        if group.kind not in (pb.ModelInstanceGroup.KIND_AUTO, pb.ModelInstanceGroup.KIND_CPU):
            kind = pb.ModelInstanceGroup.Kind.Name(group.kind)
            raise RepositoryError(f"{path}: instance_group.kind: {kind} is not available "
                                  "(the simulated NPU runs on the host: KIND_CPU or KIND_AUTO)")
        instances += group.count or 1
    if instances > MAX_INSTANCES:
        raise RepositoryError(f"{path}: instance_group.count: {instances} instances exceed the "
                              f"{MAX_INSTANCES} this server runs per model")
    warmup = []
    for entry in proto.model_warmup:
        if proto.max_batch_size > 0 and not 1 <= entry.batch_size <= proto.max_batch_size:
            raise RepositoryError(f"{path}: model_warmup.batch_size: {entry.batch_size} is not "
                                  f"from 1 to max_batch_size {proto.max_batch_size}")
        warmup.append(entry.batch_size)
    choice = proto.version_policy.WhichOneof("policy_choice") or "latest"
    values: tuple[int, ...] = (1,)
    if choice == "latest":
        values = (proto.version_policy.latest.num_versions or 1,)
    elif choice == "specific":
        values = tuple(proto.version_policy.specific.versions)
    delay = dynamic.max_queue_delay_microseconds
    labels = {output.name: read_labels(path, output.name, output.label_filename)
              for output in proto.output if output.label_filename}
    return ModelConfig(
        precision=precision,
        max_batch_size=proto.max_batch_size,
        dynamic_batching=has_batching,
        max_queue_delay_us=delay if has_batching else 0,
        preferred_batch_sizes=preferred,
        max_queue_size=policy.max_queue_size,
        timeout_action=pb.ModelQueuePolicy.TimeoutAction.Name(policy.timeout_action),
        default_timeout_us=policy.default_timeout_microseconds,
        allow_timeout_override=policy.allow_timeout_override,
        priority_levels=dynamic.priority_levels,
        default_priority_level=dynamic.default_priority_level,
        instance_count=instances,
        warmup_batch_sizes=tuple(warmup),
        version_policy=choice,
        version_policy_values=values,
        labels=labels,
        input_reshapes=_reshapes(path, "input", proto.input),
        output_reshapes=_reshapes(path, "output", proto.output),
        model_filename=_model_filename(path, proto.default_model_filename),
        source=str(path),
        proto=proto,
    )


def _model_filename(path: Path, name: str) -> str:
    if not name:
        return MODEL_FILE
    if Path(name).name != name or name in (".", ".."):
        raise RepositoryError(f"{path}: default_model_filename {name!r}: expected a file name "
                              "in the version folder")
    return name


def _reshapes(path: Path, what: str, entries) -> dict:
    """The `reshape` of each input (or output) that has one, checked against its dims."""
    found = {}
    for entry in entries:
        if entry.HasField("reshape"):
            dims, shape = tuple(entry.dims), tuple(entry.reshape.shape)
            problem = check_reshape(f"{path}: {what} {entry.name!r}", dims, shape)
            if problem:
                raise RepositoryError(problem)
            found[entry.name] = (dims, shape)
    return found


def to_json_dict(message) -> dict:
    """`message` as Triton's JSON: proto field names, every field (defaults too) and 64-bit
    integers as JSON numbers (Triton's `ModelConfigToJson` fixes them the same way)."""
    document = json_format.MessageToDict(message, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
    return _numbers(message.DESCRIPTOR, document)


_INT64 = {descriptor.FieldDescriptor.TYPE_INT64, descriptor.FieldDescriptor.TYPE_UINT64,
          descriptor.FieldDescriptor.TYPE_SINT64, descriptor.FieldDescriptor.TYPE_FIXED64,
          descriptor.FieldDescriptor.TYPE_SFIXED64}


def _numbers(message_descriptor, document: dict) -> dict:
    for name, value in document.items():
        fd = message_descriptor.fields_by_name.get(name)
        if fd is None:
            continue
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value_fd = fd.message_type.fields_by_name["value"]
            if value_fd.message_type is not None:
                for item in value.values():
                    _numbers(value_fd.message_type, item)
            elif value_fd.type in _INT64:
                document[name] = {k: int(v) for k, v in value.items()}
        elif fd.message_type is not None:
            for item in value if isinstance(value, list) else [value]:
                _numbers(fd.message_type, item)
        elif fd.type in _INT64:
            document[name] = [int(v) for v in value] if isinstance(value, list) else int(value)
    return document
