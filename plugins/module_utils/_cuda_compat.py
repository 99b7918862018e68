# Copyright: teamllm.stack contributors
# Apache License 2.0
"""Which NVIDIA driver a CUDA toolkit needs. Pure logic: no Ansible, no I/O. Private to the
collection.

The table itself is data (roles/cuda/vars/main.yml, `_cuda_min_driver`): CUDA "major.minor" ->
the lowest Linux driver version that runs that toolkit without the forward-compatibility
package. With minor-version compatibility (CUDA >= 11) a driver of the same major's first
release runs later minors too, for applications that avoid features newer than the driver
(a second table, keyed by major).
"""

from __future__ import annotations

import re

_VERSION = re.compile(r"^\s*(\d+(?:\.\d+)*)\s*$")


class CudaCompatError(ValueError):
    """A version or a table that cannot be used; the message says what to fix."""


def parse_version(text) -> tuple[int, ...]:
    """'535.261.03' -> (535, 261, 3); raises CudaCompatError when it is not dotted numbers."""
    match = _VERSION.match(str(text))
    if not match:
        raise CudaCompatError(f"{text!r} is not a version made of dotted numbers")
    return tuple(int(part) for part in match.group(1).split("."))


def cuda_key(cuda_version) -> str:
    """'12.8.1' or '12.8' -> '12.8' (the table's key); a bare major is refused."""
    parts = parse_version(cuda_version)
    if len(parts) < 2:
        raise CudaCompatError(f"CUDA version {cuda_version!r} needs at least major.minor, e.g. 12.8")
    return f"{parts[0]}.{parts[1]}"


def _table(table: dict) -> dict[tuple[int, ...], str]:
    if not isinstance(table, dict) or not table:
        raise CudaCompatError("the CUDA to minimum driver table is empty or not a dict")
    return {parse_version(key): str(value) for key, value in table.items()}


def min_driver(cuda_version, table: dict, minor_compat: dict | None = None) -> str:
    """The lowest driver version that runs CUDA `cuda_version`.

    With `minor_compat` (major -> driver), the major's minor-version-compatibility floor is
    returned instead when it is lower.
    """
    key = parse_version(cuda_key(cuda_version))
    parsed = _table(table)
    if key not in parsed:
        known = ", ".join(".".join(map(str, k)) for k in sorted(parsed))
        raise CudaCompatError(
            f"CUDA {cuda_key(cuda_version)} is not in the minimum driver table (known: {known})"
        )
    needed = parsed[key]
    if minor_compat:
        floor = {str(k): str(v) for k, v in minor_compat.items()}.get(str(key[0]))
        if floor is not None and parse_version(floor) < parse_version(needed):
            needed = floor
    return needed


def driver_supports(driver_version, cuda_version, table: dict, minor_compat: dict | None = None) -> bool:
    """True when driver `driver_version` runs CUDA `cuda_version`."""
    return parse_version(driver_version) >= parse_version(min_driver(cuda_version, table, minor_compat))


def max_cuda(driver_version, table: dict) -> str:
    """The newest CUDA major.minor of the table that driver `driver_version` runs ('' if none)."""
    driver = parse_version(driver_version)
    fitting = [key for key, needed in _table(table).items() if driver >= parse_version(needed)]
    return ".".join(map(str, max(fitting))) if fitting else ""


def package_suffix(cuda_version) -> str:
    """'12.8' -> '12-8', the suffix of NVIDIA's cuda-toolkit-X-Y packages."""
    return cuda_key(cuda_version).replace(".", "-")
