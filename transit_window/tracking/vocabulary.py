"""One mapping table from corridor steps to the vocabularies logistics systems speak: GS1 CBV 2.0 bizStep and
disposition, DCSA Track & Trace event codes, UN/ECE Recommendation 24 transport status codes; and the words the
public view shows for steps, alert rules and countries, in English and Russian."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vocabulary:
    biz_step: str
    disposition: str
    dcsa: str | None
    rec24: str | None
    label_en: str
    label_ru: str


CBV = "urn:epcglobal:cbv"

STEPS: dict[str, Vocabulary] = {
    "released": Vocabulary("departing", "in_transit", "CUSR", "12", "Released for transit", "Выпущено для транзита"),
    "exit": Vocabulary("entering_exiting", "in_transit", "CROS", "16", "Exited the country", "Выезд из страны"),
    "entry": Vocabulary("entering_exiting", "in_transit", "CROS", "16", "Entered the country", "Въезд в страну"),
    "arrived": Vocabulary(
        "receiving", "in_progress", "DISC", "39", "Arrived at destination", "Прибыл в пункт назначения"
    ),
    "control-results": Vocabulary("inspecting", "in_progress", "INSP", "21", "Control results", "Результаты контроля"),
    "closed": Vocabulary("receiving", "in_progress", None, "21", "Transit closed", "Транзит завершён"),
    "cancelled": Vocabulary("holding", "non_conformant", None, "17", "Cancelled", "Аннулировано"),
    "alert": Vocabulary("sensor_reporting", "non_conformant", None, "20", "Alert", "Тревога"),
    "seal-opened": Vocabulary("sensor_reporting", "container_open", "DRO", None, "Seal opened", "Пломба вскрыта"),
}


# What each alert rule is called on the public timeline (`tracking.alerts.RULES`).
ALERT_RULES: dict[str, tuple[str, str]] = {
    "route-deviation": ("Route deviation", "Отклонение от маршрута"),
    "long-stop": ("Long stop", "Длительная стоянка"),
    "seal-opened": ("Seal opened", "Пломба вскрыта"),
    "overdue-crossing": ("Border crossing overdue", "Пересечение границы задерживается"),
    "unrecorded-crossings": ("Border crossings not recorded", "Пересечения границ не зарегистрированы"),
}

# Countries by the names the public view uses, in English and Russian (Кыргызстан, as the country calls itself).
COUNTRY_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "KZ": "Kazakhstan",
        "KG": "Kyrgyzstan",
        "UZ": "Uzbekistan",
        "TJ": "Tajikistan",
        "TM": "Turkmenistan",
        "AZ": "Azerbaijan",
        "CN": "China",
        "RU": "Russia",
        "GE": "Georgia",
        "TR": "Türkiye",
        "IR": "Iran",
        "AF": "Afghanistan",
    },
    "ru": {
        "KZ": "Казахстан",
        "KG": "Кыргызстан",
        "UZ": "Узбекистан",
        "TJ": "Таджикистан",
        "TM": "Туркменистан",
        "AZ": "Азербайджан",
        "CN": "Китай",
        "RU": "Россия",
        "GE": "Грузия",
        "TR": "Турция",
        "IR": "Иран",
        "AF": "Афганистан",
    },
}


def of(kind: str) -> Vocabulary:
    return STEPS.get(kind, STEPS["alert"])


def biz_step_uri(biz_step: str) -> str:
    return f"{CBV}:bizstep:{biz_step}"


def disposition_uri(disposition: str) -> str:
    return f"{CBV}:disp:{disposition}"
