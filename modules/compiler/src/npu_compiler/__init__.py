"""npu_compiler."""
