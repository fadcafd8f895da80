"""kurspakke.certificates.pdf: the tagged one-page certificate PDF, checked with the tools people actually use.

poppler-utils (pdftotext, pdfinfo, pdffonts, pdftoppm) and zbar-tools (zbarimg) are installed by `make pdf-tools`;
these tests call them as subprocesses and are never skipped.
"""

from __future__ import annotations

import datetime
import re
import subprocess
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fontTools.ttLib import TTFont

from kurspakke.certificates import pdf, pdfwriter
from kurspakke.certificates.pdf import (
    BOTTOM_MARGIN,
    LEFT,
    NAME_MAX,
    NAME_MIN,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    RIGHT,
    CertificateDocument,
    CertificateLabels,
    Layout,
    Line,
    layout_certificate,
    render_pdf,
)

FONTS = Path(pdfwriter.__file__).parent / "fonts"
MODULES = (
    "Lindrende behandling og omsorg. Den profesjonelle yrkesutøveren",
    "Diagnoser, symptomer og symptomlindring",
    "Pårørende til pasienter som mottar lindrende behandling og omsorg",
    "Lindrende behandling og omsorg til døende pasienter",
)
GOALS = (
    "Videreutvikle sin kunnskap om lindrende behandling og omsorg ved livets slutt",
    "Utvikle økt bevissthet om eget ansvar og om rollen i den lindrende behandling og omsorg",
    "Bli mer oppmerksom på og kan reflektere over rutiner og områder som har behov for forbedring på arbeidsplassen",
    "Videreutvikle kompetansen og forstå hvordan den kan brukes i det daglige arbeidet med pasienter og pårørende",
    "Bli mer bevisst på at etisk refleksjon er nødvendig i utvikling av faglige og personlige egenskaper",
)
URL = "https://kurs.example.no/verify/7QKM3F9TXWRA5C"


def certificate(**changes: Any) -> CertificateDocument:
    doc = CertificateDocument(
        title="Kursbevis",
        name="Åse Ødegård-Bjørnæs",
        statement="har gjennomført den digitale opplæringspakken",
        programme_title="Lindrende behandling og omsorg ved livets slutt",
        organisation="Bodø kommune",
        completed_on=datetime.date(2026, 11, 30),
        issuer="Høgskolen i Innlandet",
        code="7QKM-3F9T-XWRA-5C",
        verify_url=URL,
        learning_goals_heading="Målet er at ansatte kan",
        learning_goals=GOALS,
        modules_heading="Fire fagemner, hvert fulgt av en gruppesamling på 1,5–2 timer",
        module_titles=MODULES,
        mentor="Kari Nordmann",
        signatories=("Høgskolen i Innlandet", "Utviklingssenter for sykehjem og hjemmetjenester (USHT) Nordland"),
        note="Opplæringspakken er utviklet av Høgskolen i Innlandet på oppdrag fra Helsedirektoratet.",
    )
    return replace(doc, **changes)


# --- helpers: the tools, and just enough PDF parsing to look inside our own output ----------------------------------


def run(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=True, timeout=60)
    if args[0] != "zbarimg":  # zbarimg's image library chatters about D-Bus on stderr
        assert done.stderr == "", done.stderr  # poppler reports any syntax error or warning in the file here
    return done.stdout


def write(tmp_path: Path, doc: CertificateDocument, name: str = "kursbevis.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(render_pdf(doc))
    return path


def flat(text: str) -> str:
    """Wrapped text joined back: line breaks and runs of spaces count as one space."""
    return " ".join(text.split())


def objects(pdf: bytes) -> dict[int, bytes]:
    """Each object's body, found through the cross-reference table (which this also checks)."""
    xref = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", pdf)[1])  # type: ignore[index]
    assert pdf[xref:].startswith(b"xref\n0 ")
    count = int(re.match(rb"xref\n0 (\d+)\n", pdf[xref:])[1])  # type: ignore[index]
    table = pdf[xref:].split(b"\n", 2)[2]
    entries = [table[20 * n : 20 * n + 20] for n in range(count)]
    assert entries[0] == b"0000000000 65535 f\r\n"
    offsets = [int(e[:10]) for e in entries[1:]]
    assert all(e.endswith(b" 00000 n\r\n") for e in entries[1:])
    found = {}
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number), number
        end = pdf.index(b"\nendobj\n", offset)
        found[number] = pdf[offset + len(b"%d 0 obj\n" % number) : end]
    return found


def stream(body: bytes) -> bytes:
    match = re.search(rb"/Length (\d+)>>\nstream\n", body)
    assert match
    data = body[match.end() : match.end() + int(match[1])]
    return zlib.decompress(data) if b"/FlateDecode" in body[: match.start()] else data


def stream_or_empty(body: bytes) -> bytes:
    return stream(body) if b"\nstream\n" in body else b""


def refs(text: bytes) -> list[int]:
    return [int(n) for n in re.findall(rb"(\d+) 0 R", text)]


def page_content(pdf: bytes) -> bytes:
    objs = objects(pdf)
    page = next(body for body in objs.values() if body.startswith(b"<</Type /Page "))
    return stream(objs[int(re.search(rb"/Contents (\d+) 0 R", page)[1])])  # type: ignore[index]


_TOKEN = re.compile(rb"<<|>>|<[0-9A-Fa-f]*>|/[^\s/<>\[\]()]+|\[|\]|\((?:\\.|[^\\)])*\)|[^\s<>\[\]/()]+")


def marked_content(content: bytes) -> tuple[list[int], list[tuple[bytes, list[bytes]]]]:
    """Walk the content stream: the MCIDs in order, and each painting operator with the marked-content tags
    around it."""
    mcids: list[int] = []
    painted: list[tuple[bytes, list[bytes]]] = []
    stack: list[bytes] = []
    operands: list[bytes] = []
    for token in _TOKEN.findall(content):
        if token in (b"BDC", b"BMC"):
            tag = next(t for t in operands if t.startswith(b"/"))
            if b"/MCID" in operands:
                mcids.append(int(operands[operands.index(b"/MCID") + 1]))
                tag += b"+MCID"
            stack.append(tag)
        elif token == b"EMC":
            stack.pop()
        elif token in (b"Tj", b"TJ", b"f", b"S", b"B", b"Do", b"sh"):
            painted.append((token, list(stack)))
        if re.fullmatch(rb"[A-Za-z'\"*]+", token) and token not in (b"true", b"false"):
            operands = []
        else:
            operands.append(token)
    assert not stack
    return mcids, painted


@cache
def advances(bold: bool) -> tuple[dict[int, str], dict[str, tuple[int, int]], int]:
    font = TTFont(FONTS / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"))
    return font.getBestCmap(), dict(font["hmtx"].metrics), font["head"].unitsPerEm


def measured(line: Line) -> float:
    """The line's width from the font file itself, independent of the renderer's own tables."""
    cmap, hmtx, upem = advances(line.bold)
    return sum(hmtx[cmap[ord(char)]][0] for char in line.text) * line.size / upem


def in_box(layout: Layout) -> None:
    """No line is wider than its box, none leaves it or the page, nothing reaches below the bottom margin."""
    for line in layout.lines():
        assert abs(measured(line) - line.width) < 0.01, line
        assert line.width <= line.right - line.left + 1e-6, line
        assert line.left - 1e-6 <= line.x and line.x + line.width <= line.right + 1e-6, line
        assert line.left >= LEFT - 1e-6 and line.right <= RIGHT + 1e-6, line
        assert line.bottom >= BOTTOM_MARGIN - 1e-6 and line.top <= PAGE_HEIGHT, line
    x0, y0, x1, y1 = layout.qr.bbox
    assert x0 > 0 and x1 < PAGE_WIDTH and y0 > 0 and y1 < PAGE_HEIGHT
    assert layout.qr.y >= BOTTOM_MARGIN - 1e-6  # the dark modules; the quiet zone is blank


def drawn_words(path: Path) -> list[tuple[float, float, float, float, str]]:
    """Every word poppler finds on the page with its box (x from the left, y from the top, in points)."""
    html = run("pdftotext", "-bbox", path, "-")
    found = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', html)
    return [(float(a), float(b), float(c), float(d), word) for a, b, c, d, word in found]


def drawn_inside_the_margins(path: Path) -> None:
    words = drawn_words(path)
    assert len(words) > 100
    for x0, _, x1, y1, word in words:
        assert x0 >= LEFT - 0.5 and x1 <= RIGHT + 0.5 and y1 <= PAGE_HEIGHT - BOTTOM_MARGIN + 0.5, word


@pytest.fixture(scope="module")
def main_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("pdf"), certificate())


# --- text -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Åse Ødegård-Bjørnæs", "Zoë Ærø-Lindqvist – Ståle"])
def test_the_text_extracts_exactly(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, certificate(name=name))
    for text in (run("pdftotext", path, "-"), run("pdftotext", "-layout", path, "-")):
        lines = [line.strip() for line in text.splitlines()]
        assert name in lines  # the name fits, so it is one line, unbroken
        assert "Kursbevis" in lines
        joined = flat(text)
        for expected in (
            "Lindrende behandling og omsorg ved livets slutt",
            "har gjennomført den digitale opplæringspakken",
            "Organisasjon: Bodø kommune",
            "Fullført: 30. november 2026",
            "Mentor: Kari Nordmann",
            "Utstedt av: Høgskolen i Innlandet",
            "Verifiseringskode: 7QKM-3F9T-XWRA-5C",
            f"Kontroller kursbeviset på {URL}",
            "Fire fagemner, hvert fulgt av en gruppesamling på 1,5–2 timer",  # en-dash
            "Målet er at ansatte kan",
            "Utviklingssenter for sykehjem og hjemmetjenester (USHT) Nordland",
            *MODULES,
            *GOALS,
        ):
            assert expected in joined, expected
        for n, module in enumerate(MODULES, start=1):
            assert f"{n}. {module}" in joined


def test_typographic_characters_survive(tmp_path: Path) -> None:
    statement = "har gjennomført «kurset» – “omsorg” — café über ‘Zoë’ … 1\u00a0000 €"
    pdf = render_pdf(certificate(statement=statement))
    (tmp_path / "c.pdf").write_bytes(pdf)
    # pdftotext prints a no-break space as a plain space; the ToUnicode map below keeps U+00A0 itself.
    assert statement.replace("\u00a0", " ") in flat(run("pdftotext", tmp_path / "c.pdf", "-"))
    maps = b"".join(stream(body) for body in objects(pdf).values() if b"beginbfchar" in stream_or_empty(body))
    assert re.search(rb"<[0-9A-F]{4}> <00A0>", maps) and re.search(rb"<[0-9A-F]{4}> <201C>", maps)


def test_a_no_break_space_never_breaks_a_line() -> None:
    for n in range(30, 70):
        layout = layout_certificate(certificate(statement="ord " * n + "kl.\u00a012.00 og mer"))
        assert any("kl.\u00a012.00" in line.text for line in layout.lines()), n


def test_the_date_and_fixed_words_come_from_the_labels(tmp_path: Path) -> None:
    months = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October")
    labels = CertificateLabels(completed_on="Completed", code="Code", months=(*months, "November", "December"))
    text = flat(run("pdftotext", write(tmp_path, certificate(labels=labels, mentor="")), "-"))
    assert "Completed: 30. November 2026" in text and "Code: 7QKM-3F9T-XWRA-5C" in text
    assert "Mentor" not in text  # no mentor, no line
    assert CertificateLabels().long_date(datetime.date(2027, 1, 5)) == "5. januar 2027"
    with pytest.raises(ValueError, match="12 month names"):
        render_pdf(certificate(labels=CertificateLabels(months=months)))


# --- the file as a whole ----------------------------------------------------------------------------------------------


def test_pdfinfo_sees_one_tagged_a4_page_with_the_title(main_pdf: Path) -> None:
    info = run("pdfinfo", "-isodates", main_pdf)  # ISO dates in UTC, whatever the local time zone
    assert re.search(r"^Tagged:\s+yes$", info, re.M)
    assert re.search(r"^Pages:\s+1$", info, re.M)
    assert re.search(r"^Page size:\s+595\.28 x 841\.89 pts \(A4\)$", info, re.M)
    assert re.search(r"^PDF version:\s+1\.7$", info, re.M)
    assert re.search(r"^Title:\s+Kursbevis – Åse Ødegård-Bjørnæs$", info, re.M)
    assert re.search(r"^Producer:\s+kurspakke$", info, re.M)
    assert re.search(r"^CreationDate:\s+2026-11-30T00:00:00Z$", info, re.M)

    fonts = run("pdffonts", main_pdf).splitlines()[2:]
    assert len(fonts) == 2
    for line, family in zip(fonts, ("DejaVuSans", "DejaVuSans-Bold"), strict=True):
        # name, type (two words), encoding, emb, sub, uni
        assert re.fullmatch(rf"[A-Z]{{6}}\+{family} +CID TrueType +Identity-H +yes +yes +yes +\d+ +0", line)


def test_the_metadata_and_catalog_carry_what_pdf_ua_asks_for(main_pdf: Path) -> None:
    pdf = main_pdf.read_bytes()
    assert pdf.startswith(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    catalog = next(body for body in objects(pdf).values() if body.startswith(b"<</Type /Catalog"))
    for entry in (
        b"/MarkInfo <</Marked true>>",
        b"/Lang (nb-NO)",
        b"/ViewerPreferences <</DisplayDocTitle true>>",
        b"/StructTreeRoot ",
        b"/Metadata ",
    ):
        assert entry in catalog
    assert re.search(rb"/ID \[<[0-9A-F]{32}> <[0-9A-F]{32}>\]", pdf)
    xmp = run("pdfinfo", "-meta", main_pdf)
    assert '<rdf:li xml:lang="x-default">Kursbevis – Åse Ødegård-Bjørnæs</rdf:li>' in xmp
    assert "<pdfuaid:part>1</pdfuaid:part>" in xmp and "<pdf:Producer>kurspakke</pdf:Producer>" in xmp
    assert "<xmp:CreateDate>2026-11-30T00:00:00+00:00</xmp:CreateDate>" in xmp


def test_issued_at_sets_the_creation_date(tmp_path: Path) -> None:
    issued = datetime.datetime(2026, 12, 1, 9, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    path = write(tmp_path, certificate(issued_at=issued))
    assert re.search(r"^CreationDate:\s+2026-12-01T08:30:00Z$", run("pdfinfo", "-isodates", path), re.M)
    assert "<xmp:CreateDate>2026-12-01T08:30:00+00:00</xmp:CreateDate>" in run("pdfinfo", "-meta", path)


# --- tags -------------------------------------------------------------------------------------------------------------


def test_poppler_reads_the_structure_tree(main_pdf: Path) -> None:
    tree = run("pdfinfo", "-struct-text", main_pdf)
    lines = tree.splitlines()
    assert lines[0] == "Document"
    assert lines[1:3] == ["  H1 (block)", '    "Kursbevis"']
    assert lines[3:5] == ["  P (block)", '    "Åse Ødegård-Bjørnæs"']
    goals = '  H2 (block)\n    "Målet er at ansatte kan"\n  L (block):\n     /ListNumbering /Disc\n    LI (block)'
    assert goals in tree
    assert '      Lbl (block)\n        "•"\n      LBody (block)\n' in tree
    assert '      Lbl (block)\n        "4."\n      LBody (block)\n        "' + MODULES[3] + '"' in tree
    # A wrapped list item reads as one text with its spaces: the break keeps its (inkless) space.
    assert f'        "{GOALS[2]}"' in tree
    assert "  Figure:\n     /Placement /Block\n     /BBox [" in tree
    assert '  P (block)\n    "Kontroller kursbeviset på "\n    Link (inline)\n      "' + URL + '"' in tree


def test_every_mark_of_ink_is_tagged_or_an_artifact(main_pdf: Path) -> None:
    pdf = main_pdf.read_bytes()
    mcids, painted = marked_content(page_content(pdf))
    assert mcids == list(range(len(mcids))) and len(mcids) > 30
    for operator, tags in painted:
        if operator == b"Tj":
            assert len(tags) == 1 and tags[0].endswith(b"+MCID") and tags[0] != b"/Artifact+MCID", tags
        else:  # the border and rules are artifacts; the QR code's modules are the Figure
            assert tags in ([b"/Artifact"], [b"/Figure+MCID"]), tags

    objs = objects(pdf)
    root = next(body for body in objs.values() if body.startswith(b"<</Type /StructTreeRoot"))
    parent_tree = re.search(rb"/Nums \[0 \[([^\]]*)\] 1 (\d+) 0 R\]", root)
    assert parent_tree, root
    by_mcid = refs(parent_tree[1])
    assert len(by_mcid) == len(mcids)
    elements = {n: body for n, body in objs.items() if body.startswith(b"<</Type /StructElem")}
    assert set(by_mcid) <= set(elements)
    for n, body in elements.items():
        assert re.search(rb"/P \d+ 0 R /Pg \d+ 0 R", body), body
        kids = body.split(b"/K [", 1)[1]
        kids = re.sub(rb"<<.*?>>|\d+ 0 R", b"", kids[: kids.index(b"]")])
        assert all(by_mcid[int(mcid)] == n for mcid in kids.split())
    figure = next(body for body in elements.values() if body.startswith(b"<</Type /StructElem /S /Figure"))
    alt = f"QR-kode som lenker til kontrollsiden for kursbeviset: {URL}".encode()
    assert b"/Alt (" + alt + b")" in figure and b"/A <</O /Layout /Placement /Block /BBox [" in figure
    link = elements[int(parent_tree[2])]
    assert link.startswith(b"<</Type /StructElem /S /Link") and b"/Type /OBJR" in link
    annotation = objs[int(re.search(rb"/Type /OBJR /Obj (\d+) 0 R", link)[1])]  # type: ignore[index]
    assert b"/Subtype /Link" in annotation and b"/StructParent 1" in annotation
    assert b"/Contents (" + URL.encode() + b")" in annotation and b"/URI (" + URL.encode() + b")" in annotation
    page = next(body for body in objs.values() if body.startswith(b"<</Type /Page "))
    assert b"/StructParents 0" in page and b"/Tabs /S" in page


# --- the QR code ------------------------------------------------------------------------------------------------------


def test_the_qr_code_scans_to_the_verify_url(main_pdf: Path, tmp_path: Path) -> None:
    run("pdftoppm", "-r", "200", "-png", "-singlefile", main_pdf, tmp_path / "page")
    assert run("zbarimg", "--raw", "-q", tmp_path / "page.png").strip() == URL
    layout = layout_certificate(certificate())
    x0, _, x1, _ = layout.qr.bbox
    assert 80 < x1 - x0 < 90  # about 30 mm, quiet zone included
    content = page_content(main_pdf.read_bytes())
    assert content.count(b" re") > 100  # drawn as vector rectangles, no image
    assert b"/Image" not in main_pdf.read_bytes()


# --- fitting ----------------------------------------------------------------------------------------------------------

LONG_NAME = "Mari-Magdalena Kristine Åsbjørg Ødegård-Bjørnæs Gunnerud Haraldsdatter Lindqvist"
ONE_WORD = "Ødegårdbjørnæsgunnerudhaldorsenlindqvistsønne"


def test_the_main_programme_fits_at_full_size(main_pdf: Path) -> None:
    layout = layout_certificate(certificate())
    assert layout.scale == 1
    in_box(layout)
    drawn_inside_the_margins(main_pdf)


def test_a_certificate_without_the_optional_parts(tmp_path: Path) -> None:
    name = "Ola <Nordmann> & Co"
    doc = certificate(
        name=name,
        learning_goals_heading="",
        learning_goals=(),
        modules_heading="",
        module_titles=(),
        mentor="",
        signatories=(),
        note="",
    )
    path = write(tmp_path, doc)
    text = flat(run("pdftotext", path, "-"))
    assert name in text and "Verifiseringskode: 7QKM-3F9T-XWRA-5C" in text
    assert "Mentor" not in text and "Målet" not in text and "Høgskolen i Innlandet Utviklingssenter" not in text
    tree = run("pdfinfo", "-struct-text", path)
    assert "H2" not in tree and "  L (block)" not in tree and "  Figure:" in tree
    assert 'x-default">Kursbevis – Ola &lt;Nordmann&gt; &amp; Co</rdf:li>' in run("pdfinfo", "-meta", path)


def test_the_name_shrinks_before_it_wraps() -> None:
    short = layout_certificate(certificate()).elements[1].lines
    assert len(short) == 1 and short[0].size == NAME_MAX
    medium = layout_certificate(certificate(name="Åse Kristine Ødegård-Bjørnæs Haraldsdatter")).elements[1].lines
    assert len(medium) == 1 and NAME_MIN < medium[0].size < NAME_MAX


@pytest.mark.parametrize("name", [LONG_NAME, ONE_WORD])
def test_a_long_name_stays_inside_its_box(tmp_path: Path, name: str) -> None:
    assert len(LONG_NAME) == 80 and len(ONE_WORD) == 45 and " " not in ONE_WORD
    layout = layout_certificate(certificate(name=name))
    in_box(layout)
    name_lines = layout.elements[1].lines
    assert "".join(line.text for line in name_lines).replace(" ", "") == name.replace(" ", "")
    if name == LONG_NAME:  # too long even at the smallest size: wrapped at a space, at that size
        assert len(name_lines) == 2 and all(line.size == NAME_MIN for line in name_lines)
    else:  # shrunk to fit on one line, unbroken
        assert len(name_lines) == 1 and NAME_MIN <= name_lines[0].size < NAME_MAX
    path = write(tmp_path, certificate(name=name))
    assert name in flat(run("pdftotext", path, "-"))
    drawn_inside_the_margins(path)


def test_a_word_wider_than_any_line_is_cut_at_a_character() -> None:
    word = "Ø" * 60
    layout = layout_certificate(certificate(name=word))
    in_box(layout)
    lines = layout.elements[1].lines
    assert len(lines) == 2 and "".join(line.text for line in lines) == word


def test_too_much_text_shrinks_the_page_rather_than_clipping(tmp_path: Path) -> None:
    goals = tuple(f"{n}: {GOALS[n % 5]} og {GOALS[(n + 2) % 5].lower()}" for n in range(12))
    doc = certificate(learning_goals=goals, name=LONG_NAME)
    layout = layout_certificate(doc)
    assert 0.6 <= layout.scale < 1
    in_box(layout)
    assert {line.size for line in layout.elements[1].lines} == {NAME_MIN}  # the name's floor does not shrink
    flow_bottom = min(line.bottom for element in layout.elements[:-3] for line in element.lines)
    assert flow_bottom > layout.qr.bbox[3]  # the flow ends above the QR code and the lines beside it
    path = write(tmp_path, doc)
    text = flat(run("pdftotext", path, "-"))
    assert all(goal in text for goal in goals)
    drawn_inside_the_margins(path)

    with pytest.raises(ValueError, match="does not fit on one page"):
        layout_certificate(certificate(learning_goals=goals * 5))


# --- characters the font lacks ----------------------------------------------------------------------------------------


def test_a_character_the_font_lacks_still_prints_and_extracts(tmp_path: Path) -> None:
    # DejaVu Sans has neither the CJK ideograph 李 nor the fullwidth letters; 李 has no decomposition and is drawn
    # as U+FFFD, Ａｎｎａ decomposes (NFKD) to plain "Anna". /ActualText keeps the real name for extraction.
    cmap = TTFont(FONTS / "DejaVuSans.ttf").getBestCmap()
    assert 0x674E not in cmap and 0xFF21 not in cmap and 0xFFFD in cmap
    name = "李 Ａｎｎａ Ødegård"
    layout = layout_certificate(certificate(name=name))
    assert [line.text for line in layout.elements[1].lines] == ["\ufffd Anna Ødegård"]
    path = write(tmp_path, certificate(name=name))
    assert name in run("pdftotext", path, "-").splitlines()
    assert f"Kursbevis – {name}" in run("pdfinfo", path)


def test_without_the_marks_a_decomposed_letter_falls_back_to_its_base(monkeypatch: pytest.MonkeyPatch) -> None:
    # DejaVu has every combining mark, so this rule never fires with it; a font that lacks U+0301 shows why it exists.
    metrics = pdfwriter.font_metrics()
    lacking = replace(metrics, coverage=metrics.coverage - {"ǘ", "\u0301", "李"})
    monkeypatch.setattr(pdf, "font_metrics", lambda: lacking)
    pdf._substitute.cache_clear()
    try:
        assert [pdf._substitute(c) for c in "ǘＡ李"] == ["u", "A", "\ufffd"]
    finally:
        pdf._substitute.cache_clear()


def test_other_scripts_get_their_own_cached_subset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "Ωmega Жанна Ødegård"
    path = write(tmp_path, certificate(name=name))
    assert name in run("pdftotext", path, "-").splitlines()
    extra = frozenset(map(ord, "ΩЖанн"))
    assert pdfwriter.font_subsets(extra) is pdfwriter.font_subsets(extra)
    assert pdfwriter.font_subsets() is pdfwriter.font_subsets()
    assert "Ж" in pdfwriter.font_subsets(extra)[1].cid and "Ж" not in pdfwriter.font_subsets()[1].cid
    # The subsets for extra characters are a bounded cache, unlike the base pair.
    monkeypatch.setattr(pdfwriter, "_EXTRA_CACHE_SIZE", 1)
    pdfwriter.font_subsets(frozenset({ord("Ω")}))
    assert list(pdfwriter._extra) == [frozenset({ord("Ω")})]


def test_the_fonts_and_their_licence_ship_in_the_package() -> None:
    assert {p.name for p in FONTS.iterdir()} >= {"DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "LICENSE"}
    assert "Bitstream Vera Fonts Copyright" in (FONTS / "LICENSE").read_text()


# --- determinism and threads ------------------------------------------------------------------------------------------


def test_the_same_certificate_gives_the_same_bytes() -> None:
    first = render_pdf(certificate())
    assert render_pdf(certificate()) == first
    other = render_pdf(certificate(code="7QKM-3F9T-XWRA-5D"))
    assert other != first
    id_of = re.compile(rb"/ID \[<([0-9A-F]+)>")
    assert id_of.search(other)[1] != id_of.search(first)[1]  # type: ignore[index]


def test_rendering_in_threads_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["Åse Ødegård-Bjørnæs", "Zoë Ærø-Lindqvist – Ståle", "Жанна Ødegård", "李 Ａｎｎａ", LONG_NAME]
    docs = [
        certificate(name=f"{names[n % 5]} {n}", code=f"7QKM-3F9T-XW{n:02d}-5C", verify_url=f"{URL}{n:02d}")
        for n in range(50)
    ]
    expected = [render_pdf(doc) for doc in docs]
    # Start from empty font caches so the threads also race to build the subsets.
    monkeypatch.setattr(pdfwriter, "_base", None)
    monkeypatch.setattr(pdfwriter, "_extra", type(pdfwriter._extra)())
    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(render_pdf, docs)) == expected
