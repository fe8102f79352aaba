"""Reference data and validators of the corridor: countries, currencies, customs offices, HS goods codes and
the identifiers on a transit record (MRN, GRN, containers, trader ids, plates).

Pure functions and bundled data only: nothing here touches a database, the network or the clock, so any layer
may import it. Validators return None or a reason a clerk can act on; producers raise `InvalidCode`.
"""

from __future__ import annotations

from transit_window.codes._errors import InvalidCode, ReferenceDataError
from transit_window.codes.countries import (
    CORRIDOR_COUNTRIES,
    NATIONAL_CURRENCIES,
    NEIGHBOUR_COUNTRIES,
    TIME_ZONES,
    amount_text,
    country_name,
    currency_exponent,
    decimals_beyond,
    is_corridor_country,
    is_country,
    is_currency,
    national_currency,
    time_zone,
)
from transit_window.codes.hs import (
    Certificate,
    HsChapter,
    HsCode,
    HsNomenclature,
    bundled_nomenclature,
    chapter,
    is_sensitive,
    load_hs_file,
    required_certificates,
    validate_hs6,
)
from transit_window.codes.identifiers import (
    MRN_LENGTH,
    TRANSIT_PROCEDURES,
    bin_iin_check_digit,
    generate_mrn,
    is_valid_container,
    is_valid_grn,
    is_valid_mrn,
    mrn_check_digit,
    normalise_plate,
    plate_warnings,
    validate_bin_iin,
    validate_container,
    validate_grn,
    validate_mrn,
    validate_trader_id,
)
from transit_window.codes.offices import Office, OfficeDirectory, OfficeRole, TransportMode, load_office_file

__all__ = [
    "CORRIDOR_COUNTRIES",
    "MRN_LENGTH",
    "NATIONAL_CURRENCIES",
    "NEIGHBOUR_COUNTRIES",
    "TIME_ZONES",
    "TRANSIT_PROCEDURES",
    "Certificate",
    "HsChapter",
    "HsCode",
    "HsNomenclature",
    "InvalidCode",
    "Office",
    "OfficeDirectory",
    "OfficeRole",
    "ReferenceDataError",
    "TransportMode",
    "amount_text",
    "bin_iin_check_digit",
    "bundled_nomenclature",
    "chapter",
    "country_name",
    "currency_exponent",
    "decimals_beyond",
    "generate_mrn",
    "is_corridor_country",
    "is_country",
    "is_currency",
    "is_sensitive",
    "is_valid_container",
    "is_valid_grn",
    "is_valid_mrn",
    "load_hs_file",
    "load_office_file",
    "mrn_check_digit",
    "national_currency",
    "normalise_plate",
    "plate_warnings",
    "required_certificates",
    "time_zone",
    "validate_bin_iin",
    "validate_container",
    "validate_grn",
    "validate_hs6",
    "validate_mrn",
    "validate_trader_id",
]
