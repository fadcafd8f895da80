"""The launch baseline: the least an LTI 1.3 tool must do, as a minimal Flask app served like the tool.

* ``GET /lti/login`` makes a state and a nonce, sets the state cookie (same attributes as the tool's) and redirects
  to the platform's authorize URL. Nothing is stored server-side.
* ``POST /lti/launch`` checks the form's state against the cookie, verifies the id_token (RS256, aud, iss, exp,
  60 s leeway) with the platform's public key loaded once at start-up, inserts the nonce into its own table
  (primary key: a replay fails) and commits, then returns a small page naming the user.

Same database kind and engine settings as the tool (``kurspakke.db.make_engine``: SQLite in WAL mode with
BEGIN IMMEDIATE, or PostgreSQL through psycopg 3 with a pool). The nonce table is created at start-up.

Environment: BENCH_BASELINE_DATABASE_URL, BENCH_SIM_KEY_FILE (the platform's key, PEM; only its public half is
used), BENCH_ISSUER, BENCH_CLIENT_ID, BENCH_AUTH_URL (the platform's authorize endpoint), BENCH_LAUNCH_URL.
WSGI entry: ``bench.baseline_app:create_app()``.
"""

from __future__ import annotations

import os
import secrets
import time
from html import escape
from pathlib import Path
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from flask import Flask, Response, abort, redirect, request
from sqlalchemy import Column, DateTime, MetaData, String, Table, func, insert, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from kurspakke.db import make_engine

COOKIE_PREFIX = "bl_state_"
metadata = MetaData()
nonces = Table(
    "bench_baseline_nonce",
    metadata,
    Column("nonce", String(128), primary_key=True),
    Column("used_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def _create_table(engine) -> None:  # type: ignore[no-untyped-def]
    # Two workers start at once; on PostgreSQL a concurrent CREATE TABLE IF NOT EXISTS can still collide.
    for attempt in range(5):
        try:
            metadata.create_all(engine, checkfirst=True)
            return
        except SQLAlchemyError:
            if attempt == 4:
                raise
            time.sleep(0.2)


def create_app() -> Flask:
    env = os.environ
    engine = make_engine(env["BENCH_BASELINE_DATABASE_URL"])
    _create_table(engine)
    private = serialization.load_pem_private_key(Path(env["BENCH_SIM_KEY_FILE"]).read_bytes(), password=None)
    public_key = private.public_key()  # type: ignore[union-attr]
    del private
    issuer, client_id = env["BENCH_ISSUER"], env["BENCH_CLIENT_ID"]
    auth_url, launch_url = env["BENCH_AUTH_URL"], env["BENCH_LAUNCH_URL"]

    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> Response:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return Response("ok", mimetype="text/plain")

    @app.get("/lti/login")
    def login() -> Response:
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        query = {
            "scope": "openid",
            "response_type": "id_token",
            "response_mode": "form_post",
            "prompt": "none",
            "client_id": client_id,
            "redirect_uri": launch_url,
            "state": state,
            "nonce": nonce,
            "login_hint": request.args.get("login_hint", ""),
            "lti_message_hint": request.args.get("lti_message_hint", ""),
        }
        response = redirect(auth_url + "?" + urlencode(query), code=302)
        response.set_cookie(
            COOKIE_PREFIX + state,
            state,
            max_age=600,
            path="/lti/",
            secure=True,
            httponly=True,
            samesite="None",
            partitioned=True,
        )
        return response

    @app.post("/lti/launch")
    def launch() -> Response:
        state = request.form.get("state", "")
        if not state or not secrets.compare_digest(request.cookies.get(COOKIE_PREFIX + state, ""), state):
            abort(400)
        try:
            claims = jwt.decode(
                request.form.get("id_token", ""),
                public_key,
                algorithms=["RS256"],
                audience=client_id,
                issuer=issuer,
                leeway=60,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "nonce"]},
            )
        except jwt.InvalidTokenError:
            abort(400)
        try:
            with engine.begin() as conn:
                conn.execute(insert(nonces).values(nonce=str(claims["nonce"])[:128]))
        except IntegrityError:
            abort(400)  # nonce already used
        name = escape(str(claims.get("name", "")))
        page = f'<!doctype html><html lang="nb"><title>Baseline</title><p>Logget inn som {name}.</p></html>'
        response = Response(page, mimetype="text/html")
        response.delete_cookie(COOKIE_PREFIX + state, path="/lti/", secure=True, samesite="None", partitioned=True)
        return response

    return app
