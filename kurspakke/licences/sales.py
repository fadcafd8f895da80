"""Sales per month for the seller (issue 7): confirmed orders, net, VAT and total in øre, per month in
Europe/Oslo and per VAT rate, and the same as a CSV file.

What counts, and when — chosen so a month already reported never changes afterwards:

- an order is a sale in the month it was *confirmed* (a pending order is no sale yet);
- a credited order stays a sale in its confirmation month, and its credit note is the same amounts negative in the
  month it was *credited*;
- a confirmed order that is cancelled later is treated like a credit (negative in the month of the cancellation);
  an order cancelled while pending was never a sale and does not appear at all.

The rows are read with one Core select of plain columns (no ORM objects) and summed here: the month is a calendar
month in Europe/Oslo, which neither SQLite nor PostgreSQL can compute the same way in SQL.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kurspakke.licences.models import Order, OrderStatus

OSLO = ZoneInfo("Europe/Oslo")
CSV_HEADER = ("måned", "mva-sats", "salg", "krediteringer", "lisenser", "netto", "mva", "totalt")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NBSP = "\u00a0"


@dataclass
class SalesLine:
    """One month and VAT rate. ``sales`` counts confirmations, ``credits`` credit notes (and cancellations of
    confirmed orders); ``quantity`` and the amounts are net of the credits (a credit-only month is negative)."""

    month: str  # YYYY-MM in Europe/Oslo
    vat_rate_percent: int
    sales: int = 0
    credits: int = 0
    quantity: int = 0
    net_ore: int = 0
    vat_ore: int = 0
    total_ore: int = 0

    def add(self, sign: int, quantity: int, net: int, vat: int, total: int) -> None:
        if sign > 0:
            self.sales += 1
        else:
            self.credits += 1
        self.quantity += sign * quantity
        self.net_ore += sign * net
        self.vat_ore += sign * vat
        self.total_ore += sign * total


@dataclass(frozen=True)
class SalesTotals:
    sales: int
    credits: int
    quantity: int
    net_ore: int
    vat_ore: int
    total_ore: int


def format_kr(ore: int) -> str:
    """Money for people: ``375,00 kr``, ``12 345,00 kr`` (non-breaking spaces), ``-375,00 kr``."""
    sign = "-" if ore < 0 else ""
    kroner, rest = divmod(abs(ore), 100)
    grouped = f"{kroner:,}".replace(",", NBSP)
    return f"{sign}{grouped},{rest:02d}{NBSP}kr"


def format_amount(ore: int) -> str:
    """Money for a spreadsheet: ``375,00``, ``-375,00`` (decimal comma, no grouping, no unit)."""
    sign = "-" if ore < 0 else ""
    kroner, rest = divmod(abs(ore), 100)
    return f"{sign}{kroner},{rest:02d}"


def _month(moment: datetime) -> str:
    return str(moment.astimezone(OSLO).strftime("%Y-%m"))


def monthly_sales(session: Session, programme_id: str) -> list[SalesLine]:
    """Sales lines of a programme, ordered by month, then VAT rate."""
    rows = session.execute(
        select(
            Order.status,
            Order.vat_rate_percent,
            Order.quantity,
            Order.net_ore,
            Order.vat_ore,
            Order.total_ore,
            Order.confirmed_at,
            Order.credited_at,
            Order.cancelled_at,
        ).where(Order.programme_id == programme_id, Order.confirmed_at.is_not(None))
    ).all()
    lines: dict[tuple[str, int], SalesLine] = {}

    def line(moment: datetime, rate: int) -> SalesLine:
        key = (_month(moment), rate)
        if key not in lines:
            lines[key] = SalesLine(month=key[0], vat_rate_percent=rate)
        return lines[key]

    for status, rate, quantity, net, vat, total, confirmed_at, credited_at, cancelled_at in rows:
        line(confirmed_at, rate).add(1, quantity, net, vat, total)
        withdrawn_at = credited_at if status is OrderStatus.CREDITED else None
        if status is OrderStatus.CANCELLED:
            withdrawn_at = cancelled_at
        if withdrawn_at is not None:
            line(withdrawn_at, rate).add(-1, quantity, net, vat, total)
    return [lines[key] for key in sorted(lines)]


def sales_totals(lines: Iterable[SalesLine]) -> SalesTotals:
    lines = list(lines)
    return SalesTotals(
        sales=sum(x.sales for x in lines),
        credits=sum(x.credits for x in lines),
        quantity=sum(x.quantity for x in lines),
        net_ore=sum(x.net_ore for x in lines),
        vat_ore=sum(x.vat_ore for x in lines),
        total_ore=sum(x.total_ore for x in lines),
    )


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def sales_csv(lines: Iterable[SalesLine]) -> bytes:
    """UTF-8 with BOM, ``;``-separated, a header row, one row per month and VAT rate, amounts with a decimal comma.
    Amounts are numbers the tool wrote itself (a negative one is a credit, not a formula); every text cell is
    neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for x in lines:
        writer.writerow(
            [
                neutralise(x.month),
                str(x.vat_rate_percent),
                str(x.sales),
                str(x.credits),
                str(x.quantity),
                format_amount(x.net_ore),
                format_amount(x.vat_ore),
                format_amount(x.total_ore),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


__all__ = [
    "CSV_HEADER",
    "SalesLine",
    "SalesTotals",
    "format_amount",
    "format_kr",
    "monthly_sales",
    "neutralise",
    "sales_csv",
    "sales_totals",
]
