"""README's tour stays something a newcomer can paste: no date that goes stale, no placeholder to fill in, no variable
it does not define itself, and only request bodies that exist. The tour itself runs, exactly as written, against a
demo in `tests/security/test_log_scan.py` (one demo run serves both: the suite's twelve minutes are tight)."""

from __future__ import annotations

import re

import pytest

from tests.support.readme import REPO, tour_blocks, tour_script

# Dates written out: 2026-12-04, 2026-12-04T10:00, 04.12.2026, 12/04/2026, and a year (2026, UZ-KZ-2026-2-1).
LITERAL_DATES = [
    re.compile(r"(?<!\d)(?:19|20)\d\d-[01]\d-[0-3]\d"),
    re.compile(r"(?<!\d)[0-3]?\d[./][01]?\d[./](?:19|20)\d\d(?!\d)"),
    re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)"),
]
# Something for the reader to replace: an ellipsis (either kind), <angle brackets>, TODO.
PLACEHOLDERS = [re.compile(r"…"), re.compile(r"\.\.\."), re.compile(r"<[A-Za-z_ -]+>"), re.compile(r"\bTODO\b")]
ASSIGNED = re.compile(r"(?:^|[;\s(])([A-Z][A-Z0-9_]*)=")
USED = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)(:-)?")


def test_the_tour_has_its_blocks() -> None:
    blocks = tour_blocks()
    assert len(blocks) >= 6, "README's tour lost its shell blocks (```sh)"
    assert all(block.strip() for block in blocks)


@pytest.mark.parametrize("pattern", LITERAL_DATES, ids=["iso", "dotted-or-slashed", "year"])
def test_the_tour_computes_every_date(pattern: re.Pattern[str]) -> None:
    """A date written into the tour goes stale within days (a limit date in the past, a permit for last year)."""
    assert not pattern.findall(tour_script()), "compute it: $(date -u +%F), $(TZ=Asia/Almaty date +%Y), ..."


@pytest.mark.parametrize("pattern", PLACEHOLDERS, ids=["ellipsis", "dots", "angle-brackets", "todo"])
def test_the_tour_has_no_placeholder(pattern: re.Pattern[str]) -> None:
    lines = [line for line in tour_script().splitlines() if pattern.search(line)]
    assert not lines, "take the value from an earlier answer or from corridor.json instead:\n" + "\n".join(lines)


def test_every_variable_the_tour_uses_it_defines_first() -> None:
    """`bash -u` would stop at an undefined one too; this names it without a demo. A variable the environment may
    give (`${CORRIDOR:-...}`, `${TMPDIR:-/tmp}`) needs its default there."""
    defined: set[str] = set()
    undefined: list[str] = []
    for number, line in enumerate(tour_script().splitlines(), start=1):
        code = line.split("  #", 1)[0]
        for name, has_default in USED.findall(code):
            if name not in defined and not has_default:
                undefined.append(f"line {number}: ${name}")
        defined |= set(ASSIGNED.findall(code))
    assert not undefined, "used before the tour defines it: " + ", ".join(undefined)


def test_every_file_the_tour_sends_is_in_the_repository() -> None:
    files = re.findall(r"@([\w./-]+\.\w+)", tour_script())
    assert files, "the tour sends no request body from a file"
    for name in files:
        assert name.startswith("openapi/examples/"), f"{name}: request bodies live in openapi/examples/"
        assert (REPO / name).is_file(), f"README's tour sends {name}, which does not exist"


def test_every_module_the_where_does_x_live_table_names_exists() -> None:
    """README's map for a newcomer goes stale silently when a module moves: each path it names must exist, and each
    `name` in parentheses after a path must be defined in it."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("### Where does X live") :]
    table = table[table.index("|") :].split("\n\n")[0]
    package = REPO / "transit_window"
    named = re.findall(r"`([a-z_]+(?:/[a-z_]+)*\.py)`((?: \([^)]*\))?)", table)
    assert len(named) >= 20, named
    for path, names in named:
        source = package / path
        assert source.exists(), f"README's table names {path}, which does not exist"
        for name in re.findall(r"`([A-Za-z_]+)`", names):
            assert re.search(rf"^(?:async def|def|class) {name}\b|^{name} = ", source.read_text(), re.M), (path, name)
