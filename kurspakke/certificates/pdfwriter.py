"""The low-level half of the certificate PDF: a small object writer and DejaVu Sans embedded as Type0 fonts.

Speed is the point of writing PDF by hand, so everything that does not depend on the certificate is done once per
process: the font files are subset by fontTools to a broad fixed repertoire, compressed, and kept with their
metrics. A certificate then only writes its own widths array and ToUnicode map, which are small.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from fontTools import subset as ft_subset
from fontTools.ttLib import TTFont

Weight = Literal["regular", "bold"]
FONT_FILES: dict[Weight, str] = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf"}
REPLACEMENT = "\ufffd"

# Names on a Norwegian certificate are overwhelmingly Latin-script, so the once-per-process subset covers every Latin
# block plus the punctuation people type; anything else gets its own cached subset when it actually occurs.
_REPERTOIRE_RANGES = (
    (0x0020, 0x007E),  # Basic Latin
    (0x00A0, 0x00FF),  # Latin-1 Supplement
    (0x0100, 0x024F),  # Latin Extended-A and -B
    (0x02B0, 0x02FF),  # spacing modifier letters: ʼ and ʻ occur in transliterated names
    (0x0300, 0x036F),  # combining diacritics, for letters with no precomposed form
    (0x1E00, 0x1EFF),  # Latin Extended Additional (Vietnamese and others)
    (0x2000, 0x206F),  # General Punctuation: dashes, quotes, spaces, bullet, ellipsis
    (0x20AC, 0x20AC),  # €
    (0x2116, 0x2116),  # №
    (0x2122, 0x2122),  # ™
    (0x2190, 0x2193),  # arrows
    (0x2212, 0x2212),  # minus
    (0xFFFD, 0xFFFD),  # the last-resort replacement for characters the font lacks
)
BASE_REPERTOIRE: frozenset[int] = frozenset(cp for lo, hi in _REPERTOIRE_RANGES for cp in range(lo, hi + 1))
_EXTRA_CACHE_SIZE = 64


def _font_bytes(weight: Weight) -> bytes:
    return resources.files(__package__).joinpath("fonts", FONT_FILES[weight]).read_bytes()


@dataclass(frozen=True)
class FontMetrics:
    """What layout needs from the full fonts; subsets have the same advances, so layout never waits for subsetting."""

    coverage: frozenset[str]  # characters both weights can draw
    widths: dict[Weight, dict[str, float]]  # advance in 1/1000 em, rounded as written into /W
    ascent: float  # in em
    descent: float  # in em, positive


@dataclass(frozen=True)
class FontSubset:
    weight: Weight
    base_font: bytes  # PDF name, with the subset tag
    cid_hex: dict[str, str]  # character -> its CID as 4 hex digits, ready for a hex string
    cid: dict[str, int]
    widths: dict[str, float]
    font_file: bytes  # compressed FontFile2 stream data
    font_file_length: int  # /Length1: the uncompressed size
    cid_to_gid: bytes  # compressed CIDToGIDMap stream data
    descriptor: bytes  # FontDescriptor entries other than /FontName and /FontFile2


def _width(advance: int, units_per_em: int) -> float:
    return round(advance * 1000 / units_per_em, 3)


def _load_metrics() -> FontMetrics:
    coverage: set[str] | None = None
    widths: dict[Weight, dict[str, float]] = {}
    ascent = descent = 0.0
    for weight in FONT_FILES:
        font = TTFont(io.BytesIO(_font_bytes(weight)), lazy=True, recalcTimestamp=False)
        upem = font["head"].unitsPerEm
        hmtx = font["hmtx"]
        cmap = font.getBestCmap()
        widths[weight] = {chr(cp): _width(hmtx[name][0], upem) for cp, name in cmap.items()}
        chars = set(widths[weight])
        coverage = chars if coverage is None else coverage & chars
        ascent = max(ascent, font["hhea"].ascent / upem)
        descent = max(descent, -font["hhea"].descent / upem)
    assert coverage is not None and REPLACEMENT in coverage
    return FontMetrics(frozenset(coverage), widths, ascent, descent)


def _subset(weight: Weight, codepoints: frozenset[int]) -> FontSubset:
    font = TTFont(io.BytesIO(_font_bytes(weight)), recalcTimestamp=False)
    options = ft_subset.Options()
    options.hinting = False  # hints matter for low-resolution screens, not for a printed page; they double the size
    options.glyph_names = False
    options.notdef_outline = True
    options.layout_features = []  # text is set glyph by glyph, without shaping
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # keep the copyright and licence records the licence requires
    options.name_languages = [0x0409]
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "MATH", "FFTM", "gasp"]
    subsetter = ft_subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints)
    subsetter.subset(font)

    cmap = font.getBestCmap()
    gid_of = {name: gid for gid, name in enumerate(font.getGlyphOrder())}
    upem = font["head"].unitsPerEm
    hmtx = font["hmtx"]
    # Our own dense CIDs, one per character rather than per glyph: characters that share a glyph still get
    # distinct ToUnicode entries, so text extraction gives back exactly what was written.
    chars = sorted(cmap)
    cid = {chr(cp): n for n, cp in enumerate(chars, start=1)}
    gids = bytearray(2 * (len(chars) + 1))
    for cp, n in zip(chars, range(1, len(chars) + 1), strict=True):
        gids[2 * n : 2 * n + 2] = gid_of[cmap[cp]].to_bytes(2, "big")

    buffer = io.BytesIO()
    font.save(buffer)
    data = buffer.getvalue()
    head = font["head"]
    cap_height = font["glyf"][cmap[ord("H")]].yMax  # DejaVu's OS/2 table (version 1) has no sCapHeight
    tag = "".join(chr(65 + b % 26) for b in hashlib.sha256(repr((weight, chars)).encode()).digest()[:6])
    scale = 1000 / upem
    bbox = " ".join(str(round(v * scale)) for v in (head.xMin, head.yMin, head.xMax, head.yMax))
    descriptor = (
        f"/Flags 32 /FontBBox [{bbox}] /ItalicAngle 0 /Ascent {round(font['hhea'].ascent * scale)}"
        f" /Descent {round(font['hhea'].descent * scale)} /CapHeight {round(cap_height * scale)}"
        f" /StemV {140 if weight == 'bold' else 80}"
    ).encode()
    return FontSubset(
        weight=weight,
        base_font=f"/{tag}+{font['name'].getDebugName(6)}".encode(),
        cid_hex={ch: f"{n:04X}" for ch, n in cid.items()},
        cid=cid,
        widths={chr(cp): _width(hmtx[cmap[cp]][0], upem) for cp in chars},
        font_file=zlib.compress(data, 9),
        font_file_length=len(data),
        cid_to_gid=zlib.compress(bytes(gids), 9),
        descriptor=descriptor,
    )


_lock = threading.Lock()
_metrics: FontMetrics | None = None
_base: tuple[FontSubset, FontSubset] | None = None
_extra: OrderedDict[frozenset[int], tuple[FontSubset, FontSubset]] = OrderedDict()


def font_metrics() -> FontMetrics:
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _load_metrics()
    return _metrics


def font_subsets(extra: frozenset[int] = frozenset()) -> tuple[FontSubset, FontSubset]:
    """(regular, bold) subsets holding the base repertoire plus `extra`.

    The base pair is built once per process; pairs with extra characters (a Cyrillic or Greek name, say) are built
    when first needed and the most recently used of them are kept.
    """
    global _base
    if not extra:
        if _base is None:
            with _lock:
                if _base is None:
                    _base = (_subset("regular", BASE_REPERTOIRE), _subset("bold", BASE_REPERTOIRE))
        return _base
    with _lock:
        found = _extra.get(extra)
        if found is None:
            codepoints = BASE_REPERTOIRE | extra
            found = (_subset("regular", codepoints), _subset("bold", codepoints))
            _extra[extra] = found
            while len(_extra) > _EXTRA_CACHE_SIZE:
                _extra.popitem(last=False)
        else:
            _extra.move_to_end(extra)
        return found


# --- PDF syntax -----------------------------------------------------------------------------------------------------


def num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def ref(number: int) -> bytes:
    return b"%d 0 R" % number


def text_string(value: str) -> bytes:
    """A PDF text string: literal for printable ASCII, otherwise UTF-16BE with a byte order mark."""
    if value.isascii() and value.isprintable():
        return b"(" + value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode() + b")"
    return b"<FEFF" + value.encode("utf-16-be").hex().upper().encode() + b">"


def utf16_hex(value: str) -> str:
    return value.encode("utf-16-be").hex().upper()


class PdfWriter:
    """Collects numbered objects and writes them with a classic cross-reference table."""

    def __init__(self) -> None:
        self._bodies: list[bytes] = []

    def reserve(self) -> int:
        self._bodies.append(b"")
        return len(self._bodies)

    def put(self, number: int, body: bytes) -> int:
        self._bodies[number - 1] = body
        return number

    def add(self, body: bytes) -> int:
        self._bodies.append(body)
        return len(self._bodies)

    def add_stream(self, data: bytes, entries: bytes = b"", *, compress: bool = True) -> int:
        if compress:
            data = zlib.compress(data, 6)
            entries = (entries + b" /Filter /FlateDecode").lstrip()
        body = b"<<%s /Length %d>>\nstream\n%s\nendstream" % (entries, len(data), data)
        return self.add(body)

    def to_bytes(self, root: int, info: int) -> bytes:
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self._bodies, start=1):
            offsets.append(len(out))
            out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
        # Derived from the content, never from time or randomness: the same certificate gives the same bytes.
        file_id = hashlib.sha256(out).hexdigest()[:32].upper().encode()
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f\r\n" % (len(offsets) + 1)
        out += b"".join(b"%010d 00000 n\r\n" % offset for offset in offsets)
        out += b"trailer\n<</Size %d /Root %s /Info %s /ID [<%s> <%s>]>>\nstartxref\n%d\n%%%%EOF\n" % (
            len(offsets) + 1,
            ref(root),
            ref(info),
            file_id,
            file_id,
            xref,
        )
        return bytes(out)


def _w(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _runs(numbers: list[int]) -> Iterable[list[int]]:
    run: list[int] = []
    for n in numbers:
        if run and n != run[-1] + 1:
            yield run
            run = []
        run.append(n)
    if run:
        yield run


def _to_unicode(chars: dict[int, str]) -> bytes:
    lines = [
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
        "/CIDSystemInfo <</Registry (Adobe) /Ordering (UCS) /Supplement 0>> def",
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
        "1 begincodespacerange <0000> <FFFF> endcodespacerange",
    ]
    items = sorted(chars.items())
    for start in range(0, len(items), 100):  # a bfchar block may hold at most 100 entries
        block = items[start : start + 100]
        lines.append(f"{len(block)} beginbfchar")
        lines.extend(f"<{cid:04X}> <{utf16_hex(ch)}>" for cid, ch in block)
        lines.append("endbfchar")
    lines.append("endcmap CMapName currentdict /CMap defineresource pop end end")
    return "\n".join(lines).encode()


def embed_font(writer: PdfWriter, font: FontSubset, used: Iterable[str]) -> int:
    """Write one Type0 font with the widths and ToUnicode entries of the characters used; return its number."""
    by_cid = {font.cid[ch]: ch for ch in used}
    cids = sorted(by_cid)
    widths = " ".join(f"{run[0]} [{' '.join(_w(font.widths[by_cid[c]]) for c in run)}]" for run in _runs(cids))
    font_file = writer.add(
        b"<</Length1 %d /Filter /FlateDecode /Length %d>>\nstream\n%s\nendstream"
        % (font.font_file_length, len(font.font_file), font.font_file)
    )
    descriptor = writer.add(
        b"<</Type /FontDescriptor /FontName %s %s /FontFile2 %s>>" % (font.base_font, font.descriptor, ref(font_file))
    )
    cid_to_gid = writer.add(
        b"<</Filter /FlateDecode /Length %d>>\nstream\n%s\nendstream" % (len(font.cid_to_gid), font.cid_to_gid)
    )
    cid_font = writer.add(
        b"<</Type /Font /Subtype /CIDFontType2 /BaseFont %s"
        b" /CIDSystemInfo <</Registry (Adobe) /Ordering (Identity) /Supplement 0>>"
        b" /FontDescriptor %s /DW 1000 /W [%s] /CIDToGIDMap %s>>"
        % (font.base_font, ref(descriptor), widths.encode(), ref(cid_to_gid))
    )
    to_unicode = writer.add_stream(_to_unicode(by_cid))
    return writer.add(
        b"<</Type /Font /Subtype /Type0 /BaseFont %s /Encoding /Identity-H /DescendantFonts [%s] /ToUnicode %s>>"
        % (font.base_font, ref(cid_font), ref(to_unicode))
    )
