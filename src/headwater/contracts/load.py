"""Load YAML spec files into frozen specs, turning every failure into one actionable line.

The line of each key is kept while parsing so a pydantic error's `loc` maps back to the file;
misspelt keys and enum values get a did-you-mean from the valid names. Hostile files are
refused with a located error too: bytes that are not UTF-8, and YAML aliases that would expand
past a small bound (a "billion laughs" file is a few hundred bytes and gigabytes expanded).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from headwater.contracts.base import FieldError
from headwater.errors import Location, SpecError

S = TypeVar("S", bound=BaseModel)
# libyaml's parser when present: the same marks and errors, several times faster
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Loc = tuple[str | int, ...]
# how many nodes aliases may add by repeating what they point at: far beyond any real spec
# (anchors there merge a few defaults), far below what makes a walk slow
ALIAS_EXPANSION = 10_000


def load_spec(
    cls: type[S],
    path: Path,
    *,
    root: Path | None = None,
    extra: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    without: tuple[str, ...] = (),
) -> S:
    """Read `path` as YAML and validate it as `cls` (`defaults` fill fields the file leaves
    out; `extra` overrides what it says; fields in `without` are another spec's, not read).

    Raises:
        SpecError: naming the file, line and field, the bad value and what would be valid.
    """
    shown = shown_path(path, root)
    text = read_text(path, shown=shown)
    return parse_spec(cls, text, file=shown, extra=extra, defaults=defaults, without=without)


def read_text(path: Path, *, shown: str) -> str:
    """The UTF-8 text of a spec file.

    Raises:
        SpecError: the file cannot be read (a folder, missing, no permission) or is not
            UTF-8 (naming the line and column of the first bad byte).
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        what = "is a folder, not a file" if path.is_dir() else f"cannot read file: {err.strerror}"
        raise SpecError(what, where=Location(shown)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError(
            f"byte 0x{data[err.start]:02x} in column {column} is not UTF-8",
            where=Location(shown, line),
            hint="save the file as UTF-8",
        ) from None


def parse_spec(
    cls: type[S],
    text: str,
    *,
    file: str,
    line_offset: int = 0,
    extra: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    without: tuple[str, ...] = (),
) -> S:
    """Validate YAML `text` as `cls`; lines in errors are shifted by `line_offset`."""
    data, lines = read_yaml(text, file=file, line_offset=line_offset)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(
            f"expected a mapping of fields, got {type(data).__name__}",
            where=Location(file, line_offset + 1),
        )
    try:
        data = {k: v for k, v in data.items() if k not in without}
        return cls.model_validate({**(defaults or {}), **data, **(extra or {})})
    except ValidationError as err:
        raise spec_error(cls, err, data, lines, file=file, line_offset=line_offset) from None


def read_yaml(text: str, *, file: str, line_offset: int = 0) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML, returning the data and the 1-based line of every key path."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _refuse_alias_bomb(node, file=file, line_offset=line_offset)
        data = loader.construct_document(node) if node is not None else None
    except yaml.reader.ReaderError as err:
        line: int | None = line_offset + text.count("\n", 0, err.position) + 1
        raise SpecError(
            f"invalid YAML: character {err.character!r} is not allowed (a control character)",
            where=Location(file, line),
            hint="remove it, or write it escaped in a double-quoted string",
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = line_offset + mark.line + 1 if mark else None
        problem = getattr(err, "problem", None) or str(err)
        context, opened = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and opened and opened.line != getattr(mark, "line", None):
            problem += f" ({context} on line {line_offset + opened.line + 1})"
        raise SpecError(f"invalid YAML: {problem}", where=Location(file, line)) from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if node is not None:
        _record_lines(node, (), lines, line_offset, file)
    return data, lines


def _refuse_alias_bomb(root: yaml.Node, *, file: str, line_offset: int) -> None:
    """Refuse a document whose aliases repeat more than `ALIAS_EXPANSION` nodes (or loop).

    The parsed data shares aliased objects, so it is small; it is every walk over it (the key
    lines here, pydantic's validation) that would expand it, exponentially.
    """
    seen: set[int] = set()
    repeated = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            repeated += 1
            if repeated > ALIAS_EXPANSION:
                raise SpecError(
                    f"YAML aliases expand to more than {ALIAS_EXPANSION:,} repeated values",
                    where=Location(file, line_offset + node.start_mark.line + 1),
                    hint="write the values out, or use fewer nested anchors (*alias)",
                )
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value


def locate(path: Path, loc: Loc) -> int | None:
    """The line of the key path `loc` (e.g. `("rules", 2, "target")`) in the YAML file `path`,
    for errors found after loading (a rule's target missing from the built table)."""
    try:
        _, lines = read_yaml(path.read_text(encoding="utf-8"), file=str(path))
    except (OSError, SpecError):
        return None
    return _line_of(loc, lines)


def _record_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int], offset: int, file: str) -> None:
    lines.setdefault(loc, node.start_mark.line + 1 + offset)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*loc, key_node.value)
            line = key_node.start_mark.line + 1 + offset
            if key in lines and key != loc:
                raise SpecError(
                    f"duplicate field {key_node.value!r} (first on line {lines[key]})",
                    where=Location(file, line, dotted(loc) or None),
                )
            lines[key] = line
            _record_lines(value_node, key, lines, offset, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, (*loc, i), lines, offset, file)


def spec_error(
    cls: type[BaseModel],
    err: ValidationError,
    data: Any,
    lines: dict[Loc, int],
    *,
    file: str,
    line_offset: int,
) -> SpecError:
    """The one-line error for a pydantic failure, located by the YAML key lines."""
    # a misspelt key also shows up as a missing one; the misspelling is the useful report
    first = min(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    loc = _data_loc(cls, tuple(first["loc"]))
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        loc = (*loc, *cause.loc)
    if first["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        loc = (*loc, str(first["ctx"]["discriminator"]).strip("'"))
    line = _line_of(loc, lines) or line_offset + 1
    kind = first["type"]
    value = _value_at(data, loc)
    if kind == "extra_forbidden":
        unknown, parent = loc[-1], loc[:-1]
        valid = _field_names(cls, parent, data)
        hint = _did_you_mean(str(unknown), valid) or f"valid fields: {', '.join(valid)}"
        return SpecError(
            f"unknown field {unknown!r}",
            where=Location(file, line, dotted(parent) or None),
            hint=hint,
        )
    field = dotted(loc) or None
    if kind in {"missing", "union_tag_not_found"}:
        # every missing field of the same mapping at once, not one per run
        siblings = [
            _data_loc(cls, tuple(e["loc"]))
            for e in err.errors()
            if e["type"] == "missing" and _data_loc(cls, tuple(e["loc"]))[:-1] == loc[:-1]
        ]
        names = list(dict.fromkeys(str(s[-1]) for s in siblings)) or [str(loc[-1])]
        if len(names) > 1:
            return SpecError(
                f"required fields are missing: {', '.join(names)}",
                where=Location(file, line, dotted(loc[:-1]) or None),
                hint="add " + ", ".join(f"`{n}:`" for n in names) + " here",
            )
        return SpecError(
            "required field is missing",
            where=Location(file, line, field),
            hint=f"add `{loc[-1]}:` here",
        )
    if kind in {"enum", "literal_error", "union_tag_invalid"}:
        expected = _expected(first)
        shown = value if kind != "union_tag_invalid" else first["ctx"].get("tag")
        return SpecError(
            f"{short(shown)} is not valid; expected one of {', '.join(expected)}",
            where=Location(file, line, field),
            hint=_did_you_mean(str(shown), expected),
        )
    message = _shorten(first["msg"].removeprefix("Value error, "))
    if kind != "value_error":
        message = message[0].lower() + message[1:]
        if value is not None and not isinstance(value, dict | list):
            message = f"{short(value)}: {message}"
    return SpecError(message, where=Location(file, line, field))


def _data_loc(cls: type[BaseModel], loc: Loc) -> Loc:
    """Drop the discriminator tags pydantic inserts into locs of tagged unions."""
    out: list[str | int] = []
    current: Any = cls
    for part in loc:
        if isinstance(part, int):
            out.append(part)
            current = _item_type(current)
            continue
        tagged = _tagged(current, part)
        if tagged is not None and _field_type(current, part) is None:
            current = tagged  # pydantic's tag of a tagged union, not a key in the file
            continue
        out.append(part)
        current = _field_type(current, part)
    return tuple(out)


# fields of a contract headwater sets (from the file's name and folder), never offered as hints
_SET_BY_US = ("name", "zone")


def _field_names(cls: type[BaseModel], loc: Loc, data: Any) -> list[str]:
    """The fields valid at `loc`; in a tagged union, those of the `kind` the data names."""
    current: Any = cls
    for end, part in enumerate(loc):
        current = _narrow(current, _value_at(data, loc[:end]))
        current = _item_type(current) if isinstance(part, int) else _field_type(current, part)
    model = _model_of(_narrow(current, _value_at(data, loc)))
    return (
        [n for n in model.model_fields if model.__name__ != "Contract" or n not in _SET_BY_US]
        if model
        else []
    )


def _field_type(annotation: Any, name: str) -> Any:
    """The annotation of field `name` in the (first) model of `annotation` that has it, or
    of any key's value in a mapping (`roles: {analyst: Role}`)."""
    if typing.get_origin(annotation) is dict:
        return typing.get_args(annotation)[1]
    for model in _models_of(annotation):
        if name in model.model_fields:
            return model.model_fields[name].annotation
    return None


def _tagged(annotation: Any, tag: str) -> type[BaseModel] | None:
    """The model of a tagged union whose `kind` is `tag`."""
    for model in _models_of(annotation):
        kind = model.model_fields.get("kind")
        if kind is not None and tag in typing.get_args(kind.annotation):
            return model
    return None


def _narrow(annotation: Any, value: Any) -> Any:
    """A tagged union narrowed to the member the data's `kind` names."""
    if isinstance(value, dict) and isinstance(value.get("kind"), str):
        return _tagged(annotation, value["kind"]) or annotation
    return annotation


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _item_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in {list, tuple}:
        return typing.get_args(annotation)[0]
    if origin in {typing.Union, types.UnionType, typing.Annotated}:
        for arg in typing.get_args(annotation):
            if typing.get_origin(arg) in {list, tuple}:
                return typing.get_args(arg)[0]
    return annotation


def _models_of(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_of(arg)]


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _value_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def short(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut in the middle when long (a 100 kB value stays one readable line)."""
    text = "null" if value is None else repr(value)
    return text if len(text) <= limit else f"{text[: limit - 20]}…{text[-15:]}"


def _shorten(message: str, limit: int = 300) -> str:
    """A validator's message, less the middle of a huge value it quotes."""
    return message if len(message) <= limit else f"{message[:200]}…{message[-80:]}"


def dotted(loc: Loc) -> str:
    """A field path as written in messages: `columns[1].type`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _expected(error: Any) -> list[str]:
    ctx = error.get("ctx") or {}
    text = str(ctx.get("expected") or ctx.get("expected_tags") or "")
    return re.findall(r"'([^']*)'", text) or [text]


# what other tools call the same thing (dbt's and dbt_utils' tests): a did-you-mean that a
# spelling match would never find
_OTHER_TOOLS = {
    "unique": "uniqueness",
    "accepted_values": "valid_values",
    "relationships": "referential_integrity",
    "expression_is_true": "custom_sql",
    "recency": "freshness",
    "not_null_proportion": "completeness",
    "accepted_range": "valid_values",
    "unique_combination_of_columns": "uniqueness",
    "equal_rowcount": "volume",
}


def _did_you_mean(word: str, choices: list[str]) -> str | None:
    known = _OTHER_TOOLS.get(word.split(".")[-1])
    if known in choices:
        return f"did you mean {known!r}? ({word} in dbt)"
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def shown_path(path: Path, root: Path | None) -> str:
    """`path` as the user knows it: relative to the project root when it is inside it."""
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)
