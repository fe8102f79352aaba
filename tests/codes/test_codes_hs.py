"""HS-6 goods codes: what a declaration may carry and which certificates the goods need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transit_window.codes import (
    HsNomenclature,
    InvalidCode,
    ReferenceDataError,
    bundled_nomenclature,
    chapter,
    is_sensitive,
    load_hs_file,
    required_certificates,
    validate_hs6,
)

CORRIDOR_GOODS = [
    "080810",
    "081310",
    "100199",
    "520100",
    "020130",
    "040690",
    "220830",
    "240412",
    "640399",
    "851713",
    "740311",
    "760110",
    "720839",
    "310230",
]


@pytest.mark.parametrize("code", CORRIDOR_GOODS)
def test_every_code_of_the_corridor_list_is_accepted_and_described(code: str) -> None:
    assert validate_hs6(code) is None
    entry = bundled_nomenclature().get(code)
    assert entry is not None
    assert entry.description


def test_all_97_chapters_have_a_name() -> None:
    nomenclature = bundled_nomenclature()
    names = [nomenclature.chapter_name(f"{number:02d}") for number in range(1, 98)]
    assert all(names)
    assert nomenclature.chapter_name("52") == "Cotton"
    with pytest.raises(InvalidCode, match="chapters are 01 to 97"):
        nomenclature.chapter_name("98")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("", "HS code is empty"),
        ("0808.10", "without dots or spaces: 080810"),
        ("0808 10", "without dots or spaces: 080810"),
        ("08081O", "digits only"),
        ("0808", "has 4 digits, expected 6"),
        ("0808100000", "give the first six (080810)"),
        ("980000", "chapter 98 does not exist"),
        ("000000", "chapter 00 does not exist"),
        ("770000", "chapter 77 is reserved"),
        ("080820", "HS code 080820 (chapter 08, Edible fruit and nuts"),
    ],
)
def test_codes_are_refused_with_a_reason_a_clerk_can_act_on(code: str, reason: str) -> None:
    refusal = validate_hs6(code)
    assert refusal is not None
    assert reason in refusal


def test_chapter_is_the_first_two_digits_of_a_well_formed_code() -> None:
    assert chapter("080810") == "08"
    with pytest.raises(InvalidCode, match="has 4 digits"):
        chapter("0808")


@pytest.mark.parametrize(
    ("code", "certificates"),
    [
        ("020130", ("veterinary",)),  # chapter 02: animal products
        ("040690", ("veterinary",)),
        ("050100", ("veterinary",)),  # last animal chapter, even for a code not in the list
        ("060110", ("phytosanitary",)),  # first plant chapter
        ("080810", ("phytosanitary",)),
        ("100199", ("phytosanitary",)),
        ("140490", ("phytosanitary",)),  # last plant chapter
        ("520100", ("phytosanitary",)),  # raw cotton: chapter 52, a per-code certificate
        ("150790", ()),  # chapter 15 follows the plant chapters and has no rule
        ("220830", ()),
        ("851713", ()),
    ],
)
def test_required_certificates_follow_the_chapter_rules_and_per_code_entries(
    code: str, certificates: tuple[str, ...]
) -> None:
    assert required_certificates(code) == certificates


def test_required_certificates_refuses_a_malformed_code() -> None:
    with pytest.raises(InvalidCode, match="chapter 77 is reserved"):
        required_certificates("770000")


def test_sensitive_goods_are_flagged() -> None:
    assert {code for code in CORRIDOR_GOODS if is_sensitive(code)} == {"220830", "240412", "640399", "851713"}
    assert not is_sensitive("999999")


def test_an_operator_file_extends_and_overrides_the_code_list(tmp_path: Path) -> None:
    extra = tmp_path / "hs-extra.json"
    extra.write_text(
        json.dumps(
            {
                "codes": [
                    {"code": "080820", "description": "Pears, fresh"},
                    {"code": "080810", "description": "Apples, fresh (operator wording)", "sensitive": True},
                ]
            }
        ),
        encoding="utf-8",
    )
    nomenclature = HsNomenclature(operator_file=extra)
    assert validate_hs6("080820", nomenclature) is None
    assert required_certificates("080820", nomenclature) == ("phytosanitary",)
    assert is_sensitive("080810", nomenclature)
    assert validate_hs6("080820") is not None  # the bundled list alone still refuses it


def test_a_bad_operator_hs_file_names_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "hs-bad.json"
    bad.write_text(json.dumps({"codes": [{"code": "0808.20", "description": "Pears"}]}), encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=r"codes\[0\] \(code '0808.20'\), field 'code'"):
        load_hs_file(bad)

    reserved = tmp_path / "hs-reserved.json"
    reserved.write_text(json.dumps({"codes": [{"code": "770100", "description": "?"}]}), encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="code 770100: chapter 77 is reserved"):
        HsNomenclature(operator_file=reserved)

    chapters = tmp_path / "hs-chapters.json"
    chapters.write_text(json.dumps({"codes": [], "chapters": []}), encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="field 'chapters'"):
        load_hs_file(chapters)
