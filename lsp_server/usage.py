"""What the `sparkedit` command and its subcommands share: the usage error and the choices
of the engine options.

It imports nothing of sparkedit, so the subcommand modules (and the server's settings) can
use it without importing `lsp_server/cli.py`, which imports them: the dependency runs one
way, from the entry point to the commands.
"""

from __future__ import annotations

# Kept in step with engine/backend_choice.py (not imported: the parser must stay light).
BACKEND_CHOICES = ("auto", "numpy", "ggml")
QUANTS = ("f32", "bf16", "q8_0", "q4_k_m")


class UsageError(Exception):
    """Bad arguments: reported in one line, exit code 2."""
