"""The tracking page over HTTP, on the in-process corridor (both dialects): what a person holding a tracking code
sees, in English and Russian, what it never shows, and the headers that keep the page from running anything but
this node's own script."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import httpx
import orjson
from starlette.routing import Mount

from tests.support.inprocess import InProcessCorridor
from tests.web.conftest import Element, Page, Travelled, parse, travel
from transit_window import clock, spec
from transit_window.app import create_app
from transit_window.codes import OfficeDirectory
from transit_window.db.session import unit_of_work
from transit_window.seed import ROUTE as ALMATY_TO_BAKU
from transit_window.settings import Settings
from transit_window.tracking import events
from transit_window.tracking.models import TrackingEvent
from transit_window.tracking.public import display, local_iso, place_names, public_steps
from transit_window.tracking.schemas import Place, PublicStep, PublicTrack
from transit_window.web import routemap

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
ITINERARY = ["KZALA001", "KZZHZ001", "UZGIS001", "UZALT001", "TMFAR001", "TMASB001"]
BORDER_POSTS = {"KZZHZ001", "UZGIS001", "UZALT001", "TMFAR001"}
SHOWN_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC[+-]\d{2}:\d{2}$")  # the one format of every time
OFFICES = OfficeDirectory()
EVENT_HANDLERS = ("onload", "onclick", "onerror", "onmouseover", "onfocus", "onsubmit", "onchange", "oninput")


def assert_secure(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, f"{response.url}: {name} is {response.headers.get(name)!r}"


def assert_nothing_inline_or_foreign(page: Page) -> None:
    """The CSP allows only this node's files: no inline script or style, no event handler attribute, and every
    resource the page names is on this node (a relative URL)."""
    for script in page.find_all("script"):
        assert script.attrs.get("src", "").startswith("/track/static/"), script.attrs
        assert not script.text.strip(), "inline script"
    assert not page.find_all("style"), "inline <style>"
    for element in page.elements:
        assert "style" not in element.attrs, f"style attribute on <{element.tag}>"
        for name in element.attrs:
            assert not name.startswith("on"), f"event handler {name} on <{element.tag}>"
        for name in ("src", "href", "action"):
            url = element.attrs.get(name)
            if url is not None:
                assert url.startswith(("/", "?", "#")) and not url.startswith("//"), f"<{element.tag} {name}={url}>"
    assert all(handler not in " ".join(e.attrs) for e in page.elements for handler in EVENT_HANDLERS)


def timeline_rows(page: Page) -> list[Element]:
    return [child for child in page.one("ol", id="timeline").children if child.tag == "li"]


async def test_the_page_of_a_closed_journey_shows_its_timeline_route_and_border_posts(
    corridor: InProcessCorridor, travelled: Travelled
) -> None:
    """The truck went Almaty → Ashgabat: the page lists every step the API lists, draws every office of the route
    with the four border posts as posts, puts the truck where it was last (Ashgabat, not the write-off desk at
    Almaty), and shows no value, party or plate."""
    kz = corridor["KZ"].client
    response = await kz.get(f"/track/{travelled.tracking_code}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert_secure(response)
    page = parse(response.text)
    assert_nothing_inline_or_foreign(page)

    api = (await kz.get(f"/v1/track/{travelled.tracking_code}")).json()
    rows = timeline_rows(page)
    assert [(row.attrs["data-step"], row.attrs.get("data-office")) for row in rows] == [
        (step["step"], step["office"]) for step in api["timeline"]
    ]
    assert [row.children[1].text for row in rows] == [step["label"] for step in api["timeline"]]
    assert rows[0].children[1].text == "Released for transit" and "latest" in rows[-1].classes
    assert page.one(id="event-count").text == str(len(api["timeline"]))
    status = page.one(id="status")
    assert (status.text, status.attrs["data-status"]) == ("Closed", "closed")

    offices = {g.attrs["data-office"]: g for g in page.find_all("g", class_="office")}
    assert list(offices) == ITINERARY
    assert {code for code, g in offices.items() if "border-post" in g.classes} == BORDER_POSTS
    assert all("visited" in g.classes for g in offices.values())
    labels = {text.attrs["data-office"]: text.text for text in page.find_all("text", class_="office-label")}
    assert labels["KZZHZ001"] == "Zhibek Zholy" and labels["UZALT001"] == "Alat"
    names = {text.text for text in page.find_all("text", class_="country-name")}
    assert names == {"Kazakhstan", "Uzbekistan", "Turkmenistan"}
    crossings = [line for line in page.find_all("line", class_="leg") if "crossing" in line.classes]
    assert len(crossings) == 2  # Zhibek Zholy → Gishtkuprik and Alat → Farap
    assert page.one(id="truck").attrs["data-office"] == "TMASB001"
    assert page.one(id="position").text.strip() == "Ashgabat, Turkmenistan"
    # the two posts of one crossing share coordinates in the directory; they are drawn apart, inside the map
    svg = page.one("svg", id="map")
    width, height = (float(v) for v in svg.attrs["viewbox"].split()[2:])
    points = {code: (float(g.attrs["data-x"]), float(g.attrs["data-y"])) for code, g in offices.items()}
    assert points["KZZHZ001"] != points["UZGIS001"]
    assert all(0 < x < width and 0 < y < height for x, y in points.values())

    # every time in the office's local time (all of this route is on UTC+05:00), in one format, the clock too
    times = [time for time in page.find_all("time") if "datetime" in time.attrs]  # not the step template's
    assert len(times) == len(rows) + 1 and all(SHOWN_TIME.match(time.text) for time in times), times
    assert all(time.attrs["datetime"].endswith("+05:00") for time in times)
    assert [time.text for time in times[:-1]] == [display(step["time"]) for step in api["timeline"]]
    # closed: nothing will change, so neither the badge nor the polling
    assert "hidden" in page.one(id="live").attrs and page.one("body").attrs["data-polling"] == "off"
    assert orjson.loads(page.one("body").attrs["data-track"])["final"] is True and api["final"] is True

    for secret in ("230340000126", "23660", "Almaty Fruit Export", "123ABC02", "Ashgabat Bazaar"):
        assert secret not in response.text
    metrics = (await kz.get("/metrics")).text  # counted by route template, never by the code in the path
    assert 'route="/track/{code}"' in metrics and travelled.tracking_code not in metrics


async def test_the_api_and_the_page_agree_the_truck_is_where_it_arrived_not_at_the_write_off_desk(
    corridor: InProcessCorridor, travelled: Travelled
) -> None:
    """Issue 14: the apples arrived in Ashgabat and were written off at Almaty's desk; `GET /v1/track/{code}` said
    `current_place` Almaty (the write-off, the last event with an office) while the page said Ashgabat. Both take
    the latest step's place now, arrival included, desk steps (write-off, cancellation) left out."""
    kz = corridor["KZ"].client
    api = (await kz.get(f"/v1/track/{travelled.tracking_code}")).json()
    assert [step["step"] for step in api["timeline"]][-3:] == ["arrived", "control-results", "closed"]
    current = api["current_place"]
    assert (current["office"], current["name"], current["country"]) == ("TMASB001", "Ashgabat", "TM")
    page = parse((await kz.get(f"/track/{travelled.tracking_code}")).text)
    assert page.one(id="truck").attrs["data-office"] == current["office"]
    assert page.one(id="position").text.strip() == "Ashgabat, Turkmenistan"


async def test_russian_by_query_or_browser_language_with_a_switch(
    corridor: InProcessCorridor, travelled: Travelled
) -> None:
    """`?lang=ru` or a Russian browser gives the page in Russian; the switch links to the other language."""
    kz = corridor["KZ"].client
    url = f"/track/{travelled.tracking_code}"
    russian = await kz.get(url, params={"lang": "ru"})
    assert russian.status_code == 200
    page = parse(russian.text)
    assert page.one("html").attrs["lang"] == "ru"
    assert page.one(id="timeline-heading").text.strip() == "Хронология"
    assert page.one(id="status").text == "Завершено"
    assert [row.children[1].text for row in timeline_rows(page)][:2] == [
        "Выпущено для транзита",
        "Выезд из страны",
    ]
    assert {text.text for text in page.find_all("text", class_="country-name")} == {
        "Казахстан",
        "Узбекистан",
        "Туркменистан",
    }
    assert page.one("a", class_="language").attrs["href"] == "?lang=en"
    assert "vary" not in russian.headers  # chosen by the URL, not the browser

    browser = await kz.get(url, headers={"Accept-Language": "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7"})
    assert parse(browser.text).one("html").attrs["lang"] == "ru"
    assert browser.headers["vary"] == "Accept-Language" and browser.headers["content-language"] == "ru"
    kazakh = await kz.get(url, headers={"Accept-Language": "kk-KZ, de;q=0.9, en;q=0.5, ru;q=0.4"})
    assert parse(kazakh.text).one("html").attrs["lang"] == "en"
    english = parse((await kz.get(url, params={"lang": "en"}, headers={"Accept-Language": "ru"})).text)
    assert english.one("a", class_="language").attrs["href"] == "?lang=ru"
    assert english.one(id="status").text == "Closed"


async def test_the_code_form_redirects_and_an_unknown_or_rotated_code_gets_a_friendly_404(
    corridor: InProcessCorridor, travelled: Travelled, declarant: dict[str, dict[str, str]]
) -> None:
    kz = corridor["KZ"].client
    form = await kz.get("/track", follow_redirects=True)
    assert form.status_code == 200 and str(form.url).endswith("/track/")
    assert_secure(form)
    page = parse(form.text)
    assert_nothing_inline_or_foreign(page)
    assert page.one("form").attrs["action"] == "/track/" and page.one("input", name="code")

    going = await kz.get("/track/", params={"code": travelled.tracking_code, "lang": "ru"})
    assert going.status_code == 303
    assert going.headers["location"] == f"/track/{travelled.tracking_code}?lang=ru"

    typo = await kz.get("/track/", params={"code": "not a code!", "lang": "ru"})
    assert typo.status_code == 400
    assert "Код отслеживания — от 16 до 64" in parse(typo.text).one(id="code-error").text

    unknown = await kz.get("/track/" + "A" * 22)
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
    assert_secure(unknown)
    assert parse(unknown.text).one("h1").text == "Tracking code not found"
    assert (await kz.get("/track/nope/deeper")).status_code == 404
    assert parse((await kz.get("/track/static/missing.js")).text).one("h1").text == "Tracking code not found"

    rotated = await kz.post(f"/v1/consignments/{travelled.mrn}/tracking-code", headers=declarant["KZ"])
    assert rotated.status_code == 200, rotated.text
    old = await kz.get(f"/track/{travelled.tracking_code}", params={"lang": "ru"})
    assert old.status_code == 404 and parse(old.text).one("h1").text == "Код отслеживания не найден"
    assert (await kz.get(f"/track/{rotated.json()['tracking_code']}")).status_code == 200


async def test_the_script_and_styles_come_from_the_node_with_the_same_headers(corridor: InProcessCorridor) -> None:
    kz = corridor["KZ"].client
    for path, kind in (
        ("/track/static/track.js", "javascript"),
        ("/track/static/track.css", "text/css"),
        ("/track/static/favicon.svg", "image/svg+xml"),
    ):
        response = await kz.get(path)
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"]
        assert_secure(response)
    script = (await kz.get("/track/static/track.js")).text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, f"track.js uses {sink}: data must go in as text"
    assert "http" not in script.replace("http://www.w3.org/2000/svg", ""), "track.js names another site"


async def test_an_alert_on_the_road_says_what_where_and_how_far_but_never_its_position(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """A truck in Uzbekistan strays 68.5 km off its route — an event with coordinates and no office, signed by UZ,
    as the departure node holds it once the route shares it: the timeline's last row says "Route deviation", on
    the stretch from Gishtkuprik (the last office passed) to Alat, 68.5 km off the route, at its own time; the page
    draws no mark for it and the truck stays at the last office passed (issue 13: a raw position is for customs;
    a forged ping once moved the public truck into the desert). The movement is on the road, so the page polls."""
    moving = await travel(corridor, customs, until="entry-uz")
    kz = corridor["KZ"]
    before = parse((await kz.client.get(f"/track/{moving.tracking_code}")).text)
    assert before.one(id="truck").attrs["data-office"] == "UZGIS001" and not before.find_all("g", class_="alert-marker")
    strayed = clock.utcnow()
    async with unit_of_work(kz.node) as session:
        await events.record_event(
            session,
            mrn=moving.mrn,
            kind="alert",
            office=None,
            country="UZ",
            at=strayed.astimezone(timezone(timedelta(hours=5))),
            signed_by="UZ",
            envelope_id=None,
            record={},
            details={"rule": "route-deviation", "distance_km": 68.5, "corridor_km": 25, "device_id": "ESEAL-UZ-1"},
            lat=40.1,
            lon=65.4,
        )
    response = await kz.client.get(f"/track/{moving.tracking_code}")
    assert response.status_code == 200, response.text
    page = parse(response.text)
    rows = timeline_rows(page)
    last = rows[-1]
    assert (last.attrs["data-step"], last.attrs["data-rule"]) == (
        "alert",
        "route-deviation",
    ) and "alert" in last.classes
    assert last.children[1].text == "Route deviation"
    assert last.children[3].all_text() == "between Gishtkuprik and Alat Uzbekistan"  # the place, then the chip
    assert last.children[4].text == "68.5 km off the route"
    assert last.children[2].attrs["datetime"] == local_iso(strayed, "UZ") >= rows[-2].children[2].attrs["datetime"]
    assert not page.find_all("g", class_="alert-marker")
    assert page.one(id="truck").attrs["data-office"] == "UZGIS001"
    assert page.one(id="position").text.strip() == "Gishtkuprik, Uzbekistan"
    for private in ("40.1", "65.4", "ESEAL-UZ-1"):
        assert private not in response.text
    track = (await kz.client.get(f"/v1/track/{moving.tracking_code}")).json()
    current = track["current_place"]
    assert (current["office"], current["lat"], current["lon"]) == ("UZGIS001", 41.38, 69.12)  # the office's own
    alert = track["timeline"][-1]
    assert (alert["rule"], alert["distance_km"], alert["minutes"], alert["office"]) == (
        "route-deviation",
        68.5,
        None,
        None,
    )
    assert "ESEAL-UZ-1" not in orjson.dumps(track).decode()
    assert page.one(id="status").attrs["data-status"] == "in_transit" and track["final"] is False
    assert "hidden" not in page.one(id="live").attrs and page.one("body").attrs["data-polling"] == "on"

    russian = parse((await kz.client.get(f"/track/{moving.tracking_code}", params={"lang": "ru"})).text)
    last = timeline_rows(russian)[-1]
    assert last.children[1].text == "Отклонение от маршрута"
    assert last.children[3].children[0].text == "на участке Гишткуприк — Алат"
    assert last.children[4].text == "68,5 км от маршрута"


def test_the_pages_are_mounted_but_not_in_the_api_document() -> None:
    """The HTML pages are a mounted sub-app: served by the node, absent from the OpenAPI document partners read."""
    app = create_app(Settings(), background=False)
    mounts = sorted(route.path for route in app.routes if isinstance(route, Mount))
    assert mounts == ["/docs/static", "/track"]  # and the assets of /docs and /redoc (tests/api/test_docs_offline.py)
    document = orjson.loads(spec.openapi_document())
    assert not [path for path in document["paths"] if path.startswith("/track")]
    assert "/v1/track/{code}" in document["paths"]


async def test_the_nodes_address_opens_a_landing_page_with_its_links(corridor: InProcessCorridor) -> None:
    """`GET /` was a 404 problem: a person opening the node's address now learns what it is and where to go."""
    response = await corridor["KZ"].client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), response.text
    assert_secure(response)
    page = parse(response.text)
    assert_nothing_inline_or_foreign(page)
    assert "node KZ — Kazakhstan" in page.one("h1").all_text()
    links = {element.attrs["href"] for element in page.find_all("a")}
    assert {"/track/", "/docs", "/redoc", "/openapi.json", "/v1/corridor/trust-list"} <= links
    for href in sorted(links):  # every link leads somewhere (readiness is 503 here: the test runs no background work)
        assert (await corridor["KZ"].client.get(href)).status_code in ((200, 503) if href == "/readyz" else (200,))


def test_a_name_two_places_on_the_page_share_gets_its_country_in_either_language() -> None:
    """Almaty → Baku passes the Uzbek Alat (at the Farap crossing) and ends through Azerbaijan's port of Alat: both
    names carry their country, the other places only their name, in Cyrillic in Russian. Without the port the
    Uzbek Alat is just Alat."""
    english = place_names(ALMATY_TO_BAKU, OFFICES, lang="en")
    assert (english["UZALT001"], english["AZALA001"]) == ("Alat (Uzbekistan)", "Alat port (Azerbaijan)")
    assert (english["KZALA001"], english["KZZHZ001"], english["AZBAK001"]) == ("Almaty", "Zhibek Zholy", "Baku")
    russian = place_names(ALMATY_TO_BAKU, OFFICES, lang="ru")
    assert (russian["UZALT001"], russian["AZALA001"]) == ("Алат (Узбекистан)", "порт Алят (Азербайджан)")
    assert [russian[code] for code in ("KZALA001", "KZZHZ001", "TMFAR001", "AZBAK001")] == [
        "Алматы",
        "Жибек Жолы",
        "Фарап",
        "Баку",
    ]
    assert place_names(["KZALA001", "UZALT001", "TMFAR001"], OFFICES, lang="en")["UZALT001"] == "Alat"


def _event(kind: str, at: datetime, *, office: str | None, country: str, **details: object) -> TrackingEvent:
    return TrackingEvent(
        id=f"{kind}-{at.isoformat()}", kind=kind, event_time=at, office=office, country=country, details=details
    )


def test_each_alert_says_its_rule_where_and_how_much_at_the_local_time_of_its_place() -> None:
    """What the public view makes of each rule's alert on the way from Almaty to Baku, from the details the rules
    write (tracking/seal_rules.py, crossing_checks.check_overdue): the rule's name, the stretch of the route (never the
    position), the measure in words and as a number; the time in the zone of the place (Baku is UTC+04:00). A
    peer's details that are not numbers give no measure rather than their text."""
    start = (clock.utcnow() - timedelta(days=2)).replace(hour=4, minute=0, second=0, microsecond=0)
    hour = timedelta(hours=1)
    timeline = [
        _event("released", start, office="KZALA001", country="KZ"),
        _event("alert", start + hour, office=None, country="KZ", rule="route-deviation", distance_km=68.46),
        _event("exit", start + 2 * hour, office="KZZHZ001", country="KZ"),
        _event("entry", start + 3 * hour, office="UZGIS001", country="UZ"),
        _event("alert", start + 5 * hour, office=None, country="KZ", rule="long-stop", minutes=95, since="x"),
        _event(
            "alert",
            start + 9 * hour,
            office=None,
            country="KZ",
            rule="overdue-crossing",
            last_office="UZGIS001",
            next_office="UZALT001",
            distance_km=512.3,
            expected_by=clock.isoformat(start + 8 * hour),
        ),
        _event("entry", start + 30 * hour, office="AZALA001", country="AZ"),
        _event("seal-opened", start + 31 * hour, office=None, country="KZ", rule="seal-opened", seal_state="tampered"),
        _event("alert", start + 32 * hour, office=None, country="KZ", rule="route-deviation", distance_km="far"),
    ]
    names = place_names(ALMATY_TO_BAKU, OFFICES, lang="en")
    steps = public_steps(timeline, itinerary=ALMATY_TO_BAKU, offices=OFFICES, names=names, lang="en").steps
    shown = [(step.label, step.place, step.detail, step.distance_km, step.minutes) for step in steps if step.alert]
    due = display(local_iso(start + 8 * hour, "UZ"))
    assert shown == [
        ("Route deviation", "between Almaty and Zhibek Zholy", "68.5 km off the route", 68.46, None),
        ("Long stop", "between Gishtkuprik and Alat (Uzbekistan)", "stopped for 1 h 35 min", None, 95),
        (
            "Border crossing overdue",
            "between Gishtkuprik and Alat (Uzbekistan)",
            f"due at Alat (Uzbekistan) by {due}, 512.3 km from Gishtkuprik",
            512.3,
            None,
        ),
        (
            "Seal opened",
            "between Alat port (Azerbaijan) and Baku",
            "tampered with, away from a customs office",
            None,
            None,
        ),
        ("Route deviation", "between Alat port (Azerbaijan) and Baku", None, None, None),
    ]
    assert [step.rule for step in steps if step.alert] == [
        "route-deviation",
        "long-stop",
        "overdue-crossing",
        "seal-opened",
        "route-deviation",
    ]
    assert [step.time[-6:] for step in steps] == ["+05:00"] * 6 + ["+04:00"] * 3  # KZ, UZ; then in Azerbaijan
    assert steps[1].time == local_iso(start + hour, "KZ") and all(SHOWN_TIME.match(display(s.time)) for s in steps)

    russian = public_steps(
        timeline,
        itinerary=ALMATY_TO_BAKU,
        offices=OFFICES,
        names=place_names(ALMATY_TO_BAKU, OFFICES, lang="ru"),
        lang="ru",
    ).steps
    assert [(step.label, step.place, step.detail) for step in russian if step.alert][:2] == [
        ("Отклонение от маршрута", "на участке Алматы — Жибек Жолы", "68,5 км от маршрута"),
        ("Длительная стоянка", "на участке Гишткуприк — Алат (Узбекистан)", "стоянка 1 ч 35 мин"),
    ]


def test_times_read_one_way_in_the_zone_of_the_place() -> None:
    """RFC 3339 to the minute in the office's country zone (Kabul is UTC+04:30, Bishkek +06:00), read as
    '2026-05-01 14:03 UTC+05:00' everywhere on the page."""
    moment = datetime(2026, 5, 1, 9, 3, 30, tzinfo=UTC)
    assert [local_iso(moment, country) for country in ("KZ", "KG", "AZ", "AF")] == [
        "2026-05-01T14:03+05:00",
        "2026-05-01T15:03+06:00",
        "2026-05-01T13:03+04:00",
        "2026-05-01T13:33+04:30",
    ]
    assert display("2026-05-01T14:03+05:00") == "2026-05-01 14:03 UTC+05:00"
    assert events.offset_text("AF", moment) == "+04:30"


def test_map_labels_stay_inside_the_map_and_are_larger_on_a_phone() -> None:
    """Almaty → Baku in Russian, the widest names: at both sizes every label (АЗЕРБАЙДЖАН too) keeps its distance
    from the map's border, office labels do not cover one another, and the phone's are set larger."""
    names = place_names(ALMATY_TO_BAKU, OFFICES, lang="ru")
    route = [
        Place(
            office=code,
            name=names[code],
            country=code[:2],
            lat=OFFICES.require(code).lat,
            lon=OFFICES.require(code).lon,
        )
        for code in ALMATY_TO_BAKU
    ]
    track = PublicTrack(
        mrn="26KZALA000000001J5",
        status="in_transit",
        final=False,
        countries=["KZ", "UZ", "TM", "AZ"],
        route=route,
        current_place=route[3],
        timeline=[
            PublicStep(step="exit", label="-", office="UZALT001", place=names["UZALT001"], country="UZ", time="-")
        ],
        as_of="-",
    )
    countries = {"KZ": "Казахстан", "UZ": "Узбекистан", "TM": "Туркменистан", "AZ": "Азербайджан"}
    built = routemap.build(track, OFFICES, country_names=countries, alerts=[], truck_title="-")
    wide, narrow = built.layouts
    assert (wide.name, narrow.name) == ("wide", "narrow") and narrow.font > wide.font
    assert {code for code, _ in wide.offices} == set(ALMATY_TO_BAKU)  # on a wide map every office is named
    assert {"KZALA001", "AZBAK001", "UZALT001"} <= {code for code, _ in narrow.offices}  # the ends and the truck's
    assert dict(wide.offices)["UZALT001"].text == "Алат (Узбекистан)"
    for layout in (wide, narrow):
        boxes = [routemap._text_box(label, layout.font) for _, label in layout.offices]
        boxes += [routemap._text_box(label, routemap.COUNTRY_FONT, capitals=True) for _, label in layout.countries]
        for left, top, right, bottom in boxes:
            assert left >= routemap.EDGE and top >= routemap.EDGE, (layout.name, left, top)
            assert right <= built.width - routemap.EDGE and bottom <= built.height - routemap.EDGE
        offices = boxes[: len(layout.offices)]
        assert not any(routemap._overlap(a, b) for i, a in enumerate(offices) for b in offices[i + 1 :]), layout.name
