"""npu_opslib."""
