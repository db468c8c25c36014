"""The `openhuman` command line: thin wrappers over library calls.

Exit codes: 0 success, 2 bad input (one-line message saying what to fix), 1 internal error.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from openhuman.errors import InputError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

app = typer.Typer(
    name="openhuman",
    help="Video/4D open-vocabulary human parsing: ask for a body part in words, get masks, tracks "
    "and labelled 3D point clouds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
        force=True,
    )
    for noisy in ("matplotlib", "PIL", "urllib3", "httpx", "sentence_transformers", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def command(func: F) -> F:
    """Register a CLI command with the project's error handling (InputError -> exit 2)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            console.print("[yellow]interrupted; finished outputs are kept, re-run to resume[/]")
            raise typer.Exit(130) from None

    return app.command()(wrapper)  # type: ignore[return-value]


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    _setup_logging(verbose)


# --- commands -------------------------------------------------------------------------------
# Each command is a thin wrapper over a library call; keep argument parsing here and work there.


@command
def check_capture(path: str = typer.Argument(..., help="Capture directory or video file.")) -> None:
    """Validate a capture directory (or probe a video) and list every problem found."""
    from pathlib import Path

    from openhuman.capture import Capture
    from openhuman.capture import check_capture as _check

    problems = _check(path) if Path(path).is_dir() else []
    for problem in problems[1:]:
        console.print(f"[red]problem:[/] {problem}")
    if problems:
        raise InputError(f"{problems[0]} ({len(problems)} problem(s) in total)")
    cap = Capture.open(path)
    console.print(
        f"ok: {len(cap.view_ids)} view(s) {list(cap.view_ids)}, {cap.frame_count} frames at {cap.fps:g} fps, "
        f"cameras={'yes' if cap.cameras else 'no'} depth={cap.has_depth} gt_2d={cap.has_gt_2d} gt_3d={cap.has_gt_3d}"
    )


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # internal error: exit 1 with the reason
        console.print_exception(show_locals=False)
        console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
