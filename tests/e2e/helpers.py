"""Helpers shared by the browser tests: the tool's frame in the simulator page, and axe-core."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Frame, Page

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
TOOL_FRAME = "iframe[name='tool_frame']"


def tool_frame(page: Page) -> Frame:
    """The tool's frame, looked up afresh (the iframe changes process each time it crosses sites)."""
    handle = page.locator(TOOL_FRAME).element_handle()
    frame = handle.content_frame()
    assert frame is not None, "tool_frame has no document"
    return frame


def run_axe(frame: Frame, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA rules on the frame's document; returns the violations."""
    # The tool's CSP allows no injected <script>; evaluate runs outside the page's CSP.
    frame.evaluate(axe_source)
    result = frame.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
            return {
                passes: r.passes.length,
                violations: r.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                    nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary})),
                })),
            };
        }""",
        WCAG_TAGS,
    )
    assert result["passes"] > 0, "axe checked nothing"
    return list(result["violations"])


def axe_summary(violations: list[dict[str, Any]]) -> list[str]:
    """One line per violation, for an assertion message."""
    return [f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}" for v in violations]
