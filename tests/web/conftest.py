"""Fixtures for the tracking page: the tracking fixtures (a truck taken Almaty → Ashgabat on the in-process corridor)
and a small HTML reader, so tests look at the page's elements rather than at substrings."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

from tests.tracking.conftest import Travelled, customs, declarant, guarantee, papers, travel, travelled

__all__ = [
    "Element",
    "Page",
    "Travelled",
    "customs",
    "declarant",
    "guarantee",
    "papers",
    "parse",
    "travel",
    "travelled",
]

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def all_text(self) -> str:
        return " ".join(" ".join([self.text, *(child.all_text() for child in self.children)]).split())


@dataclass
class Page:
    elements: list[Element]

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Elements with `tag` whose attributes equal `attrs` (`class_` matches one class among several)."""
        found = []
        for element in self.elements:
            if tag is not None and element.tag != tag:
                continue
            wanted = dict(attrs)
            css = wanted.pop("class_", None)
            if css is not None and css not in element.classes:
                continue
            if all(element.attrs.get(name.replace("_", "-")) == value for name, value in wanted.items()):
                found.append(element)
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag=tag, attrs={name: value or "" for name, value in attrs})
        self.elements.append(element)
        if self.open:
            self.open[-1].children.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag=tag, attrs={name: value or "" for name, value in attrs})
        self.elements.append(element)
        if self.open:
            self.open[-1].children.append(element)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index].tag == tag:
                del self.open[index:]
                return

    def handle_data(self, data: str) -> None:
        if self.open:
            self.open[-1].text += data


def parse(html: str) -> Page:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return Page(reader.elements)
