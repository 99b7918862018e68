# Copyright (c) teamllm.stack developers
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""numpy, which the placement needs on the controller, imported once and guarded.

Ansible loads the collection's plugins (and ``ansible-test sanity`` imports every file) on
controllers and targets that may lack numpy; only running a placement needs it. Without it
``np`` is None and :func:`_placement.plan` refuses, naming the package."""

from __future__ import annotations

try:
    import numpy as np
except ImportError:
    np = None

MISSING = "" if np is not None else (
    "the placement needs the Python package numpy on the controller (pip install numpy; the "
    "collection's meta/execution-environment.yml lists what its plugins need)")
