# ruff: noqa: RUF001 - Russian text: Cyrillic letters that look Latin are meant
"""The tracking page in a real browser: Debian's headless Chromium (driven by Playwright, which downloads nothing)
against two real node processes, Kazakhstan and Uzbekistan, on SQLite, talking over HTTP on loopback.

Skipped locally when /usr/bin/chromium is missing; under CI (CI=true, `.ci/run`) a missing browser is a failure —
`make test` and `.ci/run` install it.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, insert

from tests.corridor.conftest import QUICK, free_base_port
from tests.support.calendar import limit_date, quota_year
from transit_window import clock
from transit_window.codes import generate_mrn
from transit_window.corridor.demo import APPLES_TO_BAKU, Api, obtain_papers
from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.topology import plan
from transit_window.db.base import table_of
from transit_window.declarations.models import Movement
from transit_window.seed import event_row
from transit_window.tracking import codes
from transit_window.tracking.models import TrackingCode, TrackingEvent

pytestmark = pytest.mark.corridor

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "web"  # gitignored
ITINERARY = ["KZALA001", "KZZHZ001", "UZGIS001", "UZTAS001"]
LIVE_WAIT_MS = 10_000
POLL_SECONDS = 2.5  # web/pages.py
SHOWN = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC[+-]\d{2}:\d{2}"  # the one format of every time on the page
CYRILLIC = re.compile(r"^[А-Яа-яЁё0-9 ()—-]+$")
# Every label the map shows at the page's width (the other layout is hidden by a container query): its text, its
# office, its least distance to the map's border in viewBox units, its size in CSS pixels, its box on the screen.
MAP_LABELS = """() => {
  const svg = document.getElementById("map");
  const view = svg.viewBox.baseVal;
  const scale = svg.getBoundingClientRect().width / view.width;
  return Array.from(svg.querySelectorAll("text.office-label, text.country-name"))
    .filter((text) => getComputedStyle(text.parentNode).display !== "none")
    .map((text) => {
      const box = text.getBBox();
      const rect = text.getBoundingClientRect();
      return {
        text: text.textContent,
        office: text.getAttribute("data-office"),
        margin: Math.min(box.x, view.width - box.x - box.width, box.y, view.height - box.y - box.height),
        px: parseFloat(getComputedStyle(text).fontSize) * scale,
        rect: [rect.left, rect.top, rect.right, rect.bottom],
      };
    });
}"""


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: under CI the browser test must run (.ci/run installs Debian's chromium)")
    pytest.skip(reason)


@pytest.fixture
def playwright_api() -> Any:
    """Playwright's sync API, when Debian's Chromium and the package are both here (checked before nodes start)."""
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    return sync_api


@pytest.fixture
def chromium(playwright_api: Any, kz_uz: LocalCorridor) -> Iterator[Any]:
    """A headless Chromium from Debian's package; never a browser Playwright would download. Started after the
    nodes: Playwright's sync API runs an event loop in this thread, and preparing the nodes needs asyncio.run."""
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def kz_uz(playwright_api: Any, tmp_path: Path) -> Iterator[LocalCorridor]:
    """Kazakhstan and Uzbekistan as two `transit-window serve` processes, each on its own SQLite database."""
    folder = tmp_path / "corridor"
    local = LocalCorridor(
        specs=plan(["KZ", "UZ"], base_port=free_base_port(2), folder=folder), folder=folder, extra_env=QUICK
    )
    local.prepare()
    try:
        local.start()
        yield local
    finally:
        local.stop()


class Customs:
    """The customs administrations' systems, driving their own nodes over HTTP."""

    def __init__(self, corridor: LocalCorridor) -> None:
        self.corridor = corridor
        self.http = httpx.Client(timeout=30.0)

    def __call__(self, node: str, method: str, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.corridor.token(node, 'customs')}"}
        response = self.http.request(method, f"{self.corridor.spec(node).url}{path}", headers=headers, **kwargs)
        assert response.status_code == expect, f"{node} {method} {path}: {response.status_code} {response.text}"
        return response.json()

    def permits(self, node: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.corridor.token(node, 'permits')}"}
        response = self.http.request(method, f"{self.corridor.spec(node).url}{path}", headers=headers, **kwargs)
        assert response.status_code < 300, f"{node} {method} {path}: {response.status_code} {response.text}"
        return response.json()

    def settled(self, node: str) -> bool:
        headers = {"Authorization": f"Bearer {self.corridor.token(node, 'admin')}"}
        status = self.http.get(f"{self.corridor.spec(node).url}/v1/admin/status", headers=headers).json()
        return not any(states.get("pending") for states in status["outbox"].values())

    def wait_settled(self, node: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.settled(node):
            assert time.monotonic() < deadline, f"{node}'s messages were not delivered within {timeout} s"
            time.sleep(0.1)


@pytest.fixture
def customs(kz_uz: LocalCorridor) -> Iterator[Customs]:
    driver = Customs(kz_uz)
    try:
        yield driver
    finally:
        driver.http.close()


def test_a_truck_followed_live_in_chromium_in_english_and_russian(
    kz_uz: LocalCorridor, chromium: Any, customs: Customs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Apples leave Almaty for Tashkent. The declarant opens the tracking page: the timeline has the release, the
    map the route with both border posts of Zhibek Zholy and Gishtkuprik, every time in Kazakhstan's local time. The
    e-seal has reported a 70 km detour: the alert sits after the release, saying what, where and how far. They
    switch to Russian — place names, title and alert in Cyrillic — and keep the page open: Kazakhstan
    records the exit, Uzbekistan the entry on its own node, then the arrival and the control results, and each step
    appears without a reload (Uzbekistan's via the signed message it sends to Kazakhstan); once Kazakhstan has
    written the movement off, the page stops polling and no longer says it updates. On a phone the map's labels are
    readable; and a finished journey to Baku names both Alats with their country, inside the map."""
    grn = APPLES_TO_BAKU["guarantee"]["grn"]
    customs(
        "KZ",
        "POST",
        "/v1/guarantees",
        expect=201,
        json={"grn": grn, "holder_id": "230340000126", "reference_amount": "20000.00", "currency": "USD"},
    )
    declaration = {
        **APPLES_TO_BAKU,
        "consignee": {"id": "305123456", "name": "Tashkent Fruit Wholesale LLC", "country": "UZ"},
        "itinerary": ITINERARY,
        "limit_date": limit_date(7),
    }
    papers = Api(kz_uz)  # the certificate and Uzbekistan's bilateral permit, through the API as the demo obtains them
    year = quota_year()
    customs.permits(
        "UZ", "POST", "/v1/permits/quotas", json={"holder": "KZ", "year": year, "type": "bilateral", "quantity": 5}
    )
    customs.wait_settled("UZ")
    obtain_papers(papers, declaration)
    papers.http.close()
    mrn = customs("KZ", "POST", "/v1/declarations", expect=201, json=declaration)["mrn"]
    code = customs("KZ", "POST", f"/v1/declarations/{mrn}/release")["tracking_code"]
    released = clock.utcnow()  # the release is recorded before its answer
    customs.wait_settled("KZ")  # Uzbekistan holds the anticipated record
    _detour(kz_uz, customs, mrn, after=released)
    baku = _finished_journey_to_baku(kz_uz.spec("KZ").database_url)

    kz_url = kz_uz.spec("KZ").url
    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    problems: list[str] = []
    page.on("console", lambda message: message.type in ("error", "warning") and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    elsewhere: list[str] = []
    page.on("request", lambda request: request.url.startswith(kz_url) or elsewhere.append(request.url))
    polls: list[float] = []
    page.on("request", lambda request: "/v1/track/" in request.url and polls.append(time.monotonic()))

    page.goto(f"{kz_url}/track/{code}", wait_until="load")
    rows = page.locator("#timeline > li")
    assert rows.count() == 2
    assert rows.nth(0).locator(".what").inner_text() == "Released for transit"
    assert rows.nth(0).get_attribute("data-office") == "KZALA001"
    assert page.locator("#status").inner_text() == "Released"
    assert page.locator("#live").is_visible() and page.locator("body").get_attribute("data-polling") == "on"
    offices = page.locator("#map g.office")
    assert [offices.nth(i).get_attribute("data-office") for i in range(offices.count())] == ITINERARY
    posts = page.locator("#map g.office.border-post")
    assert {posts.nth(i).get_attribute("data-office") for i in range(posts.count())} == {"KZZHZ001", "UZGIS001"}
    for office in ("KZZHZ001", "UZGIS001"):
        assert page.locator(f'#map g.office[data-office="{office}"]').is_visible()
    assert page.locator("#truck").get_attribute("data-office") == "KZALA001"
    _assert_times_local(page, offset="+05:00")
    _assert_labels_readable(page)
    alert = rows.nth(1)
    assert alert.get_attribute("data-rule") == "route-deviation" and "alert" in (alert.get_attribute("class") or "")
    assert alert.locator(".what").inner_text() == "Route deviation"
    assert alert.locator(".place").inner_text() == "between Almaty and Zhibek Zholy"
    assert re.fullmatch(r"\d+(\.\d)? km off the route", alert.locator(".detail").inner_text())
    assert _when(rows.nth(0)) <= _when(alert) <= clock.utcnow()  # its true time: after the release, not before
    assert page.locator("#truck").get_attribute("data-office") == "KZALA001"  # an alert on the road is not drawn
    OUTPUT.mkdir(parents=True, exist_ok=True)
    desktop = OUTPUT / "tracking-page-desktop.png"
    page.screenshot(path=str(desktop), full_page=True)

    page.click("a.language[data-lang=ru]")
    page.wait_for_url("**/track/*?lang=ru")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.locator("#heading").inner_text() == "Алматы → Ташкент"
    assert page.title().startswith("Алматы → Ташкент · Отслеживание груза")
    assert page.locator("#timeline-heading").inner_text().startswith("Хронология")
    assert page.locator("#status").inner_text() == "Выпущено"
    assert rows.nth(0).locator(".what").inner_text() == "Выпущено для транзита"
    assert rows.nth(1).locator(".what").inner_text() == "Отклонение от маршрута"
    assert rows.nth(1).locator(".place").inner_text() == "на участке Алматы — Жибек Жолы"
    russian_detail = rows.nth(1).locator(".detail").inner_text()
    assert re.fullmatch(r"\d+(,\d)? км от маршрута", russian_detail)
    assert {t for t in page.locator("#map text.country-name").all_text_contents()} == {"Казахстан", "Узбекистан"}
    labels = _assert_labels_readable(page)
    assert {label["text"] for label in labels if label["office"]} == {"Алматы", "Жибек Жолы", "Гишткуприк", "Ташкент"}
    assert page.locator("#position").inner_text() == "Алматы, Казахстан"
    shot = OUTPUT / "tracking-page-ru.png"
    page.screenshot(path=str(shot), full_page=True)

    page.evaluate("window.stillTheSamePage = true")  # gone if the page reloads
    customs("KZ", "POST", f"/v1/movements/{mrn}/crossings", expect=201, json=_step("KZZHZ001", "exit"))
    rows.nth(2).wait_for(state="attached", timeout=LIVE_WAIT_MS)  # (a string predicate would need 'unsafe-eval')
    assert rows.nth(2).locator(".what").inner_text() == "Выезд из страны"
    assert rows.nth(2).get_attribute("data-office") == "KZZHZ001"
    assert rows.nth(1).locator(".place").inner_text() == "на участке Алматы — Жибек Жолы"  # as the script draws it
    assert rows.nth(1).locator(".detail").inner_text() == russian_detail
    assert page.locator("#status").inner_text() == "В пути"
    assert page.locator("#truck").get_attribute("data-office") == "KZZHZ001"

    customs.wait_settled("KZ")
    customs("UZ", "POST", f"/v1/movements/{mrn}/crossings", expect=201, json=_step("UZGIS001", "entry"))
    rows.nth(3).wait_for(state="attached", timeout=LIVE_WAIT_MS)
    assert rows.nth(3).locator(".what").inner_text() == "Въезд в страну"
    assert rows.nth(3).locator(".place").inner_text() == "Гишткуприк"
    assert rows.nth(3).locator(".chip").inner_text() == "Узбекистан"
    assert page.locator("#event-count").inner_text() == "4"
    assert page.locator("#truck").get_attribute("data-office") == "UZGIS001"
    assert page.locator("#position").inner_text() == "Гишткуприк, Узбекистан"
    assert "visited" in (page.locator('#map g.office[data-office="UZGIS001"]').get_attribute("class") or "")
    _assert_times_local(page, offset="+05:00")  # the "Updated" clock came from the poll: the same format
    live = OUTPUT / "tracking-page-ru-live.png"
    page.wait_for_timeout(800)  # the truck glides to its new place (0.6 s CSS transition) before the picture
    page.screenshot(path=str(live), full_page=True)

    customs("UZ", "POST", f"/v1/movements/{mrn}/arrival", expect=201, json={"office": "UZTAS001", "at": _now()})
    customs("UZ", "POST", f"/v1/movements/{mrn}/control-results", expect=201, json={"code": "A1", "at": _now()})
    page.locator('#status[data-status="closed"]').wait_for(timeout=LIVE_WAIT_MS)  # written off by Kazakhstan
    page.locator("#live").wait_for(state="hidden", timeout=LIVE_WAIT_MS)
    assert page.locator("body").get_attribute("data-polling") == "off"
    assert page.locator("#status").inner_text() == "Завершено" and rows.count() == 7
    assert page.locator("#position").inner_text() == "Ташкент, Узбекистан"  # not the desk that wrote it off
    stopped, polled = time.monotonic(), len(polls)
    assert page.evaluate("window.stillTheSamePage === true"), "the page reloaded"

    phone = chromium.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    phone.goto(f"{kz_url}/track/{code}", wait_until="load")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways on a phone"
    map_box, timeline_box = phone.locator("#map").bounding_box(), phone.locator("#timeline").bounding_box()
    assert map_box and timeline_box and timeline_box["y"] > map_box["y"] + map_box["height"]  # stacked
    assert not phone.locator("#live").is_visible() and phone.locator("body").get_attribute("data-polling") == "off"
    labels = _assert_labels_readable(phone)
    assert {"Almaty", "Tashkent"} <= {label["text"] for label in labels}  # the route's ends are always named
    _assert_times_local(phone, offset="+05:00")
    mobile = OUTPUT / "tracking-page-phone.png"
    phone.screenshot(path=str(mobile), full_page=True)

    finished = chromium.new_page(viewport={"width": 1280, "height": 860})
    finished.goto(f"{kz_url}/track/{baku}?lang=ru", wait_until="load")
    assert finished.locator("#heading").inner_text() == "Алматы → Баку"
    labels = {label["office"] or label["text"]: label["text"] for label in _assert_labels_readable(finished)}
    assert (labels["UZALT001"], labels["AZALA001"]) == ("Алат (Узбекистан)", "порт Алят (Азербайджан)")
    assert labels["Азербайджан"] == "Азербайджан"  # shown, in capitals, inside the map (_assert_labels_readable)
    assert all(CYRILLIC.match(text) for text in labels.values()), labels
    places = finished.locator("#timeline .place").all_inner_texts()
    assert "Алат (Узбекистан)" in places and "порт Алят (Азербайджан)" in places
    whens = finished.locator("#timeline time.when").all_inner_texts()
    assert whens[6].endswith("UTC+04:00") and whens[2].endswith("UTC+05:00")  # Alat port in Baku's time
    assert not finished.locator("#live").is_visible()
    baku_shot = OUTPUT / "tracking-page-ru-baku.png"
    finished.screenshot(path=str(baku_shot), full_page=True)

    page.wait_for_timeout(max(0.0, POLL_SECONDS + 0.5 - (time.monotonic() - stopped)) * 1000)
    assert len(polls) == polled, "the page kept polling a closed movement"
    assert not problems, f"the browser reported: {problems}"
    assert not elsewhere, f"the page loaded from elsewhere: {elsewhere}"
    with capsys.disabled():
        print(f"\n  screenshots: {desktop}, {shot}, {live}, {mobile}, {baku_shot}")


def _now() -> str:
    return clock.isoformat(clock.utcnow())


def _step(office: str, direction: str) -> dict[str, str]:
    return {"office": office, "direction": direction, "at": _now()}


def _when(row: Any) -> datetime:
    return datetime.fromisoformat(row.locator("time.when").get_attribute("datetime"))


def _assert_times_local(page: Any, *, offset: str) -> None:
    """Every time on the page, the "Updated" clock too, in one format and the office's local time (this route is
    all on UTC+05:00); the clock within a minute of now."""
    times = page.locator("time[datetime]")
    texts = times.all_inner_texts()
    assert texts and all(re.fullmatch(SHOWN, text) and text.endswith(f"UTC{offset}") for text in texts), texts
    updated = datetime.fromisoformat(page.locator("#updated").get_attribute("datetime"))
    assert abs(updated - clock.utcnow()) < timedelta(minutes=2)


def _assert_labels_readable(page: Any) -> list[dict[str, Any]]:
    """The map's labels as shown at the page's width: at least 12 CSS px, not touching the map's border, office
    labels not covering one another."""
    labels: list[dict[str, Any]] = page.evaluate(MAP_LABELS)
    assert labels
    for label in labels:
        assert label["px"] >= 12, f"{label['text']} is {label['px']:.1f} px"
        assert label["margin"] >= 2, f"{label['text']} touches the map's border ({label['margin']:.1f})"
    offices = [label["rect"] for label in labels if label["office"]]
    for index, a in enumerate(offices):
        for b in offices[index + 1 :]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (labels, a, b)
    return labels


def _detour(corridor: LocalCorridor, customs: Customs, mrn: str, *, after: datetime) -> None:
    """Kazakhstan's e-seal gateway reports the truck leaving Almaty, 70 km south of its road, then back: pings
    dated between the release and now."""
    seal = APPLES_TO_BAKU["seals"][0]
    device = {"client_id": corridor.client_id("KZ", "device"), "seal_id": seal}
    admin = {"Authorization": f"Bearer {corridor.token('KZ')}"}
    kz = corridor.spec("KZ").url
    registered = customs.http.put(f"{kz}/v1/devices/ESEAL-KZ-0042", json=device, headers=admin)
    assert registered.status_code == 200, registered.text
    start, end, now = (43.24, 76.89), (41.38, 69.12), clock.utcnow()
    pings = []
    for index, (fraction, south) in enumerate([(0.1, 0.0), (0.3, 0.65), (0.5, 0.0)]):
        pings.append(
            {
                "device_id": "ESEAL-KZ-0042",
                "seal_id": seal,
                "time": clock.isoformat(after + (now - after) * (index + 1) / 4),
                "lat": round(start[0] + (end[0] - start[0]) * fraction - south, 5),
                "lon": round(start[1] + (end[1] - start[1]) * fraction, 5),
            }
        )
    headers = {"Authorization": f"Bearer {corridor.token('KZ', 'device')}"}
    posted = customs.http.post(f"{kz}/v1/tracking/positions", json={"pings": pings}, headers=headers)
    assert posted.status_code == 200, posted.text
    assert [alert["rule"] for alert in posted.json()["alerts"]] == ["route-deviation"]


def _finished_journey_to_baku(database_url: str) -> str:
    """A movement Almaty → Baku (KZ → UZ → TM → AZ) that ended yesterday, written straight into Kazakhstan's
    database: this corridor has no Turkmen or Azerbaijani node to record it, and the page only reads. Its
    tracking code."""
    route = ["KZALA001", "KZZHZ001", "UZGIS001", "UZALT001", "TMFAR001", "TMKRW001", "AZALA001", "AZBAK001"]
    steps = [
        ("released", "KZALA001"),
        ("exit", "KZZHZ001"),
        ("entry", "UZGIS001"),
        ("exit", "UZALT001"),
        ("entry", "TMFAR001"),
        ("exit", "TMKRW001"),
        ("entry", "AZALA001"),
        ("arrived", "AZBAK001"),
        ("closed", "KZALA001"),
    ]
    now = clock.utcnow()
    start = now - timedelta(days=3)
    mrn = generate_mrn(year=now.year % 100, country="KZ", serial=int(now.timestamp()) % 100_000, office_part="BAKU")
    code = codes.new_code()
    movement = {
        "mrn": mrn,
        "role": "departure",
        "status": "closed",
        "departure_country": "KZ",
        "departure_office": route[0],
        "destination_office": route[-1],
        "countries": ["KZ", "UZ", "TM", "AZ"],
        "offices": route,
        "record": {"seals": [], "containers": [], "vehicle": {"plate": "777AAA02"}},
        "grn": None,
        "guarantee_amount": None,
        "guarantee_currency": None,
        "limit_date": (now + timedelta(days=7)).date(),
        "client_id": None,
        "declarant_id": "230340000126",
        "created_at": start,
        "updated_at": now,
    }
    events = [
        event_row(
            event_id=f"baku-{mrn}-{index}",
            mrn=mrn,
            kind=kind,
            office=office,
            at=start + timedelta(hours=5 * index),
            vehicle="777AAA02",
        )
        for index, (kind, office) in enumerate(steps)
    ]
    engine = create_engine(database_url.replace("+aiosqlite", ""))
    try:
        with engine.begin() as connection:
            connection.execute(insert(table_of(Movement)), [movement])
            connection.execute(insert(table_of(TrackingEvent)), events)
            connection.execute(
                insert(table_of(TrackingCode)), [{"code": code, "mrn": mrn, "active": True, "created_at": now}]
            )
    finally:
        engine.dispose()
    return code
