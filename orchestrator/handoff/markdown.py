"""A handoff's markdown as lines that know their place: headings above them, code or prose.

The structure comes from a CommonMark parser (markdown-it-py), not from regexes over lines, so
setext headings, fences inside block quotes and list items, and indented code blocks are what a
markdown renderer shows them to be. Mojibake is repaired by ftfy, which leaves text that reads
correctly alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ftfy
from markdown_it import MarkdownIt
from markdown_it.token import Token

PARSER = MarkdownIt("commonmark").disable("inline")  # blocks are all we read; inlines are slow
NEWLINE = re.compile(r"\r\n?|\n")  # the line endings markdown-it counts lines by
AFTER_LANG = re.compile(r"[^\w+-].*", re.S)  # what follows the language in a fence's info string


def decode(data: bytes) -> str:
    """UTF-8 (BOM tolerated), with UTF-8 that was once mis-decoded (as cp1252, mac_roman, ...)
    repaired. ftfy only changes text that is clearly mis-decoded, so correct UTF-8 is kept as is;
    it judges the whole text at once, as the mis-decoding happened to the whole file.
    """
    return ftfy.fix_encoding(data.decode("utf-8-sig", errors="replace"))


@dataclass
class Line:
    text: str  # as written; for code, the block's content (no quote markers or indentation)
    headings: tuple[tuple[int, str], ...]  # the enclosing headings, outermost first
    code: bool = False
    lang: str = ""
    block: int = -1  # which code block
    before_block: str = ""  # the last prose line before this line's code block
    is_heading: bool = False  # the line is a heading itself (the last of `headings`)

    @property
    def heading(self) -> str:
        return self.headings[-1][1] if self.headings else ""


@dataclass(frozen=True)
class _Heading:
    level: int
    title: str
    title_end: int  # a setext title's underline, after this line, is not text


@dataclass(frozen=True)
class _Code:
    lang: str
    lines: list[str]


def scan(text: str) -> list[Line]:
    """Split markdown into lines, each knowing its headings and whether it is code.

    Prose lines are kept as written, one per source line. A heading is one line; a code block is
    its content lines, without the fences.
    """
    source = _lines(text)
    marks = _marks(PARSER.parse(text))
    lines: list[Line] = []
    headings: list[tuple[int, str]] = []
    block, last_prose, row = -1, "", 0
    while row < len(source):
        end, mark = marks.get(row, (row + 1, None))
        if isinstance(mark, _Code):
            block += 1
            for code in mark.lines:
                lines.append(Line(code, tuple(headings), True, mark.lang, block, last_prose))
        else:
            raw = source[row]
            if isinstance(mark, _Heading):
                headings = [h for h in headings if h[0] < mark.level] + [(mark.level, mark.title)]
                raw = "\n".join(source[row : mark.title_end])
            lines.append(Line(raw, tuple(headings), is_heading=mark is not None))
            last_prose = raw.strip() or last_prose
        row = end
    return lines


def _marks(tokens: list[Token]) -> dict[int, tuple[int, _Heading | _Code]]:
    """The headings and code blocks, by first source line: (the line after them, what it is)."""
    marks: dict[int, tuple[int, _Heading | _Code]] = {}
    for i, token in enumerate(tokens):
        if token.map is None:
            continue
        start, end = token.map
        if token.type in ("fence", "code_block"):
            lang = AFTER_LANG.sub("", token.info.strip()).lower()
            marks[start] = (end, _Code(lang, _lines(token.content)))
        elif token.type == "heading_open":
            title = tokens[i + 1]  # the heading's inline content
            title_end = title.map[1] if title.map else start + 1
            level = int(token.tag[1:])
            marks[start] = (end, _Heading(level, title.content.replace("\n", " "), title_end))
    return marks


def _lines(text: str) -> list[str]:
    """`text` split at its line endings; a final line ending does not start another line."""
    lines = NEWLINE.split(text)
    return lines[:-1] if lines[-1] == "" else lines


def plain(text: str) -> str:
    """Prose without emphasis, list markers and code ticks, for matching."""
    text = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", text)
    return re.sub(r"\*\*|__|`", "", text).strip()
