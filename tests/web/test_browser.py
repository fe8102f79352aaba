# ruff: noqa: RUF001 - Russian text: Cyrillic letters that look Latin are meant
"""The tracking page in a real browser: Debian's headless Chromium (driven by Playwright, which downloads nothing)
against two real node processes, Kazakhstan and Uzbekistan, on SQLite, talking over HTTP on loopback.

Skipped locally when /usr/bin/chromium is missing; under CI (CI=true, `.ci/run`) a missing browser is a failure —
`make test` and `.ci/run` install it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.corridor.conftest import QUICK, free_base_port
from tests.support.calendar import limit_date, quota_year
from transit_window import clock
from transit_window.corridor.demo import APPLES_TO_BAKU, Api, obtain_papers
from transit_window.corridor.local import LocalCorridor
from transit_window.corridor.topology import plan

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
    map the route with both border posts of Zhibek Zholy and Gishtkuprik. They switch to Russian and keep the page
    open: Kazakhstan records the exit, then Uzbekistan records the entry on its own node, and both steps appear on
    the open page without a reload (Uzbekistan's via the signed message it sends to Kazakhstan)."""
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
    customs.wait_settled("KZ")  # Uzbekistan holds the anticipated record

    kz_url = kz_uz.spec("KZ").url
    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    problems: list[str] = []
    page.on("console", lambda message: message.type in ("error", "warning") and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    elsewhere: list[str] = []
    page.on("request", lambda request: request.url.startswith(kz_url) or elsewhere.append(request.url))

    page.goto(f"{kz_url}/track/{code}", wait_until="load")
    rows = page.locator("#timeline > li")
    assert rows.count() == 1
    assert rows.nth(0).locator(".what").inner_text() == "Released for transit"
    assert rows.nth(0).get_attribute("data-office") == "KZALA001"
    assert page.locator("#status").inner_text() == "Released"
    offices = page.locator("#map g.office")
    assert [offices.nth(i).get_attribute("data-office") for i in range(offices.count())] == ITINERARY
    posts = page.locator("#map g.office.border-post")
    assert {posts.nth(i).get_attribute("data-office") for i in range(posts.count())} == {"KZZHZ001", "UZGIS001"}
    for office in ("KZZHZ001", "UZGIS001"):
        assert page.locator(f'#map g.office[data-office="{office}"]').is_visible()
    assert page.locator("#truck").get_attribute("data-office") == "KZALA001"

    page.click("a.language[data-lang=ru]")
    page.wait_for_url("**/track/*?lang=ru")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.locator("#timeline-heading").inner_text().startswith("Хронология")
    assert page.locator("#status").inner_text() == "Выпущено"
    assert rows.nth(0).locator(".what").inner_text() == "Выпущено для транзита"
    assert {t for t in page.locator("#map text.country-name").all_text_contents()} == {"Казахстан", "Узбекистан"}
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shot = OUTPUT / "tracking-page-ru.png"
    page.screenshot(path=str(shot), full_page=True)

    page.evaluate("window.stillTheSamePage = true")  # gone if the page reloads
    customs("KZ", "POST", f"/v1/movements/{mrn}/crossings", expect=201, json=_step("KZZHZ001", "exit"))
    rows.nth(1).wait_for(state="attached", timeout=LIVE_WAIT_MS)  # (a string predicate would need 'unsafe-eval')
    assert rows.nth(1).locator(".what").inner_text() == "Выезд из страны"
    assert rows.nth(1).get_attribute("data-office") == "KZZHZ001"
    assert page.locator("#status").inner_text() == "В пути"
    assert page.locator("#truck").get_attribute("data-office") == "KZZHZ001"

    customs.wait_settled("KZ")
    customs("UZ", "POST", f"/v1/movements/{mrn}/crossings", expect=201, json=_step("UZGIS001", "entry"))
    rows.nth(2).wait_for(state="attached", timeout=LIVE_WAIT_MS)
    assert rows.nth(2).locator(".what").inner_text() == "Въезд в страну"
    assert rows.nth(2).locator(".place").inner_text() == "Гишткуприк"  # the Russian page names places in Russian
    assert rows.nth(2).locator(".chip").inner_text() == "Узбекистан"
    assert page.locator("#event-count").inner_text() == "3"
    assert page.locator("#truck").get_attribute("data-office") == "UZGIS001"
    assert "visited" in (page.locator('#map g.office[data-office="UZGIS001"]').get_attribute("class") or "")
    assert page.evaluate("window.stillTheSamePage === true"), "the page reloaded"
    live = OUTPUT / "tracking-page-ru-live.png"
    page.wait_for_timeout(800)  # the truck glides to its new place (0.6 s CSS transition) before the picture
    page.screenshot(path=str(live), full_page=True)

    phone = chromium.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    phone.goto(f"{kz_url}/track/{code}", wait_until="load")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways on a phone"
    map_box, timeline_box = phone.locator("#map").bounding_box(), phone.locator("#timeline").bounding_box()
    assert map_box and timeline_box and timeline_box["y"] > map_box["y"] + map_box["height"]  # stacked
    mobile = OUTPUT / "tracking-page-phone.png"
    phone.screenshot(path=str(mobile), full_page=True)

    assert not problems, f"the browser reported: {problems}"
    assert not elsewhere, f"the page loaded from elsewhere: {elsewhere}"
    with capsys.disabled():
        print(f"\n  screenshots: {shot}, {live}, {mobile}")


def _step(office: str, direction: str) -> dict[str, str]:
    return {"office": office, "direction": direction, "at": clock.isoformat(clock.utcnow())}
