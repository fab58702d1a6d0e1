"""The command line (``python -m ppinfra ...``): the modules only the CLI uses.

- :mod:`.main`: the parser and the subcommands.
- :mod:`.requests_from_args`: options -> checked requests, bound once to the shared images.
- :mod:`.folder_run`: many inputs (or a count of txt2img tasks) under the budget, resumable.
- :mod:`.journal`: the folder run's record, so a rerun never pays twice.
- :mod:`.progress_bar`: the run's one status line.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
