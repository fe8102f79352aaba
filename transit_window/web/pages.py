"""The public tracking page: `/track` (enter a code) and `/track/{code}` (status, route map, timeline).

A Starlette sub-app mounted by the node's app, so it is not part of the API's OpenAPI document. Pages are rendered
on the server from the same public view as `GET /v1/track/{code}` (no goods values, parties or personal data);
one static script (static/track.js) polls that JSON endpoint and updates the open page when a new event arrives.
No inline script, style or event handler anywhere, so the Content-Security-Policy allows only files of this node.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from transit_window.codes import OfficeDirectory
from transit_window.codes.of_node import offices_of
from transit_window.errors import NotFound
from transit_window.protocol.node import Node
from transit_window.tracking.public import display, public_view
from transit_window.tracking.schemas import Place, PublicTrack
from transit_window.web import i18n, routemap

HERE = Path(__file__).parent
CODE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")  # as GET /v1/track/{code} accepts it
POLL_SECONDS = 2.5

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # the code is in the URL: never send it to another site
]

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True, slots=True)
class RouteTemplate:
    path: str


class SecurityHeaders:
    """Every response of the sub-app (pages, static files, errors) carries the page's security headers.

    Also names the route for the node's HTTP metrics by its full template (`/track/{code}`, not the sub-app's
    `/{code}`): never by the path itself, which holds the tracking code."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*headers, *SECURITY_HEADERS]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = getattr(scope.get("route"), "path", None)
            scope["route"] = RouteTemplate(f"{scope.get('root_path', '')}{route or '/{unmatched}'}")


templates.filters["display_time"] = display  # the one format of every time on the page; track.js does the same


class Pages:
    def __init__(self, node_of: Callable[[], Node]) -> None:
        self.node_of = node_of

    # --- helpers ---------------------------------------------------------------------------------------------

    @staticmethod
    def _language(request: Request) -> tuple[str, bool]:
        return i18n.choose(request.query_params.get("lang"), request.headers.get("accept-language"))

    @staticmethod
    def _root(request: Request) -> str:
        """The sub-app's own path prefix (`/track`, or more behind a proxy that sets root_path)."""
        return str(request.scope.get("root_path", "")).rstrip("/")

    def _render(
        self, request: Request, template: str, *, status: int = 200, lang: str, negotiated: bool, **context: Any
    ) -> HTMLResponse:
        root = self._root(request)
        body = templates.get_template(template).render(
            lang=lang,
            t=i18n.WORDS[lang],
            languages=i18n.LANGUAGES.items(),
            root=root,
            static=f"{root}/static",
            **context,
        )
        headers = {"Cache-Control": "no-store", "Content-Language": lang}
        if negotiated:
            headers["Vary"] = "Accept-Language"
        return HTMLResponse(body, status_code=status, headers=headers)

    def _not_found(self, request: Request, *, code: str = "") -> HTMLResponse:
        lang, negotiated = self._language(request)
        return self._render(request, "not_found.html", status=404, lang=lang, negotiated=negotiated, code=code)

    # --- routes ----------------------------------------------------------------------------------------------

    async def form(self, request: Request) -> Response:
        """`/track/`: a form for the code; `?code=` (the form's GET) goes on to `/track/{code}`."""
        lang, negotiated = self._language(request)
        code = request.query_params.get("code", "").strip()
        if code and CODE.match(code):
            query = f"?{urlencode({'lang': request.query_params['lang']})}" if "lang" in request.query_params else ""
            return RedirectResponse(f"{self._root(request)}/{quote(code)}{query}", status_code=303)
        error = i18n.WORDS[lang]["bad_code"] if "code" in request.query_params else None
        return self._render(
            request, "form.html", status=400 if error else 200, lang=lang, negotiated=negotiated, code=code, error=error
        )

    async def track(self, request: Request) -> Response:
        """`/track/{code}`: status, route map and timeline of the consignment behind the code."""
        code = request.path_params["code"]
        if not CODE.match(code):
            return self._not_found(request, code=code[:64])
        lang, negotiated = self._language(request)
        node = self.node_of()
        offices = offices_of(node)
        async with node.sessionmaker() as session:
            try:
                track = await public_view(session, node, code, lang=lang)
            except NotFound:
                return self._not_found(request, code=code)
        words = i18n.WORDS[lang]
        countries = {*track.countries, *(place.country for place in track.route)}
        names = {country: i18n.country(country, lang) for country in countries}
        route_map = routemap.build(
            track, offices, country_names=names, alerts=_alert_spots(track, offices), truck_title=words["legend_truck"]
        )
        truck = routemap.truck_place(track)
        api = f"{self._root(request).removesuffix('/track')}/v1/track/{code}?lang={lang}"
        script_data = {
            "api": api,
            "poll": POLL_SECONDS,
            "final": track.final,
            "statuses": i18n.STATUSES[lang],
            "countries": {**i18n.COUNTRIES[lang], **names},
            "words": {key: words[key] for key in ("offline", "live")},
        }
        heading = f"{_name(track.route[0])} → {_name(track.route[-1])}" if track.route else words["title"]
        return self._render(
            request,
            "track.html",
            lang=lang,
            negotiated=negotiated,
            code=code,
            track=track,
            heading=heading,
            map=route_map,
            truck=truck,
            position=position_text(truck, names) if truck else words["unknown_position"],
            names=names,
            status_label=i18n.status(track.status, lang),
            script_data=orjson.dumps(script_data).decode(),
        )

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """Unknown paths under /track (and a static file that does not exist) get the friendly page too."""
        if isinstance(exc, HTTPException) and exc.status_code == 404:
            return self._not_found(request)
        if isinstance(exc, HTTPException):
            return Response(status_code=exc.status_code, headers=exc.headers)
        raise exc


def _name(place: Place) -> str:
    return place.name or place.office or place.country


def position_text(place: Place, country_names: dict[str, str]) -> str:
    """'Gishtkuprik, Uzbekistan'; the country once only when the name already carries it ('Alat (Uzbekistan)')."""
    country = country_names.get(place.country, place.country)
    name = _name(place)
    return name if name.endswith(f"({country})") else f"{name}, {country}"


def _alert_spots(track: PublicTrack, offices: OfficeDirectory) -> list[routemap.AlertAt]:
    """Where the alerts of the timeline are drawn: only those raised at an office, at the office. An alert on the
    road is listed with the stretch of the route it was on, never drawn: its ping's position is for customs, and
    the public page never shows it (issue 13)."""
    spots: list[routemap.AlertAt] = []
    for step in track.timeline:
        office = offices.get(step.office) if step.alert and step.office else None
        if office is not None:
            title = f"{step.label}: {step.detail}" if step.detail else step.label
            spots.append((office.lat, office.lon, title, office.code))
    return spots


def create_app(node_of: Callable[[], Node]) -> Starlette:
    """The tracking pages; `node_of` returns the node of the app that mounts them (opened by that app's lifespan)."""
    pages = Pages(node_of)
    return Starlette(
        routes=[
            Route("/", pages.form, methods=["GET"], name="form"),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            Route("/{code}", pages.track, methods=["GET"], name="track"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: pages.http_error},
    )
