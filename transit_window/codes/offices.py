"""Customs offices of the corridor: the bundled directory and an operator's additions.

Owns the `Office` record, the bundled `offices.json`, the rules an office entry must obey and the merge of
an operator's file over the bundled one (an entry with the same code replaces the bundled entry). Office codes
are corridor-internal 8-character references shaped like NCTS office numbers: the country, then six letters or
digits (`KZALA001` Almaty). The UN/LOCODE, where the place has one, is kept apart in `unlocode` ("KZ ALA").

A border crossing is two offices, one per side, that name each other as `partner` (Zhibek Zholy KZZHZ001 and
Gishtkuprik UZGIS001). Coordinates flagged `approx` are estimates: good for a map, not for a geofence. Each
bundled office also has its Russian name (`name_ru`, Cyrillic) for the public tracking page in Russian.
This module reads files; it must not talk to a database or the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from transit_window.codes._datafile import read_bundled, read_file
from transit_window.codes._errors import InvalidCode, ReferenceDataError
from transit_window.codes.countries import is_country

OfficeRole = Literal["inland", "border", "port"]
TransportMode = Literal["road", "rail", "sea"]

OfficeCode = Annotated[str, Field(pattern=r"^[A-Z]{2}[A-Z0-9]{6}$")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
CYRILLIC = r"[\u0400-\u04FF]"  # at least one Cyrillic letter: the English name pasted into name_ru is a mistake


class Office(BaseModel):
    """One customs office. Frozen: a directory hands out the same objects to every caller."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: OfficeCode
    name: Annotated[str, Field(min_length=1, max_length=120)]
    name_ru: Annotated[str, Field(min_length=1, max_length=120, pattern=CYRILLIC)] | None = None
    """The name in Russian, in Cyrillic (the public page in Russian); an operator's entry without one is shown by
    `name` in both languages."""
    role: OfficeRole
    country: CountryCode
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    faces: CountryCode | None = None
    """For a border office: the neighbouring country across the line."""
    unlocode: Annotated[str, Field(pattern=r"^[A-Z]{2} [A-Z2-9]{3}$")] | None = None
    partner: OfficeCode | None = None
    """For a border office: the office on the other side of the same crossing, when the directory has it."""
    modes: tuple[TransportMode, ...] = ()
    approx: bool = False
    """The coordinates are an estimate."""

    def name_in(self, lang: str) -> str:
        """The name a reader of `lang` ("en" or "ru") knows the place by."""
        return self.name_ru if lang == "ru" and self.name_ru else self.name

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not is_country(self.country):
            raise ValueError(f"country {self.country!r} is not an ISO 3166-1 code")
        if not self.code.startswith(self.country):
            raise ValueError(f"code {self.code} must start with its country {self.country}")
        if self.unlocode is not None and not self.unlocode.startswith(self.country):
            raise ValueError(f"UN/LOCODE {self.unlocode!r} is not in the office's country {self.country}")
        if self.role == "border":
            if self.faces is None:
                raise ValueError("a border office must say which country it faces ('faces')")
            if not is_country(self.faces):
                raise ValueError(f"faces {self.faces!r} is not an ISO 3166-1 code")
            if self.faces == self.country:
                raise ValueError(f"a border office of {self.country} cannot face its own country")
            if self.partner is not None and not self.partner.startswith(self.faces):
                raise ValueError(f"partner {self.partner} is not an office of {self.faces}, the country faced")
        elif self.faces is not None or self.partner is not None:
            raise ValueError(f"only border offices have 'faces' and 'partner'; this one is {self.role}")
        return self


class OfficeFile(BaseModel):
    """The schema of `offices.json` and of an operator's office file."""

    model_config = ConfigDict(extra="forbid")

    offices: list[Office]

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for office in self.offices:
            if office.code in seen:
                raise ValueError(f"office code {office.code} appears more than once")
            seen.add(office.code)
        return self


def load_office_file(path: Path | str) -> list[Office]:
    """Read and validate an office file; raises `ReferenceDataError` naming the file and the bad entry."""
    return read_file(path, OfficeFile).offices


class OfficeDirectory:
    """The bundled offices, with an operator's file laid over them (same code → the operator's entry wins)."""

    def __init__(self, *, operator_file: Path | str | None = None) -> None:
        offices = {office.code: office for office in read_bundled("offices.json", OfficeFile).offices}
        source = "bundled offices.json"
        if operator_file is not None:
            offices.update((office.code, office) for office in load_office_file(operator_file))
            source = f"offices.json with {operator_file}"
        _check_crossings(offices.values(), offices, source=source)
        self._offices = dict(sorted(offices.items()))

    def get(self, code: str) -> Office | None:
        return self._offices.get(code)

    def require(self, code: str) -> Office:
        """The office, or `InvalidCode` with a message a clerk can act on."""
        office = self._offices.get(code)
        if office is None:
            raise InvalidCode(
                f"no customs office with reference {code!r} in the corridor directory; an office reference "
                "is 8 characters, the country then six letters or digits, e.g. KZALA001"
            )
        return office

    def by_country(self, country: str) -> list[Office]:
        return [office for office in self._offices.values() if office.country == country]

    def all(self) -> list[Office]:
        return list(self._offices.values())

    def __contains__(self, code: object) -> bool:
        return code in self._offices

    def __iter__(self) -> Iterator[Office]:
        return iter(self._offices.values())

    def __len__(self) -> int:
        return len(self._offices)


def _check_crossings(offices: Iterable[Office], by_code: dict[str, Office], *, source: str) -> None:
    """Both sides of a crossing must name each other: a one-sided pair is a typo that misroutes records."""
    for office in offices:
        if office.partner is None:
            continue
        partner = by_code.get(office.partner)
        if partner is None:
            raise ReferenceDataError(
                f"{source}: office {office.code} names partner {office.partner}, which is not in the directory"
            )
        if partner.partner != office.code:
            raise ReferenceDataError(
                f"{source}: office {office.code} names partner {partner.code}, "
                f"but {partner.code} names {partner.partner or 'no partner'}"
            )
