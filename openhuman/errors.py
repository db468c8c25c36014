"""Exceptions with one-line, actionable messages.

`InputError` is bad user input (a corrupt video, mismatched cameras, an unknown query, a missing
checkpoint); the CLI turns it into exit code 2 and prints only its message. Anything else is an
internal error (exit code 1).
"""

from __future__ import annotations


class OpenHumanError(Exception):
    """Base class of the project's own errors."""


class InputError(OpenHumanError, ValueError):
    """The user's input cannot be used as given; the message says what to fix."""


class CheckpointError(InputError):
    """A configured checkpoint is missing or does not match the model; names the config key."""


def check_settings(section: str, settings: object, rules: list[tuple[str, bool, str]]) -> None:
    """Raise InputError for the first rule (key, ok, what it must be) that fails, naming the
    config key (`section.key`) and its value: "tracking.ema_alpha is 2.0; it must be in (0, 1]"."""
    for key, ok, need in rules:
        if not ok:
            raise InputError(f"{section}.{key} is {getattr(settings, key)!r}; it must be {need}")
