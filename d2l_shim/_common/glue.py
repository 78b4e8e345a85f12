"""Glue: a code cell records a named value, the book's prose refers to it by name.

    d2l.glue("val_ppl", ppl, fmt=".2f")      # in a code cell: records and displays the value
    ... vaut :glue:`val_ppl` ...             # in the chapter's prose: replaced by the value

The build (book/glue.py) reads the recorded values from the executed notebook's outputs: one
``display_data`` output per call, whose ``application/vnd.d2l.glue+json`` data is
``{"name": ..., "text": ...}`` and whose ``text/plain`` (``val_ppl = 6.26``) is what a reader
who reruns the notebook sees. Outside IPython the value is only recorded (``recorded()``).

The text of a number is ``format(value, fmt)`` (``str(value)`` without ``fmt``) written the
French way, as the book's prose: a decimal comma (``6,26``), thousands grouped by ``fmt=",d"``
(or ``"_d"``) separated by a narrow no-break space (U+202F: ``13 212``), and that space before
``%`` (``fmt=".1%"``: ``12,5 %``). Printed tables keep Python's decimal point. A string is
shown as it is (``format(value, fmt)`` with ``fmt``): glue a string to let the code choose a
word, e.g. « plus basse » or « plus haute ». The text is inserted in the Markdown as it is.
"""

from __future__ import annotations

import numbers
import re
from typing import Any

GLUE_MIME = "application/vnd.d2l.glue+json"
NAME = re.compile(r"[a-z][a-z0-9_]*")
NNBSP = "\u202f"

_records: dict[str, str] = {}


class GlueText(str):
    """The text of a glued value. A str that Jupyter does not echo as the cell's result: the
    call has already displayed ``name = text``."""

    def _ipython_display_(self) -> None:
        pass


def glue_text(value: Any, fmt: str | None = None) -> str:
    """The text shown for ``value``: ``format(value, fmt)``, numbers written the French way."""
    if isinstance(value, str):
        return format(value, fmt) if fmt else value
    if not isinstance(value, numbers.Number):  # bool is a Number
        raise TypeError(
            f"glue : value doit être un nombre ou une chaîne (reçu : {type(value).__name__}) ; "
            "convertissez un tenseur avec float(...) ou int(...)"
        )
    text = format(value, fmt) if fmt else str(value)
    if isinstance(value, bool):
        return text
    if fmt and ("," in fmt or "_" in fmt):  # grouping options of the format mini-language
        text = text.replace(",", NNBSP).replace("_", NNBSP)
    text = text.replace(".", ",")
    return text[:-1] + NNBSP + "%" if text.endswith("%") else text


def glue(name: str, value: Any, fmt: str | None = None) -> str:
    """Record ``value`` under ``name`` for the prose (``:glue:`name```) and return its text.

    ``name`` matches ``[a-z][a-z0-9_]*`` and must be a literal string in the chapter (the build
    reads it there). In Jupyter, displays ``name = text`` (one output the build reads back).
    """
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(f"glue : name doit correspondre à [a-z][a-z0-9_]* (reçu : {name!r})")
    if fmt is not None and not isinstance(fmt, str):
        raise ValueError(f"glue : fmt doit être une chaîne de format, ex. '.2f' (reçu : {fmt!r})")
    try:
        text = glue_text(value, fmt)
    except ValueError as err:  # a format that does not apply to this value
        raise ValueError(f"glue : fmt={fmt!r} ne s'applique pas à {value!r} ({err})") from None
    _records[name] = text
    _display(name, text)
    return GlueText(text)


def recorded() -> dict[str, str]:
    """The values glued so far in this process: {name: text}."""
    return dict(_records)


def _display(name: str, text: str) -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    if get_ipython() is None:
        return
    from IPython.display import display

    data = {"text/plain": f"{name} = {text}", GLUE_MIME: {"name": name, "text": text}}
    display(data, raw=True)
