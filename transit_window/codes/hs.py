"""Harmonized System goods codes at six digits (HS 2022), as the corridor accepts them.

Owns the bundled `hs.json` (the 97 chapter titles, the corridor's list of known six-digit codes and the rules
that attach certificates to chapters), an operator's additions to the code list, and the checks a declared
goods code must pass. The list is strict: a well-formed code in a real chapter is still refused until the code
is in the bundled list or the operator's file, so that a typo cannot slip through as "some other product".

Certificates come from two places: chapter rules (01-05 veterinary, 06-14 phytosanitary) and per-code
entries for goods outside those chapters that need one all the same (raw cotton, chapter 52: phytosanitary).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from transit_window.codes._datafile import read_bundled, read_file
from transit_window.codes._errors import InvalidCode, ReferenceDataError

Certificate = Literal["veterinary", "phytosanitary"]

ChapterNumber = Annotated[str, Field(pattern=r"^[0-9]{2}$")]
Hs6 = Annotated[str, Field(pattern=r"^[0-9]{6}$")]


class HsChapter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    chapter: ChapterNumber
    name: Annotated[str, Field(min_length=1)]
    reserved: bool = False
    """Chapter 77 is kept free by the HS for future use: it has no codes."""


class HsCode(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Hs6
    description: Annotated[str, Field(min_length=1, max_length=200)]
    sensitive: bool = False
    """Sensitive goods travel under a navigation seal in the EAEU."""
    certificates: tuple[Certificate, ...] = ()
    """Certificates this code needs beyond those of its chapter."""

    @property
    def chapter(self) -> str:
        return self.code[:2]


class CertificateRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    first_chapter: ChapterNumber
    last_chapter: ChapterNumber
    certificate: Certificate
    reason: str

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.first_chapter > self.last_chapter:
            raise ValueError(f"first_chapter {self.first_chapter} is after last_chapter {self.last_chapter}")
        return self

    def applies_to(self, chapter: str) -> bool:
        return self.first_chapter <= chapter <= self.last_chapter


class HsCodeFile(BaseModel):
    """An operator's additions: codes only (chapters and rules are the bundled file's)."""

    model_config = ConfigDict(extra="forbid")

    codes: list[HsCode]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        _refuse_duplicates(code.code for code in self.codes)
        return self


class HsData(HsCodeFile):
    """The schema of the bundled `hs.json`."""

    chapters: list[HsChapter]
    certificate_rules: list[CertificateRule]

    @model_validator(mode="after")
    def _complete(self) -> Self:
        numbers = [chapter.chapter for chapter in self.chapters]
        if numbers != [f"{number:02d}" for number in range(1, 98)]:
            raise ValueError("chapters must be 01 to 97, each once, in order")
        return self


def _refuse_duplicates(codes: Iterator[str]) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise ValueError(f"HS code {code} appears more than once")
        seen.add(code)


def load_hs_file(path: Path | str) -> list[HsCode]:
    """Read and validate an operator's HS code file; raises `ReferenceDataError` naming the bad entry."""
    return read_file(path, HsCodeFile).codes


def _format_problem(code: str) -> str | None:
    """Why `code` is not shaped like an HS-6 code, or None."""
    if not code:
        return "HS code is empty: give the 6-digit code of the goods, e.g. 080810"
    compact = "".join(character for character in code if character not in ". ")
    if compact != code and compact.isascii() and compact.isdigit():
        return f"HS code {code!r} must be written as digits only, without dots or spaces: {compact}"
    if not (code.isascii() and code.isdigit()):
        return f"HS code {code!r} must contain digits only"
    if len(code) > 6:
        return (
            f"HS code {code} has {len(code)} digits: the corridor uses the 6-digit international code, "
            f"give the first six ({code[:6]})"
        )
    if len(code) < 6:
        return f"HS code {code} has {len(code)} digits, expected 6 (a chapter or heading is not enough)"
    return None


def chapter(code: str) -> str:
    """The two-digit chapter of a well-formed HS-6 code ("080810" → "08"); raises `InvalidCode` otherwise."""
    problem = _format_problem(code)
    if problem is not None:
        raise InvalidCode(problem)
    return code[:2]


class HsNomenclature:
    """The bundled chapters, rules and codes, with an operator's code file over them (same code: it wins)."""

    def __init__(self, *, operator_file: Path | str | None = None) -> None:
        data = read_bundled("hs.json", HsData)
        self._chapters = {chapter.chapter: chapter for chapter in data.chapters}
        self._rules = tuple(data.certificate_rules)
        codes = {code.code: code for code in data.codes}
        if operator_file is not None:
            for code in load_hs_file(operator_file):
                if self._chapter_problem(code.chapter) is not None:
                    raise ReferenceDataError(
                        f"{operator_file}: code {code.code}: {self._chapter_problem(code.chapter)}"
                    )
                codes[code.code] = code
        self._codes = dict(sorted(codes.items()))

    def chapter_name(self, number: str) -> str:
        found = self._chapters.get(number)
        if found is None:
            raise InvalidCode(f"{number!r} is not an HS chapter: chapters are 01 to 97")
        return found.name

    def get(self, code: str) -> HsCode | None:
        return self._codes.get(code)

    def codes(self) -> list[HsCode]:
        return list(self._codes.values())

    def validate(self, code: str) -> str | None:
        """None when the code is accepted, else the reason it is refused."""
        problem = _format_problem(code) or self._chapter_problem(code[:2])
        if problem is not None:
            return problem
        if code not in self._codes:
            return (
                f"HS code {code} (chapter {code[:2]}, {self._chapters[code[:2]].name}) is not in the "
                "corridor's code list: check the code, or ask the operator to add it"
            )
        return None

    def required_certificates(self, code: str) -> tuple[Certificate, ...]:
        """Certificates the goods need, from the chapter rules and the code's own entry, in a stable order.

        Raises `InvalidCode` when the code is malformed or in no chapter; a well-formed code that is not in
        the list still gets its chapter's certificates (the list decides acceptance, not this).
        """
        problem = _format_problem(code) or self._chapter_problem(code[:2])
        if problem is not None:
            raise InvalidCode(problem)
        needed = {rule.certificate for rule in self._rules if rule.applies_to(code[:2])}
        entry = self._codes.get(code)
        if entry is not None:
            needed.update(entry.certificates)
        return tuple(sorted(needed))

    def certificate_reason(self, code: str, certificate: Certificate) -> str:
        """Why `code` needs `certificate`, for a person: the chapter rule's reason, or the code's own entry."""
        rule = next(
            (rule for rule in self._rules if rule.applies_to(code[:2]) and rule.certificate == certificate), None
        )
        if rule is not None:
            return f"HS chapter {code[:2]}: {rule.reason}"
        return f"HS {code} is listed as needing it"

    def is_sensitive(self, code: str) -> bool:
        entry = self._codes.get(code)
        return entry is not None and entry.sensitive

    def _chapter_problem(self, number: str) -> str | None:
        found = self._chapters.get(number)
        if found is None:
            return f"chapter {number} does not exist: HS chapters are 01 to 97"
        if found.reserved:
            return f"chapter {number} is reserved in the Harmonized System and has no codes"
        return None


@cache
def bundled_nomenclature() -> HsNomenclature:
    """The bundled list alone, read once. A node with an operator file builds its own `HsNomenclature`."""
    return HsNomenclature()


def validate_hs6(code: str, nomenclature: HsNomenclature | None = None) -> str | None:
    """None when the code is accepted, else the reason: not 6 digits, no such chapter, or not in the list."""
    return (nomenclature or bundled_nomenclature()).validate(code)


def required_certificates(hs6: str, nomenclature: HsNomenclature | None = None) -> tuple[Certificate, ...]:
    """Certificates needed for the goods: "020130" → ("veterinary",). Raises `InvalidCode` on a bad code."""
    return (nomenclature or bundled_nomenclature()).required_certificates(hs6)


def is_sensitive(hs6: str, nomenclature: HsNomenclature | None = None) -> bool:
    return (nomenclature or bundled_nomenclature()).is_sensitive(hs6)
