"""The driver's exceptions: one base class so callers can catch everything the device raises."""


class DriverError(Exception):
    """Base of every error the driver raises on bad input or device misuse."""


class UnknownSKU(DriverError):
    """A SKU name that is neither a shipped SKU nor a readable YAML file."""


class InvalidSKU(DriverError):
    """A SKU file or override with a missing or ill-typed field."""


class OutOfDeviceMemory(DriverError):
    """An allocation larger than what is left of the device's finite memory."""
