"""What the command modules share: user-error handling, optional flags, common options."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from ssmoe.presets import PRESETS
from ssmoe.vocabulary import TASKS

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn the library's errors about bad input (``ValueError``, ``KeyError`` naming a missing
    item, ``FileNotFoundError``) into a clean CLI error: message, exit status 1, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ValueError, KeyError, FileNotFoundError) as err:
            msg = err.args[0] if isinstance(err, KeyError) and err.args else err
            raise click.ClickException(str(msg)) from err

    return wrapper  # type: ignore[return-value]


class _Optional(click.ParamType):
    """An int/float/str/choice flag where an empty string means "not given" (MLproject
    defaults are empty strings)."""

    def __init__(self, base: click.ParamType) -> None:
        self.base = base
        self.name = f"{base.name}"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None or value == "":
            return None
        return self.base.convert(value, param, ctx)


OPT_INT = _Optional(click.INT)
OPT_FLOAT = _Optional(click.FLOAT)
OPT_STR = _Optional(click.STRING)


def optional_choice(choices: Sequence[str]) -> click.ParamType:
    return _Optional(click.Choice(choices))


def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several click options as one decorator (applied in the order listed)."""

    def apply(fn: F) -> F:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


preset_option = click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="quick",
    show_default=True,
    help="Hyper-parameter preset; explicit flags override it.",
)
experiment_option = click.option(
    "--experiment", default="ssmoe", show_default=True, help="MLflow experiment name."
)
seed_option = click.option("--seed", type=int, default=0, show_default=True)
device_option = click.option(
    "--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1 ..."
)
task_option = click.option("--task", type=click.Choice(TASKS), default="aniso", show_default=True)
max_volumes_option = click.option(
    "--max-volumes", type=OPT_INT, help="Evaluate only the first N volumes (smoke tests)."
)
set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="STEP.FIELD=VALUE",
    help="Override a field of a step's config, e.g. phase1.n_pairs=20000 (repeatable; the value "
    "is checked against the field's type).",
)
