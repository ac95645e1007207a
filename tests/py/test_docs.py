"""Every relative link in every Markdown file points at something that exists.

Checked for each Markdown file git knows (tracked, plus untracked files that are not ignored, so
a new page is checked before its first commit): every inline link and image (`[text](target)`),
every reference definition (`[id]: target`) and every HTML `href`/`src`. The target file or
directory must exist inside the repository, and a `#fragment` on a Markdown target (or on the
page itself) must be the anchor of one of its headings, computed the way GitHub does (lower
case, punctuation dropped, spaces to hyphens, `-1`, `-2`, ... for repeats) or an explicit
`id`/`name` anchor. Links in fenced code blocks and inline code are not links. External links
(`https:`, `mailto:`, ...) are not followed: tests do not use the network.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](<target>); the text may hold one level of brackets.
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)"
    r"(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_LINK = re.compile(r"<(?:a|img|source)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']", re.I)
HTML_ANCHOR = re.compile(r"<[a-z][^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


# Where a tree without git keeps files that are not the project's own.
NOT_OURS = {".git", ".tools", "target", "node_modules", ".aws-sam"}


def markdown_files(root: Path = ROOT) -> list[Path]:
    """Markdown files git tracks, plus untracked ones it does not ignore (every Markdown file
    outside build and tool folders when the tree is not a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.md"],
            cwd=root, check=True, capture_output=True, text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return sorted(
            p for p in root.rglob("*.md")
            if p.is_file() and not NOT_OURS.intersection(p.relative_to(root).parts)
        )
    return sorted({root / name for name in out.split("\0") if name and (root / name).is_file()})


def outside_fences(text: str):
    """(line number, line) of the lines outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            continue
        yield number, line


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks, with inline code spans blanked."""
    for number, line in outside_fences(text):
        yield number, INLINE_CODE.sub(lambda c: " " * len(c.group(0)), line)


def links(text: str):
    """(line number, target) of every link in a Markdown text."""
    for number, line in prose_lines(text):
        for m in INLINE_LINK.finditer(line):
            yield number, m.group(1)
        m = REFERENCE_DEF.match(line)
        if m:
            yield number, m.group(1)
        for m in HTML_LINK.finditer(line):
            yield number, m.group(1)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (before de-duplication)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a Markdown text defines: its headings (GitHub rules) and id/name attributes."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in outside_fences(text):
        found.update(HTML_ANCHOR.findall(line))
        h = ATX_HEADING.match(line)
        if not h:
            continue
        slug = github_slug(h.group(2) or "")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(files: list[Path], root: Path = ROOT) -> list[str]:
    """One line per relative link whose target or heading anchor does not exist."""
    problems = []
    anchor_cache: dict[Path, set[str]] = {}

    def anchors_of(path: Path) -> set[str]:
        if path not in anchor_cache:
            anchor_cache[path] = anchors(path.read_text(encoding="utf-8"))
        return anchor_cache[path]

    for md in files:
        where = md.relative_to(root)
        for number, raw in links(md.read_text(encoding="utf-8")):
            target = raw[1:-1] if raw.startswith("<") and raw.endswith(">") else raw
            if not target or SCHEME.match(target) or target.startswith("//"):
                continue
            path_part, _, fragment = target.partition("#")
            path_part = unquote(path_part.split("?", 1)[0])
            if path_part.startswith("/"):
                dest = (root / path_part.lstrip("/")).resolve()
            elif path_part:
                dest = (md.parent / path_part).resolve()
            else:
                dest = md
            if dest != root and root not in dest.parents:
                problems.append(f"{where}:{number}: {raw} leaves the repository")
                continue
            if not dest.exists():
                problems.append(f"{where}:{number}: {raw}: {dest.relative_to(root)} does not exist")
                continue
            if fragment and dest.is_file() and dest.suffix.lower() == ".md":
                if unquote(fragment).lower() not in anchors_of(dest):
                    problems.append(
                        f"{where}:{number}: {raw}: no heading or anchor #{fragment} in "
                        f"{dest.relative_to(root)}"
                    )
    return problems


def test_every_relative_link_in_the_markdown_files_resolves():
    files = markdown_files()
    assert ROOT / "README.md" in files
    problems = broken_links(files)
    assert not problems, "broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("The two commands", "the-two-commands"),
        ("Admin API (`/__emulator/`)", "admin-api-__emulator"),
        ("Choices where the API reference is silent ([I])", "choices-where-the-api-reference-is-silent-i"),
        ("RunBot (`statemachine/run-bot.asl.json`)", "runbot-statemachinerun-botasljson"),
        ("TLS provider start-up: aws-lc jitter entropy vs ring", "tls-provider-start-up-aws-lc-jitter-entropy-vs-ring"),
        ("Levers tried (what changed, measured effect)", "levers-tried-what-changed-measured-effect"),
        ("**Bold** and [a link](x.md)", "bold-and-a-link"),
    ],
)
def test_heading_anchors_follow_github(heading, slug):
    assert github_slug(heading) == slug


def test_a_broken_link_or_anchor_is_reported(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "# Title\n\n## Same\n\n## Same\n\n<a id=\"custom\"></a>\n", encoding="utf-8"
    )
    page = tmp_path / "README.md"
    page.write_text(
        "\n".join([
            "# Top",
            "[ok](docs/a.md) [ok](docs/a.md#same-1) [ok](<docs/a.md#custom>) [ok](#top)",
            "[ok](docs/) [ok](https://example.com/missing) [ok](mailto:x@example.com)",
            "`[not a link](missing-in-code.md)`",
            "```",
            "[not a link](missing-in-fence.md)",
            "```",
            "[bad](docs/missing.md)",
            "[bad](docs/a.md#nowhere)",
            "![bad](img/missing.png \"title\")",
            "[bad]: ../outside.md",
            "<a href=\"#no-such-heading\">bad</a>",
        ]) + "\n",
        encoding="utf-8",
    )
    problems = broken_links([page, tmp_path / "docs" / "a.md"], root=tmp_path)
    assert [p.split(": ", 1)[0] for p in problems] == [
        "README.md:8", "README.md:9", "README.md:10", "README.md:11", "README.md:12",
    ], problems


def test_the_japanese_quick_start_runs_only_commands_the_english_readme_runs():
    """README.ja.md is an entry point, not a second home: every command in its `sh` blocks is
    one of README.md's (trailing comments aside), so the two cannot drift apart."""
    english = (ROOT / "README.md").read_text()
    english_lines = {line.split("  #")[0].strip() for line in english.splitlines()}
    japanese = (ROOT / "README.ja.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", japanese, re.S)
    assert blocks, "README.ja.md has no commands"
    for block in blocks:
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if command:
                assert command in english_lines, f"README.ja.md runs a command README.md does not: {command!r}"
