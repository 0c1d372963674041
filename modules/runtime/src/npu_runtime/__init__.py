"""npu_runtime: contexts, device memory, copies, streams, events, launches and the timeline
(runtime-api 1.1)."""

from .context import Context, DeviceArray, Event, RuntimeAPIError, Stream
from .timeline import LaunchRecord, Timeline

RUNTIME_API_VERSION = "1.1"

__all__ = ["RUNTIME_API_VERSION", "Context", "DeviceArray", "Event", "LaunchRecord",
           "RuntimeAPIError", "Stream", "Timeline"]
