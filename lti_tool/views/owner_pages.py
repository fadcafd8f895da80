"""The course owner's business pages (orders, organisations, parked Canvas steps, sales) and the public order form."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("owner_pages", __name__, url_prefix="/owner")
