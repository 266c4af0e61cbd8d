"""Exit statuses, as documented in the README."""

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0  # no errors (warnings allowed); probe: Synapse would send successfully
    PROBLEMS = 1  # errors found (or warnings with --strict); probe: Synapse would fail or hang
    UNUSABLE = 2  # unusable input (unreadable or broken config) or bad usage
