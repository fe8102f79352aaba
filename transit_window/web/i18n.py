"""The tracking page's words in English and Russian, and which of the two a visitor gets.

`?lang=ru` wins; otherwise the best of `en`/`ru` in the browser's Accept-Language; otherwise English. Step labels,
alert rules and country names come from the one vocabulary table (transit_window/tracking/vocabulary.py), which the
public JSON view uses too, not from here.
"""

# ruff: noqa: RUF001 - Russian text: Cyrillic letters that look Latin are meant
from __future__ import annotations

from typing import Final

from transit_window.tracking import vocabulary

LANGUAGES: Final = {"en": "English", "ru": "Русский"}
DEFAULT = "en"

WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "corridor": "Digital Transit Corridor",
        "title": "Cargo tracking",
        "intro": "Follow a consignment across Kazakhstan, Kyrgyzstan, Uzbekistan, Tajikistan, Turkmenistan and "
        "Azerbaijan: every customs step, signed by the country that recorded it.",
        "enter_code": "Tracking code",
        "code_hint": "The declarant received the code when the goods were released for transit.",
        "track": "Track",
        "bad_code": "A tracking code is 16 to 64 letters, digits, '-' or '_'. Check it and try again.",
        "consignment": "Consignment",
        "status": "Status",
        "countries": "Countries",
        "last_position": "Last known position",
        "unknown_position": "not reported yet",
        "map": "Route map",
        "map_desc": "The route through the customs offices, border posts, the truck's last position and alerts.",
        "timeline": "Timeline",
        "no_events": "No events yet.",
        "legend_office": "Customs office",
        "legend_border": "Border post",
        "legend_truck": "Last position",
        "legend_alert": "Alert",
        "live": "Updates automatically",
        "offline": "Connection lost, retrying…",
        "updated": "Updated",
        "not_found_title": "Tracking code not found",
        "not_found_text": "No consignment has this tracking code. The code may be mistyped, or the declarant may "
        "have replaced it with a new one.",
        "another": "Track another consignment",
        "language": "Language",
        "privacy": "Shown to anyone holding the code: no goods values, parties or personal data.",
    },
    "ru": {
        "corridor": "Цифровой транзитный коридор",
        "title": "Отслеживание груза",
        "intro": "Следите за грузом через Казахстан, Кыргызстан, Узбекистан, Таджикистан, Туркменистан и "
        "Азербайджан: каждый таможенный шаг подписан страной, которая его зарегистрировала.",
        "enter_code": "Код отслеживания",
        "code_hint": "Декларант получил код при выпуске товаров для транзита.",
        "track": "Отследить",
        "bad_code": "Код отслеживания — от 16 до 64 латинских букв, цифр, «-» или «_». Проверьте его и попробуйте "
        "ещё раз.",
        "consignment": "Груз",
        "status": "Статус",
        "countries": "Страны",
        "last_position": "Последнее известное местоположение",
        "unknown_position": "пока нет данных",
        "map": "Карта маршрута",
        "map_desc": "Маршрут через таможенные посты и пограничные переходы, последнее местоположение и тревоги.",
        "timeline": "Хронология",
        "no_events": "Событий пока нет.",
        "legend_office": "Таможенный пост",
        "legend_border": "Пограничный пост",
        "legend_truck": "Последнее местоположение",
        "legend_alert": "Тревога",
        "live": "Обновляется автоматически",
        "offline": "Нет связи, повторяем…",
        "updated": "Обновлено",
        "not_found_title": "Код отслеживания не найден",
        "not_found_text": "Груза с таким кодом нет. Возможно, код введён с ошибкой или декларант заменил его на новый.",
        "another": "Отследить другой груз",
        "language": "Язык",
        "privacy": "Видно всем, у кого есть код: без стоимости товаров, участников и персональных данных.",
    },
}

STATUSES: Final[dict[str, dict[str, str]]] = {
    "en": {
        "accepted": "Accepted",
        "released": "Released",
        "in_transit": "In transit",
        "arrived": "Arrived",
        "closed": "Closed",
        "cancelled": "Cancelled",
    },
    "ru": {
        "accepted": "Принята",
        "released": "Выпущено",
        "in_transit": "В пути",
        "arrived": "Прибыл",
        "closed": "Завершено",
        "cancelled": "Аннулировано",
    },
}

COUNTRIES: Final = vocabulary.COUNTRY_NAMES  # one table: the public view names countries in its text too


def choose(query: str | None, accept_language: str | None) -> tuple[str, bool]:
    """The page's language, and whether it came from Accept-Language (the response then varies on it)."""
    if query in LANGUAGES:
        return query, False
    best, best_q = DEFAULT, 0.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        quality -= position * 1e-6  # equal weights: the first listed wins
        if quality > best_q:
            best, best_q = primary, quality
    return best, True


def country(code: str, lang: str) -> str:
    return COUNTRIES[lang].get(code, code)


def status(code: str, lang: str) -> str:
    return STATUSES[lang].get(code, code.replace("_", " "))
