"""The course certificate (kursbevis) as a one-page, tagged A4 PDF in the style of PDF/UA-1.

The PDF is written directly rather than through an HTML-to-PDF engine because issuing runs in bulk: this renderer
does well over a hundred certificates per second per core (see pdfwriter for the once-per-process font work).

Layout is a plain top-to-bottom flow: every paragraph is wrapped to its box with the fonts' own advance widths, the
holder's name shrinks before it wraps, and when a programme's text is too long for the page the whole flow is
scaled down step by step to a floor instead of being clipped. `layout_certificate` returns the placed lines so tests
can check that nothing leaves its box or the page.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import accumulate
from urllib.parse import quote
from xml.sax.saxutils import escape

import segno

from kurspakke.certificates.pdfwriter import (
    BASE_REPERTOIRE,
    REPLACEMENT,
    FontMetrics,
    FontSubset,
    PdfWriter,
    embed_font,
    font_metrics,
    font_subsets,
    num,
    ref,
    text_string,
    utf16_hex,
)

MONTHS_NB = (
    "januar",
    "februar",
    "mars",
    "april",
    "mai",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "desember",
)


@dataclass(frozen=True)
class CertificateLabels:
    organisation: str = "Organisasjon"
    completed_on: str = "Fullført"
    mentor: str = "Mentor"
    issuer: str = "Utstedt av"
    code: str = "Verifiseringskode"
    verify_at: str = "Kontroller kursbeviset på"
    qr_alt: str = "QR-kode som lenker til kontrollsiden for kursbeviset: {url}"
    months: tuple[str, ...] = MONTHS_NB

    def long_date(self, value: datetime.date) -> str:
        if len(self.months) != 12:
            raise ValueError(f"CertificateLabels.months needs 12 month names, got {len(self.months)}")
        return f"{value.day}. {self.months[value.month - 1]} {value.year}"


@dataclass(frozen=True)
class CertificateDocument:
    title: str
    name: str
    statement: str
    programme_title: str
    organisation: str
    completed_on: datetime.date
    issuer: str
    code: str
    verify_url: str
    learning_goals_heading: str = ""
    learning_goals: tuple[str, ...] = ()
    modules_heading: str = ""
    module_titles: tuple[str, ...] = ()
    mentor: str = ""
    signatories: tuple[str, ...] = ()
    note: str = ""
    lang: str = "nb-NO"
    labels: CertificateLabels = CertificateLabels()
    # The PDF's creation date. Not the wall clock, so a re-render gives identical bytes; defaults to completed_on.
    issued_at: datetime.datetime | None = None


PAGE_WIDTH = 595.28
PAGE_HEIGHT = 841.89
MM = 72 / 25.4
LEFT = 25 * MM
RIGHT = PAGE_WIDTH - 25 * MM
TOP = PAGE_HEIGHT - 22 * MM
BOTTOM_MARGIN = 18 * MM
QR_SIZE = 30 * MM  # the whole symbol, quiet zone included
QUIET_ZONE = 4  # modules
NAME_MAX = 26.0
NAME_MIN = 14.0
MIN_SCALE = 0.6  # body text 10.5 pt becomes 6.3 pt at the floor: small, still legible in print
_SCALES = tuple(round(1 - 0.04 * n, 2) for n in range(round((1 - MIN_SCALE) / 0.04) + 1))

INK = "0.1 0.1 0.1"
ACCENT = "0.07 0.22 0.4"
MUTED = "0.3 0.3 0.3"


@dataclass(frozen=True)
class Line:
    text: str  # as drawn, after any substitution
    x: float
    y: float  # baseline
    size: float
    width: float
    bold: bool
    left: float  # the box the line has to stay inside
    right: float
    top: float
    bottom: float  # lowest point a glyph of the font can reach
    actual: tuple[tuple[int, int, str], ...] = ()  # (start, end, original) for substituted characters
    # The line was broken at a space. The space is still drawn (it has no ink, and `width` leaves it out) so that
    # extracted and tagged text reads "og omsorg" across the break rather than "ogomsorg".
    space_after: bool = False


@dataclass(frozen=True)
class Element:
    role: str
    lines: tuple[Line, ...] = ()
    kids: tuple[Element, ...] = ()
    color: str = INK
    alt: str = ""
    bbox: tuple[float, float, float, float] | None = None
    numbering: str = ""
    uri: str = ""


@dataclass(frozen=True)
class QrCode:
    x: float  # lower left corner of the dark modules' square (the quiet zone lies around it)
    y: float
    module: float
    matrix: tuple[bytes, ...]

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        quiet = QUIET_ZONE * self.module
        side = len(self.matrix) * self.module
        return (self.x - quiet, self.y - quiet, self.x + side + quiet, self.y + side + quiet)


Rule = tuple[float, float, float, float, float]  # a decorative line: x0, y0, x1, y1, width


@dataclass(frozen=True)
class Layout:
    elements: tuple[Element, ...]
    rules: tuple[Rule, ...]
    qr: QrCode
    scale: float

    def lines(self) -> list[Line]:
        found: list[Line] = []

        def walk(elements: tuple[Element, ...]) -> None:
            for element in elements:
                found.extend(element.lines)
                walk(element.kids)

        walk(self.elements)
        return found


# --- text ------------------------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200d\u2060\ufeff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SPACES = re.compile(r" {2,}")
_WORD = re.compile(r"[^ ]+")
_BREAK_AFTER = frozenset("-/–—_.")


@dataclass(frozen=True)
class _Text:
    text: str
    actual: tuple[tuple[int, int, str], ...] = ()


@lru_cache(maxsize=4096)
def _substitute(char: str) -> str:
    """What to draw for a character the fonts lack: its compatibility decomposition, else its base letters.

    A person's name must always print, so this never fails; U+FFFD is the last resort. The original character is
    kept as /ActualText, so copying and screen readers still get the real name.
    """
    coverage = font_metrics().coverage
    decomposed = unicodedata.normalize("NFKD", char).replace(" ", "")
    if decomposed and decomposed != char and coverage.issuperset(decomposed):
        return decomposed
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    if base and base != char and coverage.issuperset(base):
        return base
    return REPLACEMENT


def _clean(value: str) -> str:
    """NFC, no control or invisible characters, single spaces: as printed, and as the metadata may hold it."""
    value = _SURROGATE.sub(REPLACEMENT, _INVISIBLE.sub("", _CONTROL.sub(" ", value)))
    return _SPACES.sub(" ", unicodedata.normalize("NFC", value)).strip(" ")


def _prepare(value: str, coverage: frozenset[str]) -> _Text:
    value = _clean(value)
    if coverage.issuperset(value):
        return _Text(value)
    parts: list[str] = []
    actual: list[tuple[int, int, str]] = []
    position = 0
    for char in value:
        if char in coverage:
            parts.append(char)
            position += 1
            continue
        drawn = _substitute(char)
        if actual and actual[-1][1] == position:  # neighbours share one ActualText span
            start, _, original = actual.pop()
            actual.append((start, position + len(drawn), original + char))
        else:
            actual.append((position, position + len(drawn), char))
        parts.append(drawn)
        position += len(drawn)
    return _Text("".join(parts), tuple(actual))


def _break_point(text: _Text, prefix: list[float], start: int, end: int, limit: float) -> int:
    """Where to cut a word that is wider than its box: after a hyphen or slash if one fits, else at the last
    character that fits, never inside a substituted span or before a combining mark."""

    def allowed(p: int) -> bool:
        return not unicodedata.combining(text.text[p]) and not any(a < p < b for a, b, _ in text.actual)

    fitting = [p for p in range(start + 1, end) if prefix[p] - prefix[start] <= limit and allowed(p)]
    if not fitting:
        return next((p for p in range(start + 1, end) if allowed(p)), end)
    soft = [p for p in fitting if text.text[p - 1] in _BREAK_AFTER and prefix[p] - prefix[start] >= 0.4 * limit]
    return soft[-1] if soft else fitting[-1]


def _wrap(text: _Text, widths: dict[str, float], size: float, max_width: float) -> list[tuple[int, int, float]]:
    """Greedy line breaking at spaces: (start, end, width in points) for each line."""
    if not text.text:
        return []
    prefix = [0.0, *accumulate(map(widths.__getitem__, text.text))]
    limit = max_width * 1000 / size - 1e-6
    ranges: list[tuple[int, int]] = []
    start = end = -1
    for match in _WORD.finditer(text.text):
        word_start, word_end = match.span()
        if start >= 0 and prefix[word_end] - prefix[start] <= limit:
            end = word_end
            continue
        if start >= 0:
            ranges.append((start, end))
        start = word_start
        while prefix[word_end] - prefix[start] > limit:
            cut = _break_point(text, prefix, start, word_end, limit)
            if cut >= word_end:
                break
            ranges.append((start, cut))
            start = cut
        end = word_end
    ranges.append((start, end))
    return [(a, b, (prefix[b] - prefix[a]) * size / 1000) for a, b in ranges]


class _Flow:
    """A cursor moving down the page that turns text into placed lines."""

    def __init__(self, metrics: FontMetrics, top: float) -> None:
        self.metrics = metrics
        self.y = top

    def gap(self, points: float) -> None:
        self.y -= points

    def block(
        self,
        text: _Text,
        *,
        size: float,
        left: float = LEFT,
        right: float = RIGHT,
        bold: bool = False,
        leading: float = 1.35,
        center: bool = False,
    ) -> tuple[Line, ...]:
        widths = self.metrics.widths["bold" if bold else "regular"]
        ascent, descent = self.metrics.ascent * size, self.metrics.descent * size
        line_height = size * leading
        half_leading = (line_height - ascent - descent) / 2
        lines = []
        for start, end, width in _wrap(text, widths, size, right - left):
            baseline = self.y - half_leading - ascent
            x = left + (right - left - width) / 2 if center else left
            actual = tuple((a - start, b - start, o) for a, b, o in text.actual if start <= a and b <= end)
            lines.append(
                Line(
                    text.text[start:end],
                    x,
                    baseline,
                    size,
                    width,
                    bold,
                    left,
                    right,
                    baseline + ascent,
                    baseline - descent,
                    actual,
                    end < len(text.text),
                )
            )
            self.y -= line_height
        return tuple(lines)

    def label(self, text: str, first: Line, right: float, *, bold: bool = False) -> Line:
        """A list item's bullet or number, right-aligned at `right` on the baseline of the item's first line."""
        size = first.size
        width = sum(map(self.metrics.widths["bold" if bold else "regular"].__getitem__, text)) * size / 1000
        return Line(text, right - width, first.y, size, width, bold, LEFT, right, first.top, first.bottom)


# --- layout ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Texts:
    title: _Text
    name: _Text
    statement: _Text
    programme: _Text
    details: tuple[_Text, ...]
    goals_heading: _Text
    goals: tuple[_Text, ...]
    modules_heading: _Text
    modules: tuple[_Text, ...]
    signatories: tuple[_Text, ...]
    note: _Text
    code: _Text
    verify_at: _Text
    url: _Text


def _texts(doc: CertificateDocument, coverage: frozenset[str]) -> _Texts:
    labels = doc.labels

    def prep(value: str) -> _Text:
        return _prepare(value, coverage)

    details = [
        (labels.organisation, doc.organisation),
        (labels.completed_on, labels.long_date(doc.completed_on)),
        (labels.mentor, doc.mentor),
        (labels.issuer, doc.issuer),
    ]
    return _Texts(
        title=prep(doc.title),
        name=prep(doc.name),
        statement=prep(doc.statement),
        programme=prep(doc.programme_title),
        details=tuple(prep(f"{label}: {value}") for label, value in details if value.strip()),
        goals_heading=prep(doc.learning_goals_heading),
        goals=tuple(t for t in map(prep, doc.learning_goals) if t.text),
        modules_heading=prep(doc.modules_heading),
        modules=tuple(t for t in map(prep, doc.module_titles) if t.text),
        signatories=tuple(t for t in map(prep, doc.signatories) if t.text),
        note=prep(doc.note),
        code=prep(f"{labels.code}: {doc.code}"),
        verify_at=prep(labels.verify_at),
        url=prep(doc.verify_url),
    )


def _list(flow: _Flow, items: tuple[_Text, ...], scale: float, numbered: bool) -> Element:
    label_right = LEFT + (14 if numbered else 8) * scale
    body_left = LEFT + (20 if numbered else 16) * scale
    entries = []
    for n, item in enumerate(items, start=1):
        body = flow.block(item, size=10.5 * scale, left=body_left, leading=1.3)
        label = flow.label(f"{n}." if numbered else "•", body[0], label_right)
        entries.append(Element("LI", kids=(Element("Lbl", (label,)), Element("LBody", body))))
        flow.gap(3 * scale)
    return Element("L", kids=tuple(entries), numbering="Decimal" if numbered else "Disc")


def _bottom(texts: _Texts, metrics: FontMetrics, url: str, alt: str) -> tuple[list[Element], QrCode, float]:
    """The QR code and the verification lines beside it, anchored to the bottom margin; returns their top too."""
    matrix = tuple(bytes(row) for row in segno.make(url, error="m", micro=False).matrix)
    module = QR_SIZE / (len(matrix) + 2 * QUIET_ZONE)
    side = module * len(matrix)
    # The dark modules line up with the text margin; the quiet zone lies in the page margin.
    qr = QrCode(LEFT, BOTTOM_MARGIN, module, matrix)
    left = LEFT + side + 6 * MM
    measure = _Flow(metrics, 0)
    code = measure.block(texts.code, size=10, left=left, leading=1.5)
    verify = measure.block(texts.verify_at, size=9.5, left=left)
    link = measure.block(texts.url, size=9.5, left=left)
    height = -measure.y
    top = max(BOTTOM_MARGIN + height, BOTTOM_MARGIN + (side + height) / 2)
    flow = _Flow(metrics, top)
    code = flow.block(texts.code, size=10, left=left, leading=1.5)
    verify = flow.block(texts.verify_at, size=9.5, left=left)
    link = flow.block(texts.url, size=9.5, left=left)
    elements = [
        Element("Figure", alt=alt, bbox=qr.bbox),
        Element("P", code),
        Element(
            "P",
            (*verify[:-1], replace(verify[-1], space_after=True)) if verify else (),
            kids=(Element("Link", link, color=ACCENT, uri=url),),
        ),
    ]
    return elements, qr, max(top, BOTTOM_MARGIN + side)


def _name_size(flow: _Flow, name: _Text, scale: float) -> float:
    em = sum(map(flow.metrics.widths["bold"].__getitem__, name.text)) / 1000
    fitting = (RIGHT - LEFT) / em if em else NAME_MAX
    # The floor does not scale with the rest of the page: the name is what the certificate is for.
    return max(NAME_MIN, min(NAME_MAX * scale, int(fitting * 4) / 4))


def _flow(texts: _Texts, metrics: FontMetrics, scale: float, floor: float) -> tuple[list[Element], list[Rule], bool]:
    s = scale
    flow = _Flow(metrics, TOP)
    elements: list[Element] = []
    rules: list[Rule] = []
    elements.append(
        Element("H1", flow.block(texts.title, size=28 * s, bold=True, leading=1.2, center=True), color=ACCENT)
    )
    flow.gap(12 * s)
    name_size = _name_size(flow, texts.name, s)
    elements.append(Element("P", flow.block(texts.name, size=name_size, bold=True, leading=1.25, center=True)))
    flow.gap(6 * s)
    elements.append(Element("P", flow.block(texts.statement, size=13 * s, center=True)))
    flow.gap(4 * s)
    programme = flow.block(texts.programme, size=16 * s, bold=True, leading=1.3, center=True)
    elements.append(Element("P", programme, color=ACCENT))
    flow.gap(14 * s)
    middle = PAGE_WIDTH / 2
    rules.append((middle - 60, flow.y, middle + 60, flow.y, 0.8))
    flow.gap(14 * s)
    for detail in texts.details:
        elements.append(Element("P", flow.block(detail, size=11 * s, leading=1.45)))
    for heading, items, numbered in (
        (texts.goals_heading, texts.goals, False),
        (texts.modules_heading, texts.modules, True),
    ):
        if not heading.text and not items:
            continue
        flow.gap(12 * s)
        if heading.text:
            elements.append(Element("H2", flow.block(heading, size=12 * s, bold=True), color=ACCENT))
            flow.gap(3 * s)
        if items:
            elements.append(_list(flow, items, s, numbered))
    if texts.signatories:
        flow.gap(16 * s)
        per_row = min(3, len(texts.signatories))
        column = (RIGHT - LEFT - (per_row - 1) * 18) / per_row
        for row in range(0, len(texts.signatories), per_row):
            top, lowest = flow.y, flow.y
            for n, signatory in enumerate(texts.signatories[row : row + per_row]):
                left = LEFT + n * (column + 18)
                rules.append((left, top, left + column, top, 0.5))
                flow.y = top - 4 * s
                lines = flow.block(signatory, size=10 * s, left=left, right=left + column, leading=1.3, center=True)
                elements.append(Element("P", lines))
                lowest = min(lowest, flow.y)
            flow.y = lowest - 8 * s
    if texts.note.text:
        flow.gap(8 * s)
        elements.append(Element("P", flow.block(texts.note, size=8.5 * s), color=MUTED))
    # An empty field (no title, say) leaves no empty structure element behind.
    return [e for e in elements if e.lines or e.kids], rules, flow.y >= floor


def layout_certificate(doc: CertificateDocument) -> Layout:
    """Place every line of the certificate; raises ValueError only if even the smallest scale cannot fit."""
    metrics = font_metrics()
    texts = _texts(doc, metrics.coverage)
    url = quote(doc.verify_url.strip(), safe=":/?#[]@!$&'()*+,;=%~")
    alt = " ".join(doc.labels.qr_alt.replace("{url}", url).split())
    bottom, qr, bottom_top = _bottom(texts, metrics, url, alt)
    for scale in _SCALES:
        elements, rules, fits = _flow(texts, metrics, scale, bottom_top + 18)
        if fits:
            return Layout(tuple(elements + bottom), tuple(rules), qr, scale)
    raise ValueError("the certificate's text does not fit on one page even at the smallest type size")


# --- PDF -------------------------------------------------------------------------------------------------------------


def _xmp(title: str, lang: str, created: str) -> bytes:
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:pdf="http://ns.adobe.com/pdf/1.3/" xmlns:pdfuaid="http://www.aiim.org/pdfua/ns/id/">
   <dc:format>application/pdf</dc:format>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{escape(title)}</rdf:li></rdf:Alt></dc:title>
   <dc:language><rdf:Bag><rdf:li>{escape(lang)}</rdf:li></rdf:Bag></dc:language>
   <xmp:CreateDate>{created}</xmp:CreateDate>
   <xmp:ModifyDate>{created}</xmp:ModifyDate>
   <xmp:MetadataDate>{created}</xmp:MetadataDate>
   <xmp:CreatorTool>kurspakke</xmp:CreatorTool>
   <pdf:Producer>kurspakke</pdf:Producer>
   <pdfuaid:part>1</pdfuaid:part>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>""".encode()


def _fonts_for(layout: Layout) -> tuple[FontSubset, FontSubset]:
    chars = {char for line in layout.lines() for char in line.text}
    return font_subsets(frozenset(cp for cp in map(ord, chars) if cp not in BASE_REPERTOIRE))


def _draw_text(ops: list[str], lines: tuple[Line, ...], fonts: tuple[FontSubset, FontSubset]) -> None:
    ops.append("BT")
    current: tuple[bool, float] | None = None
    for line in lines:
        if current != (line.bold, line.size):
            current = (line.bold, line.size)
            ops.append(f"/F{2 if line.bold else 1} {num(line.size)} Tf")
        hexes = "".join(map(fonts[line.bold].cid_hex.__getitem__, line.text + (" " if line.space_after else "")))
        ops.append(f"1 0 0 1 {num(line.x)} {num(line.y)} Tm <{hexes}> Tj")
    ops.append("ET")


def _original(line: Line) -> str:
    parts, position = [], 0
    for start, end, original in line.actual:
        parts += [line.text[position:start], original]
        position = end
    return "".join(parts) + line.text[position:] + (" " if line.space_after else "")


def _draw_qr(ops: list[str], qr: QrCode) -> None:
    # Module units inside a scaled coordinate system keep the numbers small; one fill of all runs leaves no seams.
    ops.append(f"q 0 g {num(qr.module)} 0 0 {num(qr.module)} {num(qr.x)} {num(qr.y)} cm")
    size = len(qr.matrix)
    for r, row in enumerate(qr.matrix):
        y = size - 1 - r
        for match in re.finditer(rb"\x01+", row):
            ops.append(f"{match.start()} {y} {match.end() - match.start()} 1 re")
    ops.append("f Q")


def _pdf_date(moment: datetime.datetime) -> tuple[str, str]:
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)).astimezone(datetime.UTC)
    return moment.strftime("D:%Y%m%d%H%M%S+00'00'"), moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _artifacts(layout: Layout) -> list[str]:
    """The double border and the rules: decoration, so screen readers and text extraction skip it."""
    ops = ["/Artifact <</Type /Layout>> BDC q", f"{ACCENT} RG"]
    for inset, width in ((10 * MM, 1.2), (10 * MM + 2.5, 0.4)):
        box = (inset, inset, PAGE_WIDTH - 2 * inset, PAGE_HEIGHT - 2 * inset)
        ops.append(f"{num(width)} w {' '.join(map(num, box))} re S")
    for x0, y0, x1, y1, width in layout.rules:
        ops.append(f"{num(width)} w {num(x0)} {num(y0)} m {num(x1)} {num(y1)} l S")
    ops.append("Q EMC")
    return ops


class _Tagger:
    """Writes the structure elements and, in the same depth-first order, the marked content they point to, so the
    reading order of the structure tree and of the content stream agree."""

    def __init__(self, writer: PdfWriter, page: int, fonts: tuple[FontSubset, FontSubset], qr: QrCode) -> None:
        self.writer, self.page, self.fonts, self.qr = writer, page, fonts, qr
        self.ops: list[str] = []
        self.by_mcid: list[int] = []  # the structure element of each MCID: the page's entry in the parent tree
        self.annotations: list[tuple[int, int]] = []  # (annotation, its Link element); StructParent n is index + 1
        self.used: tuple[set[str], set[str]] = (set(), set())

    def _begin(self, tag: str, number: int, properties: str = "") -> bytes:
        mcid = len(self.by_mcid)
        self.by_mcid.append(number)
        self.ops.append(f"/{tag} <</MCID {mcid}{properties}>> BDC")
        return b"%d" % mcid

    def _text(self, element: Element, number: int) -> list[bytes]:
        kids = []
        self.ops.append(f"{element.color} rg")
        for line in element.lines:
            self.used[line.bold].update(line.text + " ")
        # A line that shows substitutes gets marked content of its own carrying the real text as /ActualText. It
        # sits on that sequence's own Span tag rather than on a nested Span: poppler ends the enclosing sequence at
        # the first nested EMC, and readers look for ActualText on a Span.
        substituted = any(line.actual for line in element.lines)
        for group in ((line,) for line in element.lines) if substituted else (element.lines,):
            if group[0].actual:
                kids.append(self._begin("Span", number, f" /ActualText <FEFF{utf16_hex(_original(group[0]))}>"))
            else:
                kids.append(self._begin(element.role, number))
            _draw_text(self.ops, group, self.fonts)
            self.ops.append("EMC")
        return kids

    def _link(self, element: Element, number: int) -> bytes:
        annotation = self.writer.reserve()
        self.annotations.append((annotation, number))
        x0 = min(line.x for line in element.lines)
        x1 = max(line.x + line.width for line in element.lines)
        rect = " ".join(map(num, (x0, element.lines[-1].bottom, x1, element.lines[0].top))).encode()
        uri = text_string(element.uri)
        self.writer.put(
            annotation,
            b"<</Type /Annot /Subtype /Link /Rect [%s] /Border [0 0 0] /F 4 /P %s /StructParent %d"
            b" /Contents %s /A <</S /URI /URI %s>>>>" % (rect, ref(self.page), len(self.annotations), uri, uri),
        )
        return b"<</Type /OBJR /Obj %s /Pg %s>>" % (ref(annotation), ref(self.page))

    def emit(self, element: Element, parent: int) -> int:
        number = self.writer.reserve()
        kids: list[bytes] = []
        if element.role == "Figure":
            kids.append(self._begin("Figure", number))
            _draw_qr(self.ops, self.qr)
            self.ops.append("EMC")
        elif element.lines:
            kids += self._text(element, number)
        kids += [ref(self.emit(kid, number)) for kid in element.kids]
        if element.uri and element.lines:
            kids.append(self._link(element, number))
        extra = b""
        if element.alt:
            extra += b" /Alt " + text_string(element.alt)
        if element.bbox:
            extra += b" /A <</O /Layout /Placement /Block /BBox [%s]>>" % " ".join(map(num, element.bbox)).encode()
        if element.numbering:
            extra += b" /A <</O /List /ListNumbering /%s>>" % element.numbering.encode()
        self.writer.put(
            number,
            b"<</Type /StructElem /S /%s /P %s /Pg %s /K [%s]%s>>"
            % (element.role.encode(), ref(parent), ref(self.page), b" ".join(kids), extra),
        )
        return number


def render_pdf(doc: CertificateDocument) -> bytes:
    """The certificate as PDF bytes. Thread-safe and deterministic: the same document gives the same bytes."""
    layout = layout_certificate(doc)
    fonts = _fonts_for(layout)
    writer = PdfWriter()
    catalog, pages, page, tree_root = (writer.reserve() for _ in range(4))
    tagger = _Tagger(writer, page, fonts, layout.qr)
    tagger.ops += _artifacts(layout)
    document = tagger.emit(Element("Document", kids=layout.elements), tree_root)
    content = writer.add_stream("\n".join(tagger.ops).encode())
    regular = embed_font(writer, fonts[0], tagger.used[0])
    bold = embed_font(writer, fonts[1], tagger.used[1])

    nums = b"0 [%s]" % b" ".join(map(ref, tagger.by_mcid))
    nums += b"".join(b" %d %s" % (n, ref(link)) for n, (_, link) in enumerate(tagger.annotations, start=1))
    writer.put(
        tree_root,
        b"<</Type /StructTreeRoot /K [%s] /ParentTree <</Nums [%s]>> /ParentTreeNextKey %d>>"
        % (ref(document), nums, len(tagger.annotations) + 1),
    )
    annotations = b" ".join(ref(a) for a, _ in tagger.annotations)
    writer.put(
        page,
        b"<</Type /Page /Parent %s /MediaBox [0 0 %s %s] /Resources <</Font <</F1 %s /F2 %s>>>> /Contents %s"
        b" /StructParents 0 /Tabs /S%s>>"
        % (
            ref(pages),
            num(PAGE_WIDTH).encode(),
            num(PAGE_HEIGHT).encode(),
            ref(regular),
            ref(bold),
            ref(content),
            b" /Annots [%s]" % annotations if annotations else b"",
        ),
    )
    writer.put(pages, b"<</Type /Pages /Kids [%s] /Count 1>>" % ref(page))

    title = " – ".join(part for part in (_clean(doc.title), _clean(doc.name)) if part)
    pdf_date, xmp_date = _pdf_date(
        doc.issued_at or datetime.datetime.combine(doc.completed_on, datetime.time(), datetime.UTC)
    )
    metadata = writer.add_stream(
        _xmp(title, _clean(doc.lang), xmp_date), b"/Type /Metadata /Subtype /XML", compress=False
    )
    info = writer.add(
        b"<</Title %s /Producer (kurspakke) /Creator (kurspakke) /CreationDate (%s) /ModDate (%s)>>"
        % (text_string(title), pdf_date.encode(), pdf_date.encode())
    )
    writer.put(
        catalog,
        b"<</Type /Catalog /Pages %s /StructTreeRoot %s /MarkInfo <</Marked true>> /Lang %s"
        b" /ViewerPreferences <</DisplayDocTitle true>> /Metadata %s>>"
        % (ref(pages), ref(tree_root), text_string(_clean(doc.lang)), ref(metadata)),
    )
    return writer.to_bytes(catalog, info)
