"""Spanish free-text opening hours → OSM ``opening_hours`` syntax, or an honest refusal.

Spanish registries publish hours as free text ("Lunes a viernes de 9:00 a 14:00 y de 16:00 a
20:00", "L-V 9-14h; S 10-13h", "24 horas", "Horario del centro"). :func:`to_opening_hours`
converts the common phrasings and refuses the rest with a Spanish reason; it never guesses. Every
string it returns has been parsed by the same ``opening_hours`` parser the layer validation uses,
so it is always valid syntax.

What it understands
-------------------
- Round-the-clock: ``24 horas``, ``24h``, ``Abierto 24 horas``, ``24 h / 7 días``, ``365 días``,
  ``24/7`` → ``24/7`` (or ``Mo-Fr 00:00-24:00`` when days are given).
- Days: full names (``lunes``… ``domingos``), abbreviations (``lun``, ``mié.``, ``sáb``), single
  letters ``L M X J V S D``, ranges with ``-``/``a``/``al``/``hasta`` and lists with ``,``/``y``;
  ``fin(es) de semana`` → ``Sa,Su``; ``todos los días``/``diario`` → ``Mo-Su``; ``festivos`` →
  ``PH``. ``laborables`` is refused (Mo-Fr or Mo-Sa: ambiguous).
- Times: ``9``, ``9h``, ``9:00``, ``9.30``, ``9h30``, ``09:00h``; ranges ``9-14``, ``de 9 a 14``,
  ``9 a 14``; several joined by ``y``/``,``; ``de la tarde``/``de la noche``/``pm`` after an hour
  before 12 add 12 h.
- ``cerrado`` → ``off``; ``excepto``/``salvo`` + days → those days ``off``.
- Rules separated by ``;``, ``.``, ``/``, a new line, or simply by the next day expression.
- Text already in OSM syntax is returned as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import opening_hours

from geo.core.text import fold

# The package's type stub omits its exception class.
_ParserError: type[Exception] = opening_hours.ParserError  # type: ignore[attr-defined]

_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")

_DAY_WORDS: dict[str, str] = {
    "lunes": "Mo", "lun": "Mo", "l": "Mo",
    "martes": "Tu", "mar": "Tu", "m": "Tu",
    "miercoles": "We", "mie": "We", "mier": "We", "x": "We",
    "jueves": "Th", "jue": "Th", "j": "Th",
    "viernes": "Fr", "vie": "Fr", "v": "Fr",
    "sabado": "Sa", "sabados": "Sa", "sab": "Sa", "s": "Sa",
    "domingo": "Su", "domingos": "Su", "dom": "Su", "d": "Su",
    "festivo": "PH", "festivos": "PH", "fest": "PH",
}  # fmt: skip

# Texts that point at another schedule or depend on something we cannot know: refused, with why.
_REFERRALS: tuple[tuple[str, str], ...] = (
    (r"\bsegun\b", "remite a otro horario"),
    (r"\bhorario (?:del|de la|de|comercial)\b", "remite al horario de otro lugar"),
    (r"\b(?:centro|establecimiento|edificio|instalacion(?:es)?|local|tienda)\b",
     "remite al horario del establecimiento"),
    (r"\b(?:apertura|consultar|variable|eventos?|actividad(?:es)?|partidos?|cita)\b",
     "depende de la apertura o de la actividad"),
    (r"\b(?:verano|invierno|temporada|julio|agosto|septiembre|junio)\b",
     "es estacional"),
    (r"\blaborables?\b", "«laborables» es ambiguo (lunes a viernes o lunes a sábado)"),
)  # fmt: skip

_IGNORED = frozenset(
    {"de", "del", "desde", "el", "la", "las", "los", "por", "en", "horario", "horarios",
     "abierto", "abierta", "abiertos", "manana", "mananas", "tarde", "tardes", "noche", "noches",
     "dias", "dia", "semana", "todo", "horas", "hrs", "h", "am"}
)  # fmt: skip

_TOKEN = re.compile(
    r"""
    (?P<allday>\b24\s*/\s*7\b|\b24\s*(?:h|hrs?|horas)\b)
    |(?P<time>\b(?P<hour>\d{1,2})(?:\s*[:.h]\s*(?P<minute>\d{2}))?(?:\s*(?:h|hrs?|horas)\b)?)
    |(?P<word>[a-z]+)
    |(?P<dash>-)
    |(?P<sep>[;/\n|])
    |(?P<comma>,)
    |(?P<space>\s+)
    |(?P<other>.)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # allday, time, day, dash, and, sep, closed, except, pm, everyday, weekend
    value: str = ""
    hour: int = 0
    minute: int = 0


class _Refusal(Exception):  # internal signal, never escapes this module
    def __init__(self, reason: str) -> None:
        self.reason = reason


def to_opening_hours(text: str | None) -> tuple[str | None, str | None]:
    """Convert Spanish free-text opening hours to OSM ``opening_hours`` syntax.

    Parameters
    ----------
    text
        The hours as published (e.g. ``"L-V 8:00-15:00"``).

    Returns
    -------
    tuple
        ``(opening_hours, None)`` when converted — always valid OSM syntax; ``(None, reason)``
        when not, the reason in Spanish quoting the text; ``(None, None)`` for empty text (nothing
        published, nothing to flag).
    """
    if text is None or not text.strip():
        return None, None
    original = " ".join(text.split())
    if _valid(original):
        return original, None
    normalised = _normalise(original)
    for pattern, why in _REFERRALS:
        if re.search(pattern, normalised):
            return None, f"horario «{original}» no convertido: {why}."
    try:
        result = _convert(normalised)
    except _Refusal as exc:
        return None, f"horario «{original}» no convertido: {exc.reason}."
    if not _valid(result):  # a safety net: never hand back invalid syntax
        return None, f"horario «{original}» no convertido: la conversión «{result}» no es válida."
    return result, None


def _valid(value: str) -> bool:
    try:
        opening_hours.OpeningHours(value)
    except _ParserError:
        return False
    return True


def _normalise(text: str) -> str:
    text = re.sub(r"[–—‐]", "-", fold(text))
    text = re.sub(r"\bp\.?\s?m\b\.?", " pm ", text)
    text = re.sub(r"\ba\.?\s?m\b\.?", " am ", text)
    text = re.sub(r"\b(lun|mar|mie|mier|jue|vie|sab|dom|fest|h|hrs)\.", r"\1 ", text)
    text = re.sub(r"(?<!\d):|:(?!\d)", " ", text)  # "L-V: 8-15h" (a colon after days)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", ";", text)  # a full stop ends a rule; 9.30 stays
    # Round-the-clock phrasings collapse into one token.
    text = re.sub(
        r"\b24\s*(?:h|hrs?|horas)\b(?:\s*(?:al|del)\s*dia)?"
        r"(?:\s*[,/y]?\s*7\s*(?:d|dias)\b(?:\s*(?:a|de)\s*la\s*semana)?)?"
        r"(?:\s*[,/y]?\s*365\s*dias\b(?:\s*(?:al|del)\s*ano)?)?",
        " 24h ",
        text,
    )
    text = re.sub(r"\b365\s*dias\b(?:\s*(?:al|del)\s*ano)?", " todoslosdias ", text)
    text = re.sub(r"\b(?:todos\s+los\s+dias|a\s+diario|diario|diariamente|cada\s+dia)\b",
                  " todoslosdias ", text)  # fmt: skip
    text = re.sub(r"\b(?:los\s+)?fin(?:es)?\s+de\s+semana\b", " findesemana ", text)
    return text


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        raw = match.group()
        if kind == "allday":
            tokens.append(_Token("allday"))
        elif kind == "time":
            hour, minute = int(match.group("hour")), int(match.group("minute") or 0)
            if hour > 24 or minute > 59 or (hour == 24 and minute):
                raise _Refusal(f"la hora «{raw.strip()}» no existe")
            tokens.append(_Token("time", raw, hour, minute))
        elif kind == "word":
            tokens.extend(_word_token(raw))
        elif kind == "dash":
            tokens.append(_Token("dash"))
        elif kind == "sep":
            tokens.append(_Token("sep"))
        elif kind == "comma":
            tokens.append(_Token("and"))
        elif kind == "other":
            raise _Refusal(f"no se reconoce el carácter «{raw}»")
    return tokens


def _word_token(word: str) -> list[_Token]:
    if word in _DAY_WORDS:
        return [_Token("day", _DAY_WORDS[word])]
    if word in ("a", "al", "hasta"):
        return [_Token("dash")]
    if word in ("y", "e"):
        return [_Token("and")]
    if word in ("cerrado", "cerrados", "cerrada", "cerradas"):
        return [_Token("closed")]
    if word in ("excepto", "salvo", "menos"):
        return [_Token("except")]
    if word == "pm":
        return [_Token("pm")]
    if word == "todoslosdias":
        return [_Token("everyday")]
    if word == "findesemana":
        return [_Token("weekend")]
    if word in _IGNORED:
        return [_Token("pm")] if word in ("tarde", "noche") else []
    raise _Refusal(f"no se reconoce «{word}»")


class _Reader:
    """A recursive-descent reader over the tokens; each rule is (days, times)."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self, offset: int = 0) -> _Token | None:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def kind(self, offset: int = 0) -> str | None:
        token = self.peek(offset)
        return None if token is None else token.kind

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def skip_pm(self) -> None:
        while self.kind() == "pm":  # a stray "tarde"/"noche" qualifier (not after an hour)
            self.take()

    # days --------------------------------------------------------------------------------------

    def days(self) -> list[str] | None:
        """A day list (``L-V``, ``lunes, miércoles y viernes``), as OSM selectors."""
        if self.kind() == "everyday":
            self.take()
            return ["Mo-Su"]
        if self.kind() == "weekend":
            self.take()
            parts = ["Sa,Su"]
        elif self.kind() == "day":
            parts = [self.day_range()]
        else:
            return None
        while self.kind() == "and" and self.kind(1) in ("day", "weekend"):
            self.take()
            if self.kind() == "weekend":
                self.take()
                parts.append("Sa,Su")
            else:
                parts.append(self.day_range())
        return parts

    def day_range(self) -> str:
        first = self.take().value
        if self.kind() == "dash" and self.kind(1) == "day":
            self.take()
            last = self.take().value
            if "PH" in (first, last):
                raise _Refusal("un intervalo de días no puede incluir los festivos")
            return first if first == last else f"{first}-{last}"
        return first

    # times -------------------------------------------------------------------------------------

    def times(self) -> list[str] | None:
        if self.kind() == "allday":
            self.take()
            return ["00:00-24:00"]
        if self.kind() == "closed":
            self.take()
            return ["off"]
        if self.kind() != "time":
            return None
        ranges = [self.time_range()]
        while self.kind() == "and" and self.kind(1) == "time":
            self.take()
            ranges.append(self.time_range())
        return ranges

    def time_range(self) -> str:
        start = self.take()
        start_pm = self.kind() == "pm"
        if start_pm:
            self.take()
        if self.kind() != "dash" or self.kind(1) != "time":
            raise _Refusal(f"la hora «{start.value.strip()}» no forma un intervalo (desde-hasta)")
        self.take()
        end = self.take()
        end_pm = self.kind() == "pm"
        if end_pm:
            self.take()
        start_h, end_h = start.hour, end.hour
        if start_pm and start_h < 12:
            start_h += 12
        if end_pm and end_h < 12:
            if not start_pm and start_h <= end_h:  # "de 4 a 8 de la tarde": both afternoon
                start_h += 12
            end_h += 12
        if (start_h, start.minute) == (end_h, end.minute):
            raise _Refusal("un intervalo empieza y acaba a la misma hora")
        return f"{start_h:02d}:{start.minute:02d}-{end_h:02d}:{end.minute:02d}"

    # rules -------------------------------------------------------------------------------------

    def rules(self) -> list[str]:
        rules: list[str] = []
        while self.peek() is not None:
            self.skip_pm()
            if self.kind() in ("sep", "and"):
                self.take()
                continue
            if self.peek() is None:
                break
            if self.kind() == "except":
                self.take()
                days = self.days()
                if days is None:
                    raise _Refusal("«excepto» no va seguido de días")
                rules.append(f"{','.join(days)} off")
                continue
            days = self.days()
            self.skip_pm()
            times = self.times()
            if days is None and times is None:
                raise _Refusal("el texto no tiene la forma días + horas")
            if times is None:
                self.skip_pm()
                times = self.times()
            if days is None:
                days = self.days()  # "de 9 a 14 de lunes a viernes"
            if times is None:
                raise _Refusal(f"faltan las horas para «{','.join(days or [])}»")
            rules.append(_rule(days, times))
        if not rules:
            raise _Refusal("no se reconoce ningún horario")
        return rules


def _rule(days: list[str] | None, times: list[str]) -> str:
    day_text = ",".join(days) if days else ""
    if times == ["off"]:
        if not day_text:
            raise _Refusal("«cerrado» sin días")
        return f"{day_text} off"
    if times == ["00:00-24:00"] and day_text in ("", "Mo-Su"):
        return "24/7"
    time_text = ",".join(times)
    return f"{day_text} {time_text}".strip()


def _convert(normalised: str) -> str:
    rules = _Reader(_tokens(normalised)).rules()
    if len(rules) > 1 and "24/7" in rules:
        rules = [r if r != "24/7" else "Mo-Su 00:00-24:00" for r in rules]
    return "; ".join(rules)
