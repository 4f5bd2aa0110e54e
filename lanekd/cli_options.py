"""Typer options generated from the fields of a config dataclass (CLI layer only).

A field ``sad_gamma: float = field(default=0.1, metadata={"help": ...})`` becomes the option
``--sad-gamma FLOAT`` with that help text and default, so adding a coefficient to a config is
one field and the flag follows. The metadata keys read here:

* ``help`` (required): the option's help text;
* ``panel``: the help panel (else the group's ``panel`` function decides);
* ``choices``: a tuple of allowed values (a bad value is a usage error, exit 2);
* ``metavar``: the value placeholder shown in the help (default from the type);
* ``min``: the smallest value an ``int``/``float`` option accepts.

Types: ``bool`` -> ``--x/--no-x``; ``int``/``float``/``str`` (``| None``: the default is "not
given"); ``tuple[str, ...]`` -> a comma list, passed on as text (the config parses it);
``tuple[int, int]`` -> ``HxW``; ``dict[str, Any]`` -> a repeatable ``KEY=VALUE`` (values read as
JSON where they parse, else as text). Other types must be excluded and given a hand-written flag.

The library never imports this module.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class FieldFlags:
    """Which fields of ``cls`` become options of a command, and where their values go.

    Attributes:
        cls: the config dataclass.
        into: name of the command function's parameter that receives ``{field: value}`` for every
            generated option (the parameter itself is not an option).
        exclude: fields without a generated option (hand-written flags, or not for this command).
        aliases: extra option names per field, e.g. ``{"intra_kd_alpha": ("--alpha",)}``.
        panel: the help panel of a field whose metadata names none.
    """

    cls: type
    into: str
    exclude: tuple[str, ...] = ()
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    panel: Callable[[str], str] | None = None


def flag_name(name: str) -> str:
    """``sad_gamma`` -> ``--sad-gamma``."""
    return "--" + name.replace("_", "-")


def parse_size(text: str) -> tuple[int, int]:
    """``"288x800"`` -> ``(288, 800)``; anything else is a usage error."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected HxW such as 288x800, got {text!r}") from None
    if h <= 0 or w <= 0:
        raise typer.BadParameter(f"sizes must be positive, got {text!r}")
    return h, w


def parse_key_values(items: list[str]) -> dict[str, Any]:
    """``["in_channels=5", "name=x"]`` -> ``{"in_channels": 5, "name": "x"}`` (values read as JSON
    where they parse, else kept as text)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _escape(text: str) -> str:
    """Help text shown literally by Rich (``lanekd[tensorboard]`` is not markup)."""
    return text.replace("[", "\\[")


def _at_least(lo: float) -> Callable[[Any], Any]:
    """A callback rejecting values below ``lo`` as a usage error (the help stays free of ranges)."""

    def check(value: Any) -> Any:
        if value is not None and value < lo:
            raise typer.BadParameter(f"must be >= {lo}, got {value}")
        return value

    return check


def one_of(source: str) -> Callable[[Any], Any]:
    """A callback accepting only the values of the tuple at ``"module:NAME"``; others are a usage
    error (exit 2). The module is imported when the option is parsed, not when help is built."""

    def check(value: Any) -> Any:
        module, _, name = source.partition(":")
        allowed = getattr(importlib.import_module(module), name)
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"choose from {', '.join(allowed)}, got {value!r}")
        return value

    return check


@dataclass
class _Generated:
    """The option(s) of one field: ``params`` for the signature, ``value(kwargs)`` for the field."""

    params: list[inspect.Parameter]
    value: Callable[[dict[str, Any]], Any]


def _option(f: dataclasses.Field[Any], hint: Any, group: FieldFlags) -> _Generated:
    """The option generated for field ``f`` (two for a bool: ``--x`` and a hidden ``--no-x``)."""
    meta = f.metadata
    if not meta.get("help"):
        raise TypeError(f"{group.cls.__name__}.{f.name} has no help text in its field metadata")
    panel = meta.get("panel") or (group.panel(f.name) if group.panel else None)
    names = (flag_name(f.name), *group.aliases.get(f.name, ()))
    base, optional = _unwrap_optional(hint)
    default = _default(f)
    helptext = _escape(meta["help"])
    kw: dict[str, Any] = {"rich_help_panel": panel}
    convert: Callable[[Any], Any] | None = None
    if "min" in meta:
        kw["callback"] = _at_least(meta["min"])
    origin, args = typing.get_origin(base), typing.get_args(base)

    def param(name: str, annotation: Any, option: Any) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)

    if base is bool:
        # ``--x`` in the help and a hidden ``--no-x``: a second column of negatives would leave the
        # help text a few characters wide at 80 columns.
        off = "--no-" + names[0][2:]
        note = {True: f" On by default; {off} turns it off.", None: f" {off} turns it off."}.get(default, "")
        on_param, off_param = f.name, f.name + "__off"
        params = [param(on_param, bool | None, typer.Option(None, *names, metavar="", help=helptext + note,
                                                            show_default=False, **kw)),
                  param(off_param, bool, typer.Option(False, off, hidden=True))]
        return _Generated(params, lambda v: False if v[off_param] else (True if v[on_param] else default))
    if "choices" in meta:
        annotation: Any = Literal[tuple(meta["choices"])]  # type: ignore[valid-type]
        kw["metavar"] = meta.get("metavar", "NAME")
        listed = all(c in meta["help"] for c in meta["choices"])
        helptext += "" if listed else " One of: " + ", ".join(meta["choices"]) + "."
    elif origin is tuple and args == (int, int):
        annotation, kw["metavar"], convert = str, meta.get("metavar", "HxW"), parse_size
        default = None if default is None else f"{default[0]}x{default[1]}"
    elif origin is tuple and args[-1:] == (Ellipsis,):
        annotation, kw["metavar"] = str, meta.get("metavar", "A,B")
        default = None if default is None else ",".join(default)
    elif origin is dict:
        annotation, kw["metavar"], convert = list[str], meta.get("metavar", "KEY=VALUE"), parse_key_values
        default = [f"{k}={json.dumps(v)}" for k, v in default.items()]
    elif base in (int, float, str):
        annotation, kw["metavar"] = base, meta.get("metavar", {int: "INT", float: "FLOAT", str: "TEXT"}[base])
    else:
        raise TypeError(f"{group.cls.__name__}.{f.name}: no generated flag for type {hint!r}; exclude it "
                        "and write the flag by hand")
    if optional:
        annotation = annotation | None
    name = f.name
    option = typer.Option(default, *names, help=helptext, **kw)
    if convert is None:
        return _Generated([param(name, annotation, option)], lambda v: v[name])
    fn = convert
    return _Generated([param(name, annotation, option)], lambda v: None if v[name] is None else fn(v[name]))


def generated_fields(group: FieldFlags) -> list[str]:
    """The field names of ``group.cls`` that get a generated option."""
    return [f.name for f in dataclasses.fields(group.cls) if f.name not in group.exclude]


def config_flags(*groups: FieldFlags, panels: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Decorate a Typer command: append one option per config field, hand the values over as dicts.

    The command function declares, for each group, a parameter named ``group.into``; it receives
    ``{field_name: value}`` of that group's options (every generated field, converted to the
    field's type where the option's text differs, e.g. ``HxW``). Options are listed panel by panel
    in the order of ``panels`` (others follow in order of appearance), hand-written and generated
    ones together.
    """

    def decorate(func: F) -> F:
        sig = inspect.signature(func, eval_str=True)
        intos = {g.into for g in groups}
        own = [p for p in sig.parameters.values() if p.name not in intos]
        taken = {p.name for p in own}
        generated: dict[str, tuple[str, _Generated]] = {}
        params = list(own)
        for group in groups:
            hints = typing.get_type_hints(group.cls)
            for f in dataclasses.fields(group.cls):
                if f.name in group.exclude:
                    continue
                gen = _option(f, hints[f.name], group)
                for p in gen.params:
                    if p.name in taken:
                        raise TypeError(f"{func.__name__}: {p.name} is both a parameter and a config field")
                    taken.add(p.name)
                params += gen.params
                generated[f.name] = (group.into, gen)

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            values: dict[str, dict[str, Any]] = {g.into: {} for g in groups}
            for name, (into, gen) in generated.items():
                values[into][name] = gen.value(kwargs)
                for p in gen.params:
                    kwargs.pop(p.name)
            return func(**kwargs, **values)

        order = {name: i for i, name in enumerate(panels)}

        def panel_rank(p: inspect.Parameter) -> int:
            panel = getattr(p.default, "rich_help_panel", None)
            return order.get(panel, len(order)) if panel is not None else -1

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sorted(params, key=panel_rank)]
        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command  # type: ignore[return-value]

    return decorate


class _PlainFlags:
    """Flags (``--json``, ``--help``) show no ``<bool>`` placeholder: they take no value."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


class Command(_PlainFlags, TyperCommand):
    """A command whose help lists flags without value placeholders."""


class Group(_PlainFlags, TyperGroup):
    """A command group whose help lists flags without value placeholders."""


class App(typer.Typer):
    """:class:`typer.Typer` whose group and commands use :class:`Group` and :class:`Command`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)
