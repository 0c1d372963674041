"""npu_serving."""
