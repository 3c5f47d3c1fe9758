"""Teaching truth: prose may state only numbers the course measured, set or cites.

Two checks, used by ``tests/test_teaching_truth.py`` and ``python tools/nb.py truth``:

- :func:`stale_markers`: every ``<!--r:key-->text<!--/r-->`` marker (see :mod:`mmcourse.results`) must show
  exactly the text its key recorded.
- :func:`unsupported_numbers`: every other number in a notebook's markdown must be printed by one of its
  cells (rounding allowed: prose "0.88" for a printed 0.875), appear in its code (a setting), sit in a
  sentence that cites a source (an author–year, "et al.", arXiv or a link), or be a year or a small count
  (0–10). Headings' and lists' numbering, inline code, math and URLs are not prose numbers.
- :func:`untagged_table_numbers`: in the README's results table, every number in the result column comes
  from a marker (goals in "(goal …)" are settings).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from mmcourse.results import MARKER

NUMBER = re.compile(r"(?<![\w@/\\.^_-])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w.]\w|\w)")
CITATION = re.compile(r"et al\.?|\b(?:19|20)\d\d\b|arXiv|https?://|\]\(")
SMALL_COUNT = 10


@dataclass(frozen=True)
class ProseNumber:
    """A number found in prose, where it was found, and the sentence around it."""

    where: str
    text: str
    sentence: str

    def __str__(self) -> str:
        return f"{self.where}: {self.text!r} in “{self.sentence.strip()[:160]}”"


def _strip_non_prose(markdown: str) -> str:
    text = MARKER.sub(" ", markdown)
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)  # fenced code
    text = re.sub(r"`[^`]*`", " ", text)  # inline code: names and settings
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", " ", text, flags=re.DOTALL)  # math
    text = re.sub(r"<[^>]+>", " ", text)  # html tags and comments
    text = re.sub(r"^\s*#+\s*[\d.]*", "", text, flags=re.MULTILINE)  # heading numbering
    text = re.sub(r"^\s*\d+\.\s", " ", text, flags=re.MULTILINE)  # numbered lists
    return text


def _sentences(text: str):
    for paragraph in re.split(r"\n\s*\n|\n\s*[-*|]", text):
        yield from re.split(r"(?<=[.!?;])\s+(?=[A-Z(])", paragraph)


def _value(integer: str, decimals: str | None) -> float:
    return float(integer.replace(",", "") + ("." + decimals if decimals else ""))


def numbers_in(text: str) -> list[tuple[float, int]]:
    """(value, number of decimals) of every number in ``text``."""
    return [(_value(m[1], m[2]), len(m[2] or "")) for m in NUMBER.finditer(text)]


def _supported(value: float, decimals: int, printed: list[tuple[float, int]]) -> bool:
    for number, number_decimals in printed:
        if number_decimals >= decimals and round(number, decimals) == round(value, decimals):
            return True
        # prose may give a percentage of a printed fraction, or the fraction of a printed percentage
        if number_decimals + 2 >= decimals and round(number * 100, decimals) == round(value, decimals):
            return True
    return False


def unsupported_numbers(markdown_cells: list[str], code_and_outputs: str, where: str = "") -> list[ProseNumber]:
    """Numbers in ``markdown_cells`` that nothing in ``code_and_outputs`` supports and no citation covers."""
    printed = numbers_in(code_and_outputs)
    found = []
    for index, cell in enumerate(markdown_cells):
        for sentence in _sentences(_strip_non_prose(cell)):
            if CITATION.search(sentence):
                continue
            for match in NUMBER.finditer(sentence):
                value, decimals = _value(match[1], match[2]), len(match[2] or "")
                if decimals == 0 and (value <= SMALL_COUNT or 1900 <= value <= 2100):
                    continue
                if not _supported(value, decimals, printed):
                    found.append(ProseNumber(f"{where}markdown cell {index}", match[0], sentence))
    return found


def stale_markers(text: str, results: dict[str, str], where: str = "") -> list[str]:
    """Markers in ``text`` whose shown text differs from the record, or whose key nothing records."""
    problems = []
    for match in MARKER.finditer(text):
        key, shown = match["key"], match["text"]
        if key not in results:
            problems.append(f"{where}marker {key!r}: no notebook or benchmark records this key")
        elif results[key] != shown:
            problems.append(f"{where}marker {key!r} shows {shown!r} but the recorded result is {results[key]!r}")
    return problems


def untagged_table_numbers(readme: str, heading: str = "## Measured results") -> list[str]:
    """Numbers in the result column of the README's results table that do not come from a marker."""
    section = readme.split(heading, 1)[1] if heading in readme else ""
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    problems = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or set(cells[1]) <= set("-: "):
            continue
        result = MARKER.sub(" ", cells[1])
        result = re.sub(r"\((?:goals?|chance|aim)\b[^)]*\)", " ", result)
        result = re.sub(r"`[^`]*`", " ", result)
        if result.strip() == "result":
            continue
        if NUMBER.search(result):
            problems.append(f"README results row “{cells[0][:60]}”: untagged number(s) in “{result.strip()[:120]}”")
    return problems
