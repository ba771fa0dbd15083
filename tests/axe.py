"""Accessibility checks with axe-core in a real browser page (Playwright).

axe-core is vendored in ``tests/vendor/axe-core/`` by ``scripts/vendor-test-assets.sh`` and never
fetched at test time. Use it from any browser test::

    from axe import assert_no_serious

    page.goto(base + "/")
    assert_no_serious(page, "citizen map")

``assert_no_serious`` fails on violations of impact *serious* or *critical* and lists each rule
with its help text and the first elements it found; *minor* and *moderate* ones are returned by
``run_axe`` for a test that wants them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

#: The vendored axe-core build (MPL-2.0, licence beside it).
AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
#: The impacts a test fails on.
SERIOUS = ("serious", "critical")


def run_axe(
    page: Page,
    *,
    context: str | None = None,
    disable_rules: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Run axe-core on ``page`` as it is now and return its violations.

    Parameters
    ----------
    page
        A loaded page. axe is injected once (``window.axe`` is reused after that), evaluated
        through the browser's protocol: the pages' policy forbids inline scripts, so a
        ``<script>`` tag (``page.add_script_tag``) would be refused, and opening the context
        with ``bypass_csp=True`` would hide what the policy does to the page itself.
    context
        A CSS selector to check only part of the page; ``None``: the whole document.
    disable_rules
        axe rule ids not to run. Every use needs a written reason at the call site.

    Returns
    -------
    list of dict
        axe's violation objects: ``id``, ``impact``, ``help``, ``helpUrl``, ``nodes`` (each with
        ``target`` selectors and a ``failureSummary``), …
    """
    if not AXE_JS.exists():
        msg = f"{AXE_JS} is missing: run scripts/vendor-test-assets.sh (it is committed)."
        raise FileNotFoundError(msg)
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;undefined")
    options = {
        "resultTypes": ["violations"],
        "rules": {rule: {"enabled": False} for rule in disable_rules},
    }
    results = page.evaluate(
        """async ([selector, options]) => {
            const results = await axe.run(selector ? document.querySelector(selector) : document,
                                          options);
            return results.violations;
        }""",
        [context, options],
    )
    return list(results)


def describe(violations: Iterable[dict[str, Any]], *, targets: int = 3) -> str:
    """One readable block per violation: rule, impact, help, URL and the first ``targets``
    elements (their selectors and axe's summary of what is wrong)."""
    lines: list[str] = []
    for violation in violations:
        nodes = violation.get("nodes", [])
        lines.append(
            f"- {violation['id']} [{violation.get('impact')}] {violation.get('help')} "
            f"({len(nodes)} element{'s' if len(nodes) != 1 else ''}; {violation.get('helpUrl')})"
        )
        for node in nodes[:targets]:
            parts = node.get("target", [])
            selector = " ".join(" >> ".join(p) if isinstance(p, list) else p for p in parts)
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    {selector}: {summary[:240]}")
        if len(nodes) > targets:
            lines.append(f"    … and {len(nodes) - targets} more")
    return "\n".join(lines)


def assert_no_serious(
    page: Page,
    name: str,
    *,
    context: str | None = None,
    disable_rules: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Fail when axe finds a *serious* or *critical* violation on ``page`` (``name`` says which
    page in the message); return every violation (the lesser ones too) otherwise."""
    violations = run_axe(page, context=context, disable_rules=disable_rules)
    serious = [v for v in violations if v.get("impact") in SERIOUS]
    if serious:
        msg = f"axe found {len(serious)} serious or critical violation(s) on {name}:\n"
        raise AssertionError(msg + describe(serious))
    return violations
