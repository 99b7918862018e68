# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
"""The attributes every module of the collection documents, written once: each module gives
only its ``support`` (and ``details``) for them (the way community.general and
community.docker share theirs)."""

from __future__ import annotations


class ModuleDocFragment:
    # check_mode and diff_mode: the module says its own support
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without changing the target.
  diff_mode:
    description: Returns details of what changed (or would change in check mode) in diff mode.
"""

    # the collection's action group (meta/runtime.yml)
    ACTION_GROUP = r"""
options: {}
attributes:
  action_group:
    description: Part of the action group C(teamllm.stack.stack), so one C(module_defaults) entry sets its options.
    support: full
    membership: [teamllm.stack.stack]
"""
