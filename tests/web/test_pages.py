"""The tracking page over HTTP, on the in-process corridor (both dialects): what a person holding a tracking code
sees, in English and Russian, what it never shows, and the headers that keep the page from running anything but
this node's own script."""

from __future__ import annotations

from datetime import timedelta, timezone

import httpx
import orjson
from starlette.routing import Mount

from tests.support.inprocess import InProcessCorridor
from tests.web.conftest import Element, Page, Travelled, parse, travel
from transit_window import clock, spec
from transit_window.app import create_app
from transit_window.db.session import unit_of_work
from transit_window.settings import Settings
from transit_window.tracking import events

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


async def test_an_alert_on_the_road_is_listed_but_its_position_is_never_shown(
    corridor: InProcessCorridor, customs: dict[str, dict[str, str]], guarantee: str
) -> None:
    """A truck in Uzbekistan raises an alert off the road — an event with coordinates and no office, signed by UZ,
    as the departure node holds it once the route shares it: the timeline's last row is an alert, but the page
    draws no mark for it and the truck stays at the last office passed (issue 13: a raw position is for customs;
    a forged ping once moved the public truck into the desert)."""
    moving = await travel(corridor, customs, until="entry-uz")
    kz = corridor["KZ"]
    before = parse((await kz.client.get(f"/track/{moving.tracking_code}")).text)
    assert before.one(id="truck").attrs["data-office"] == "UZGIS001" and not before.find_all("g", class_="alert-marker")
    async with unit_of_work(kz.node) as session:
        await events.record_event(
            session,
            mrn=moving.mrn,
            kind="alert",
            office=None,
            country="UZ",
            at=clock.utcnow().astimezone(timezone(timedelta(hours=5))),
            signed_by="UZ",
            envelope_id=None,
            record={},
            details={"rule": "route-deviation"},
            lat=40.1,
            lon=65.4,
        )
    response = await kz.client.get(f"/track/{moving.tracking_code}")
    assert response.status_code == 200, response.text
    page = parse(response.text)
    rows = timeline_rows(page)
    assert rows[-1].attrs["data-step"] == "alert" and "alert" in rows[-1].classes
    assert rows[-1].children[1].text == "Alert"
    assert not page.find_all("g", class_="alert-marker")
    assert page.one(id="truck").attrs["data-office"] == "UZGIS001"
    assert page.one(id="position").text.strip() == "Gishtkuprik, Uzbekistan"
    assert "40.1" not in response.text and "65.4" not in response.text
    track = (await kz.client.get(f"/v1/track/{moving.tracking_code}")).json()
    current = track["current_place"]
    assert (current["office"], current["lat"], current["lon"]) == ("UZGIS001", 41.38, 69.12)  # the office's own
    assert page.one(id="status").attrs["data-status"] == "in_transit"


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
