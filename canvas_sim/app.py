"""Flask factory exposing SimPlatform over HTTP on Canvas's URL layout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, abort, jsonify, render_template, request, url_for

from canvas_sim import claims as c
from canvas_sim import services
from canvas_sim.config import SimConfig, origin_of
from canvas_sim.errors import SimAuthError
from canvas_sim.platform import SimPlatform
from canvas_sim.rest import DROP_KEY, CanvasRest, _refusal, _server_error, register_rest
from canvas_sim.rest import EXTENSION_KEY as REST_EXTENSION_KEY

EXTENSION_KEY = "canvas_sim"


def create_sim_app(
    config: SimConfig | None = None, platform: SimPlatform | None = None, rest: CanvasRest | None = None
) -> Flask:
    if platform is None:
        platform = SimPlatform(config or SimConfig())
    elif config is not None and config is not platform.config:
        raise ValueError("pass either config or platform (or platform.config), not two different configs")
    app = Flask(__name__)
    app.extensions[EXTENSION_KEY] = platform
    _register_pages(app, platform)
    _register_oauth(app, platform)
    _register_services(app, platform)
    _register_headers(app, platform)
    register_rest(app, platform.config, rest)
    return app


# ------------------------------------------------------------------ pages
def _register_pages(app: Flask, platform: SimPlatform) -> None:
    cfg = platform.config

    @app.get("/")
    def index() -> str:
        # ?locale= is the language form's answer without script; with script the page keeps its forms in step.
        locale = request.args.get("locale", "")
        return render_template(
            "index.html",
            cfg=cfg,
            users=cfg.users,
            links=platform.course_links(),
            locales=cfg.launch_locales,
            locale=locale if locale in cfg.launch_locales else cfg.locale,
            tool_origin=cfg.tool_origin,
            forwarder_origin=origin_of(cfg.auth_base) if cfg.forwarding_frame else "",
        )

    @app.get("/sim/post_message_forwarding")
    def post_message_forwarding() -> str:
        """Canvas's hidden forwarding frame (on the sso origin): relays the tool's messages to the Canvas page."""
        return render_template("forwarding.html", tool_origin=cfg.tool_origin, parent_origin=origin_of(cfg.base))

    @app.get("/sim/start")
    def start() -> tuple[str, int] | str:
        user_key = request.args.get("user", "")
        message_type = request.args.get("message_type") or c.RESOURCE_LINK_REQUEST
        custom = {"kurspakke_view": request.args["view"]} if request.args.get("view") else None
        locale = request.args.get("locale") or None
        link_id = request.args.get("link") or None
        link = platform.placed_link(link_id) if link_id else None
        if link_id and link is None:
            return render_template("error.html", message=f"ukjent lenke i emnet: {link_id!r}"), 400
        if locale is not None and locale not in cfg.launch_locales:
            return render_template("error.html", message=f"ukjent språk (locale): {locale!r}"), 400
        try:
            params = platform.login_initiation_params(
                user_key, message_type=message_type, custom=custom, link=link, locale=locale
            )
        except SimAuthError as exc:
            return render_template("error.html", message=exc.message), 400
        return render_template(
            "autopost.html",
            action=cfg.tool_login_url,
            fields=params,
            heading="Starter verktøyet …",
        )

    @app.route("/api/lti/authorize_redirect", methods=["GET", "POST"])
    def authorize_redirect() -> tuple[str, int] | str:
        params = {**request.args.to_dict(), **request.form.to_dict()}
        try:
            redirect_uri, fields = platform.authorize(params)
        except SimAuthError as exc:
            return render_template("error.html", message=exc.message), 400
        return render_template("autopost.html", action=redirect_uri, fields=fields, heading="Logger inn …")

    @app.post("/courses/<int:course_id>/deep_linking_response")
    def deep_linking_response(course_id: int) -> tuple[str, int] | str:
        if course_id != cfg.course_id:
            abort(404)
        try:
            payload = platform.receive_deep_link_response(request.form.get("JWT", ""))
        except SimAuthError as exc:
            return render_template("error.html", message=exc.message), 400
        items = payload.get(c.DL_CONTENT_ITEMS) or []
        titles = [str(i.get("title") or i.get("url") or "(uten tittel)") for i in items]
        return render_template(
            "deep_linking_done.html",
            titles=titles,
            placed=any(i.get("type") == "ltiResourceLink" for i in items),
            msg=payload.get(c.DL_MSG),
            errormsg=payload.get(c.DL_ERRORMSG),
        )

    @app.get("/courses/<int:course_id>/external_content/success/external_tool_redirect")
    def return_url(course_id: int) -> str:
        # launch_presentation.return_url lands here when the tool sends the user back.
        return render_template("returned.html", cfg=cfg)


# ------------------------------------------------------------ OAuth / keys
def _register_oauth(app: Flask, platform: SimPlatform) -> None:
    @app.get("/api/lti/security/jwks")
    def jwks() -> Response:
        with platform._lock:
            platform.jwks_requests += 1
        return jsonify(platform.jwks())

    @app.post("/login/oauth2/token")
    def token() -> tuple[Response, int] | Response:
        form: dict[str, Any] = request.form.to_dict()
        if not form and request.is_json:
            body = request.get_json(silent=True)
            form = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
        try:
            result = platform.issue_access_token(form)
        except SimAuthError as exc:
            resp = jsonify({"error": exc.error, "error_description": exc.message})
            resp.headers["Cache-Control"] = "no-store"
            return resp, 400
        resp = jsonify(result)
        resp.headers["Cache-Control"] = "no-store"
        return resp


# --------------------------------------------------------------- services
def _json(data: Any, media_type: str, status: int = 200) -> Response:
    resp = jsonify(data)
    resp.status_code = status
    resp.mimetype = media_type
    return resp


def _service_error(exc: SimAuthError) -> Response:
    resp = jsonify({"errors": {"type": exc.error, "message": exc.message}})
    resp.status_code = exc.status
    if exc.status == 401:
        resp.headers["WWW-Authenticate"] = f'Bearer error="{exc.error}"'
    return resp


def _register_services(app: Flask, platform: SimPlatform) -> None:
    app.register_error_handler(SimAuthError, _service_error)

    def bearer(*scopes: str) -> None:
        platform.check_bearer(request.headers.get("Authorization"), *scopes)

    def int_arg(name: str) -> int | None:
        raw = request.args.get(name)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            raise SimAuthError(f"{name} må være et heltall") from None

    @app.get("/api/lti/courses/<int:course_id>/names_and_roles")
    def names_and_roles(course_id: int) -> Response:
        bearer(c.SCOPE_NRPS)
        container, next_url = services.memberships(
            platform,
            course_id,
            limit=int_arg("limit"),
            page=int_arg("page") or 1,
            role=request.args.get("role"),
        )
        resp = _json(container, c.MT_NRPS)
        if next_url:
            resp.headers["Link"] = f'<{next_url}>; rel="next"'
        return resp

    _register_ags(app, platform, bearer)


# -------------------------------------------------------------------- AGS
_JSON_SCORE_TYPES = (c.MT_SCORE, "application/json")


def _canvas_not_found(exc: services.CanvasNotFound) -> Response:
    resp = jsonify({"errors": [{"message": exc.message}]})
    resp.status_code = 404
    return resp


def _register_ags(app: Flask, platform: SimPlatform, bearer: Callable[..., None]) -> None:
    """Line items, scores and results. The REST half's injected faults (CanvasRest.inject: status, throttle,
    timeout, drop_before, drop_after) apply here too, matched on method, path and the endpoint labels below."""
    app.register_error_handler(services.CanvasNotFound, _canvas_not_found)

    def with_faults(label: str, view: Callable[[], Response]) -> Response:
        rest: CanvasRest | None = app.extensions.get(REST_EXTENSION_KEY)
        fault = rest._pick_fault(request.method, request.path, label) if rest is not None else None
        if rest is not None and fault is not None:
            if fault.kind == "status":
                return _server_error(rest, fault.status)
            if fault.kind == "throttle":
                return _refusal(rest.throttle_status)
            if fault.kind == "drop_before":
                request.environ[DROP_KEY] = True
                return Response(status=204)
            if fault.kind == "timeout":
                rest.clock.sleep(fault.seconds)  # then handled: the client has given up by now
        resp = view()
        if fault is not None and fault.kind == "drop_after":
            request.environ[DROP_KEY] = True  # applied, but the answer never arrives
        return resp

    @app.get("/api/lti/courses/<int:course_id>/line_items")
    def line_items(course_id: int) -> Response:
        def view() -> Response:
            bearer(c.SCOPE_LINEITEM, c.SCOPE_LINEITEM_READONLY)
            items, link = services.line_items_page(platform, course_id, request.args.to_dict())
            resp = _json(items, c.MT_LINEITEMS)
            resp.headers["Link"] = link
            return resp

        return with_faults("GET /api/lti/courses/:course_id/line_items", view)

    @app.post("/api/lti/courses/<int:course_id>/line_items")
    def create_line_item(course_id: int) -> Response:
        def view() -> Response:
            bearer(c.SCOPE_LINEITEM)
            item = services.create_line_item(platform, course_id, request.get_json(force=True, silent=True))
            return _json(item, c.MT_LINEITEM, 201)  # Canvas: 201 Created

        return with_faults("POST /api/lti/courses/:course_id/line_items", view)

    @app.get("/api/lti/courses/<int:course_id>/line_items/<int:item_id>")
    def line_item(course_id: int, item_id: int) -> Response:
        def view() -> Response:
            bearer(c.SCOPE_LINEITEM, c.SCOPE_LINEITEM_READONLY)
            return _json(services.get_line_item(platform, course_id, item_id), c.MT_LINEITEM)

        return with_faults("GET /api/lti/courses/:course_id/line_items/:id", view)

    @app.post("/api/lti/courses/<int:course_id>/line_items/<int:item_id>/scores")
    def scores(course_id: int, item_id: int) -> Response:
        def view() -> Response:
            bearer(c.SCOPE_SCORE)
            # Canvas registers a JSON parameter parser for the score media type and Rails parses application/json
            # anyway; any other body is not parsed, so Canvas sees no userId and answers its 422.
            body = request.get_json(force=True, silent=True) if request.mimetype in _JSON_SCORE_TYPES else {}
            return _json(services.post_score(platform, course_id, item_id, body), "application/json")

        return with_faults("POST /api/lti/courses/:course_id/line_items/:id/scores", view)

    @app.get("/api/lti/courses/<int:course_id>/line_items/<int:item_id>/results")
    def results(course_id: int, item_id: int) -> Response:
        def view() -> Response:
            bearer(c.SCOPE_RESULT_READONLY)
            out = services.results(platform, course_id, item_id, request.args.get("user_id"))
            return _json(out, c.MT_RESULTS)

        return with_faults("GET /api/lti/courses/:course_id/line_items/:id/results", view)


# ---------------------------------------------------------------- headers
def _register_headers(app: Flask, platform: SimPlatform) -> None:
    tool = " ".join([*platform.config.tool_origins(), origin_of(platform.config.auth_base)])
    # script-src 'self' proves the pages need no inline script (as the brief requires).
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"object-src 'none'; base-uri 'none'; frame-src 'self' {tool}; form-action 'self' {tool}"
    )

    @app.after_request
    def security_headers(resp: Response) -> Response:
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Content-Security-Policy", csp)
            resp.headers.setdefault("Cache-Control", "no-store")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        return resp

    @app.context_processor
    def inject_urls() -> dict[str, Any]:
        return {"static_url": lambda f: url_for("static", filename=f)}
