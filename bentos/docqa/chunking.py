"""Split a directory of Markdown runbooks into chunks that keep their heading path and exact line ranges.

A runbook is parsed with markdown-it (CommonMark plus tables) into top-level blocks: paragraphs, list
items, fenced or indented code blocks, tables, block quotes and HTML blocks. A block is never split, so a
code block or a list item (with its nested items) stays whole. A chunk is a run of consecutive blocks of
one section (the text under one heading, without its subsections), cut before a block that would make it
longer than `chunk_chars`; a paragraph ending with ":" stays in the chunk of the block it introduces. Line numbers are 1-based and inclusive, counted in the file as it is on disk.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

logger = logging.getLogger(__name__)

BlockKind = Literal["paragraph", "list_item", "code", "table", "quote", "html"]
HEADING_SEPARATOR = " > "
_MARKDOWN = MarkdownIt("commonmark").enable("table")


@dataclass(frozen=True)
class Block:
    """One top-level Markdown block: its source lines, as written, and where they are."""

    kind: BlockKind
    text: str
    line_start: int
    line_end: int
    # The info string of a fenced code block ("sh", "promql"), empty otherwise.
    info: str = ""


@dataclass(frozen=True)
class Chunk:
    """Consecutive blocks of one section of a runbook."""

    source: str
    heading: str
    line_start: int
    line_end: int
    blocks: tuple[Block, ...]
    # The file's lines line_start to line_end, exactly as written.
    text: str

    @property
    def search_text(self) -> str:
        """Heading path and text, the form that BM25 and the embedding model see."""
        return f"{self.heading}\n\n{self.text}"


def read_markdown(path: Path, *, max_bytes: int) -> str:
    """Read a file as UTF-8, replacing undecodable bytes and keeping at most max_bytes (cut at a line break)."""
    data = path.read_bytes()
    if len(data) > max_bytes:
        cut = data.rfind(b"\n", 0, max_bytes)
        data = data[: cut + 1 if cut >= 0 else max_bytes]
        logger.warning(
            "runbook %s is larger than %d bytes: indexing only its first %d bytes (OPSSEER_DOCQA_MAX_FILE_BYTES)",
            path, max_bytes, len(data),
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        logger.warning("runbook %s is not valid UTF-8 (first bad byte at offset %d): replacing bad bytes", path, exc.start)
        text = data.decode("utf-8", errors="replace")
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _split_front_matter(lines: list[str]) -> tuple[list[str], str]:
    """Blank a leading YAML front matter block (keeping line numbers) and return its title, if any."""
    if not lines or lines[0].strip() != "---":
        return lines, ""
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return lines, ""

    title = ""
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError:
        meta = None
    if isinstance(meta, dict) and isinstance(meta.get("title"), str):
        title = meta["title"].strip()
    return [""] * (end + 1) + lines[end + 1 :], title


def _block(kind: BlockKind, lines: list[str], token_map: list[int] | None, info: str = "") -> Block | None:
    """Build a block from the source lines of a token map, dropping blank lines at either end."""
    if token_map is None:
        return None
    start, end = token_map[0], token_map[1] - 1
    while start <= end and not lines[start].strip():
        start += 1
    while end >= start and not lines[end].strip():
        end -= 1
    if start > end:
        return None
    return Block(kind=kind, text="\n".join(lines[start : end + 1]), line_start=start + 1, line_end=end + 1, info=info)


def _top_level_blocks(tokens: list[Token], lines: list[str]) -> Iterator[tuple[int, str] | Block | None]:
    """Yield (level, title) for each heading and a Block (or None when blank) for each top-level block."""
    for index, token in enumerate(tokens):
        if token.type == "list_item_open" and token.level == 1:
            yield _block("list_item", lines, token.map)
        elif token.level != 0:
            continue
        elif token.type == "heading_open":
            yield int(token.tag[1:]), tokens[index + 1].content.strip()
        elif token.type == "paragraph_open":
            yield _block("paragraph", lines, token.map)
        elif token.type in ("fence", "code_block"):
            info = token.info.strip().split(" ")[0] if token.info.strip() else ""
            yield _block("code", lines, token.map, info=info)
        elif token.type == "table_open":
            yield _block("table", lines, token.map)
        elif token.type == "blockquote_open":
            yield _block("quote", lines, token.map)
        elif token.type == "html_block":
            yield _block("html", lines, token.map)


def _introduces_next(block: Block) -> bool:
    return block.kind == "paragraph" and block.text.rstrip().endswith(":")


def chunk_markdown(text: str, source: str, *, chunk_chars: int) -> list[Chunk]:
    """Split one Markdown document into chunks; `source` names it in each chunk."""
    lines, title = _split_front_matter(text.split("\n"))
    tokens = _MARKDOWN.parse("\n".join(lines))
    document_title = title or Path(source).stem

    headings: list[tuple[int, str]] = []
    chunks: list[Chunk] = []
    pending: list[Block] = []

    def heading_path() -> str:
        titles = [heading for _, heading in headings]
        if not headings or headings[0][0] != 1:
            titles.insert(0, document_title)
        return HEADING_SEPARATOR.join(titles)

    def flush() -> None:
        if pending:
            chunks.append(
                Chunk(
                    source=source,
                    heading=heading_path(),
                    line_start=pending[0].line_start,
                    line_end=pending[-1].line_end,
                    blocks=tuple(pending),
                    text="\n".join(lines[pending[0].line_start - 1 : pending[-1].line_end]),
                )
            )
            pending.clear()

    for item in _top_level_blocks(tokens, lines):
        if isinstance(item, tuple):
            flush()
            level, heading = item
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, heading))
            continue
        block = item
        if block is None:
            continue
        size = sum(len(item.text) for item in pending)
        if pending and size + len(block.text) > chunk_chars:
            # A paragraph that ends with ":" introduces the next block, so it moves to the next chunk with it.
            carried = pending.pop() if _introduces_next(pending[-1]) else None
            flush()
            if carried:
                pending.append(carried)
        pending.append(block)
    flush()
    return chunks


def index_directory(root: Path, *, chunk_chars: int, max_file_bytes: int) -> list[Chunk]:
    """Chunk every *.md file under root, recursively, in path order; sources are relative to root."""
    chunks: list[Chunk] = []
    files = 0
    for path in sorted(root.rglob("*.md")):
        if not path.is_file():
            continue
        source = path.relative_to(root).as_posix()
        file_chunks = chunk_markdown(read_markdown(path, max_bytes=max_file_bytes), source, chunk_chars=chunk_chars)
        if not file_chunks:
            logger.info("runbook %s has no text to index", source)
        chunks.extend(file_chunks)
        files += 1
    logger.info("indexed %d chunks from %d runbooks under %s", len(chunks), files, root)
    return chunks
