"""Field types the request bodies of several features share: bounded printable texts, a country code, a trader.

A low-level module (like `text.py`): features import it, so a certificate's consignor and a declaration's are the same
type without documents importing declarations.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from transit_window.text import Printable

Text35 = Annotated[str, StringConstraints(min_length=1, max_length=35, strip_whitespace=True), Printable]
Text70 = Annotated[str, StringConstraints(min_length=1, max_length=70, strip_whitespace=True), Printable]
Text512 = Annotated[str, StringConstraints(min_length=1, max_length=512, strip_whitespace=True), Printable]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class Party(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Text35 = Field(description="Trader id: Kazakh BIN/IIN, Azerbaijani VÖEN, Uzbek STIR, Kyrgyz or Tajik INN.")
    name: Text70
    country: Country
