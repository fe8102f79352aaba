"""The code lists a node works with: the bundled ones with the operator's files (TW_OFFICES_FILE, TW_HS_FILE,
TW_PERMIT_RULES_FILE) laid over or instead of them, loaded once per file. Every feature asks here, so they all see
the same directory."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol

from transit_window.codes.hs import HsNomenclature
from transit_window.codes.offices import OfficeDirectory
from transit_window.codes.permit_rules import PermitRules, permit_rules


class _CodeFiles(Protocol):
    @property
    def offices_file(self) -> Path | None: ...

    @property
    def hs_file(self) -> Path | None: ...

    @property
    def permit_rules_file(self) -> Path | None: ...


class Node(Protocol):
    """What the code lists need of a node: its settings' file paths. A protocol, so `codes` imports no node."""

    @property
    def settings(self) -> _CodeFiles: ...


@lru_cache(maxsize=4)
def office_directory(operator_file: str | None = None) -> OfficeDirectory:
    return OfficeDirectory(operator_file=operator_file)


@lru_cache(maxsize=4)
def hs_nomenclature(operator_file: str | None = None) -> HsNomenclature:
    return HsNomenclature(operator_file=operator_file)


def offices_of(node: Node) -> OfficeDirectory:
    path = node.settings.offices_file
    return office_directory(str(path) if path else None)


def hs_of(node: Node) -> HsNomenclature:
    path = node.settings.hs_file
    return hs_nomenclature(str(path) if path else None)


def rules_of(node: Node) -> PermitRules:
    """The permit and destination-certificate rules: the operator's file when set (it replaces the bundled one)."""
    path = node.settings.permit_rules_file
    return permit_rules(str(path) if path else None)
