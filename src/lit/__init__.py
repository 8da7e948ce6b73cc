"""lit: record coding-agent sessions and weave them into git history."""

__version__ = "0.1.0"
