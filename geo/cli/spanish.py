"""Typer's own words in Spanish: usage errors, help panels, the usage line and value types.

Typer 0.2x vendors its own copy of Click (``typer._click``) whose messages are plain English
f-strings, not gettext calls, so no translation catalogue can reach them. They are reached where
Typer lets a program plug in: the class of the top command group (``typer.Typer(cls=...)``).

:class:`SpanishGroup`, built with every command of the tree, gives each command a
:class:`SpanishContext` (its formatter writes ``Uso:``; it labels the help option in Spanish),
Spanish usage metavars and Spanish value types in the help; and it turns every usage error
raised while parsing or dispatching into a :class:`SpanishUsageError` whose text is built from
the error's own fields (the option, the parameter, the offending value), not from its English.
The help panels' titles are the module settings Typer reads when it prints (``typer.rich_utils``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer.rich_utils
from pydantic import ValidationError
from typer._click import Command, Context, HelpFormatter
from typer._click.exceptions import (
    BadOptionUsage,
    BadParameter,
    MissingParameter,
    NoArgsIsHelpError,
    NoSuchOption,
    UsageError,
)
from typer.core import TyperGroup

HELP_OPTION_TEXT = "Muestra esta ayuda y termina."
OPTIONS_METAVAR = "[OPCIONES]"
SUBCOMMAND_METAVAR = "ORDEN [ARGUMENTOS]..."

#: The help's words Typer keeps as module settings (``typer.rich_utils``).
RICH_TEXT = {
    "DEPRECATED_STRING": "(obsoleta) ",
    "DEFAULT_STRING": "[por defecto: {}]",
    "ENVVAR_STRING": "[variable de entorno: {}]",
    "REQUIRED_LONG_STRING": "[obligatorio]",
    "ARGUMENTS_PANEL_TITLE": "Argumentos",
    "OPTIONS_PANEL_TITLE": "Opciones",
    "COMMANDS_PANEL_TITLE": "Órdenes",
    "ERRORS_PANEL_TITLE": "Error",
    "ABORTED_TEXT": "Cancelado.",
    "RICH_HELP": "Para ver la ayuda: [blue]'{command_path} {help_option}'[/]",
}

#: Value types as the help shows them (``<float>``) → words; ``None`` hides it (a flag).
TYPE_TEXT: dict[str, str | None] = {
    "<float>": "<número>",
    "<int>": "<entero>",
    "<str>": "<texto>",
    "<bool>": None,
    "<path>": "<ruta>",
    "<file>": "<archivo>",
    "<dir>": "<carpeta>",
    "<directory>": "<carpeta>",
    "<datetime>": "<fecha y hora>",
    "<int range>": "<entero>",
    "<float range>": "<número>",
}

#: Pydantic's reasons a typed value was refused (by error type) → Spanish.
_VALUE_REASONS = {
    "float_parsing": "no es un número (use punto decimal: 2.5)",
    "float_type": "no es un número",
    "int_parsing": "no es un número entero",
    "int_type": "no es un número entero",
    "int_from_float": "no es un número entero",
    "bool_parsing": "no es sí o no (true/false)",
    "date_from_datetime_parsing": "no es una fecha AAAA-MM-DD",
    "date_parsing": "no es una fecha AAAA-MM-DD",
    "datetime_from_date_parsing": "no es una fecha y hora ISO 8601",
    "datetime_parsing": "no es una fecha y hora ISO 8601",
    "path_type": "no es una ruta",
}
#: Pydantic's range errors (their ``ctx`` key is the error type) → Spanish.
_BOUNDS = {
    "ge": "mayor o igual que",
    "gt": "mayor que",
    "le": "menor o igual que",
    "lt": "menor que",
}
_NOT_ONE_OF = re.compile(r"(?:Value error, )?(?P<value>.+) is not one of (?P<choices>.+?)\.?$")
_NOT_VALID = re.compile(r"Value (?P<value>.+) is not a valid (?P<type>\w+)\.?$")
_NO_COMMAND = re.compile(r"No such command (?P<name>.+?)\.(?: Did you mean (?P<close>.+)\?)?$")
_EXTRA = re.compile(r"Got unexpected extra argument\(s\) \((?P<args>.*)\)$")
_NEEDS_VALUE = re.compile(r"Option (?P<name>.+) requires (?:an argument|(?P<n>\d+) arguments)\.$")
_TAKES_NO_VALUE = re.compile(r"Option (?P<name>.+) does not take a value\.$")
_ARG_VALUES = re.compile(r"Argument (?P<name>.+) takes (?P<n>\d+) values\.$")


class SpanishUsageError(UsageError):
    """A usage error whose message is already the Spanish one (exit code 2, as Click's)."""

    def format_message(self) -> str:
        return self.message


class SpanishFormatter(HelpFormatter):
    """Writes ``Uso:`` where Click writes ``Usage:``."""

    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(prog, args, "Uso: " if prefix is None else prefix)


class SpanishContext(Context):
    """A command's context: Spanish usage line and help option."""

    formatter_class = SpanishFormatter

    def __init__(self, command: Command, *args: Any, **kwargs: Any) -> None:
        super().__init__(command, *args, **kwargs)
        option = command.get_help_option(self)
        if option is not None:
            option.help = HELP_OPTION_TEXT
            _spanish_param(option)


def _hint(exc: BadParameter) -> str:
    if exc.param_hint is not None:
        hints = [exc.param_hint] if isinstance(exc.param_hint, str) else list(exc.param_hint)
        return " / ".join(f"'{hint}'" for hint in hints)
    if exc.param is not None:
        return exc.param.get_error_hint()
    return ""


def _value_reason(exc: BadParameter) -> str:
    """Why the value was refused, in Spanish (from Pydantic's error type where there is one)."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        first = cause.errors()[0]
        shown = f"{first.get('input')!r}"
        if first["type"] in _VALUE_REASONS:
            return f"{shown} {_VALUE_REASONS[first['type']]}."
        bound = first.get("ctx") or {}
        for key, words in _BOUNDS.items():
            if key in bound:
                return f"{shown} no vale: debe ser {words} {bound[key]}."
        if not _NOT_ONE_OF.match(exc.message):  # Pydantic's English for a rarer case
            return f"{shown} no es un valor válido aquí."
    match = _NOT_ONE_OF.match(exc.message)
    if match:
        return f"{match['value']} no es ninguno de los valores admitidos: {match['choices']}."
    match = _NOT_VALID.match(exc.message)
    if match:
        return f"{match['value']} no es un valor válido ({match['type']})."
    return exc.message


def spanish_message(exc: UsageError) -> str:
    """The Spanish text of a Click/Typer usage error, from the error's own fields."""
    if isinstance(exc, NoSuchOption):
        text = f"No existe la opción {exc.option_name}."
        if exc.possibilities:
            text += f" ¿Quería decir {', '.join(sorted(exc.possibilities))}?"
        return text
    if isinstance(exc, MissingParameter):
        kind = "el argumento" if (exc.param_type or getattr(exc.param, "param_type_name", "")) \
            == "argument" else "la opción"  # fmt: skip
        text = f"Falta {kind} {_hint(exc)}.".replace("  ", " ")
        choices = getattr(getattr(exc.param, "type_descriptor", None), "choices", None)
        if choices:
            text += " Elija entre: " + ", ".join(str(getattr(c, "value", c)) for c in choices) + "."
        return text
    if isinstance(exc, BadParameter):
        hint = _hint(exc)
        where = f" para {hint}" if hint else ""
        return f"Valor no válido{where}: {_value_reason(exc)}"
    message = exc.message
    if isinstance(exc, BadOptionUsage) or message.startswith(("Option ", "Argument ")):
        if match := _NEEDS_VALUE.match(message):
            count = "un valor" if match["n"] is None else f"{match['n']} valores"
            return f"La opción {match['name']} necesita {count}."
        if match := _TAKES_NO_VALUE.match(message):
            return f"La opción {match['name']} no admite ningún valor."
        if match := _ARG_VALUES.match(message):
            return f"El argumento {match['name']} necesita {match['n']} valores."
    if match := _NO_COMMAND.match(message):
        text = f"No existe la orden {match['name']}."
        return text + (f" ¿Quería decir {match['close']}?" if match["close"] else "")
    if match := _EXTRA.match(message):
        return f"Sobran argumentos: {match['args']}."
    if message == "Missing command.":
        return "Falta la orden: indique cuál (la ayuda, con --help, las lista)."
    return message


def _spanish_type(original: Any, param: Any, ctx: Context) -> str | None:
    shown = original(ctx=ctx)
    if shown is None:
        return None
    if shown in TYPE_TEXT:
        return None if TYPE_TEXT[shown] is None and getattr(param, "is_flag", True) else \
            TYPE_TEXT[shown] or shown  # fmt: skip
    return str(shown)


def _tree(command: Command) -> Iterator[Command]:
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _tree(sub)


def _spanish_command(command: Command) -> None:
    command.context_class = SpanishContext
    if command.options_metavar == "[OPTIONS]":
        command.options_metavar = OPTIONS_METAVAR
    if isinstance(command, TyperGroup) and command.subcommand_metavar == "COMMAND [ARGS]...":
        command.subcommand_metavar = SUBCOMMAND_METAVAR
    for param in command.params:
        _spanish_param(param)


def _spanish_param(param: Any) -> None:
    """Show ``param``'s value type in Spanish words in the help (once)."""
    original = param.display_type_rich
    if getattr(original, "__name__", "") == "_spanish":
        return

    def _spanish(*, ctx: Context) -> str | None:
        return _spanish_type(original, param, ctx)

    param.display_type_rich = _spanish


class SpanishGroup(TyperGroup):
    """The top command group: every command of its tree speaks Spanish (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, text in RICH_TEXT.items():
            setattr(typer.rich_utils, name, text)
        for command in _tree(self):
            _spanish_command(command)

    def make_context(
        self, info_name: str | None, args: list[str], parent: Context | None = None,
        **extra: Any,
    ) -> Context:  # fmt: skip
        with _in_spanish():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        with _in_spanish():
            return super().invoke(ctx)


@contextmanager
def _in_spanish() -> Iterator[None]:
    """Re-raise a usage error (not the help shown for no arguments) in Spanish."""
    try:
        yield
    except (NoArgsIsHelpError, SpanishUsageError):
        raise
    except UsageError as exc:
        spanish = SpanishUsageError(spanish_message(exc), ctx=exc.ctx)
        spanish.exit_code = exc.exit_code
        raise spanish from None


def spanish_help_texts() -> Sequence[str]:
    """The Spanish words this module puts in the help (for tests)."""
    return [HELP_OPTION_TEXT, OPTIONS_METAVAR, *RICH_TEXT.values()]
