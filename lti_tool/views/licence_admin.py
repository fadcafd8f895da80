"""The licence administrator's pages (seats, people, orders, other administrators)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("licence_admin", __name__, url_prefix="/admin")
