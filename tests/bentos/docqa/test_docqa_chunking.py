"""Chunking of Markdown runbooks: heading paths, exact line ranges, whole blocks, odd files."""

import logging
from pathlib import Path

from bentos.docqa.chunking import chunk_markdown, index_directory, read_markdown

RUNBOOK = """\
---
title: Disk Filling Up
weight: 20
---

# DiskFillingUp

The disk of a node is filling up.
It fills within four hours.

## Diagnosis

Check the usage:

```sh
df -h /var

# a comment line inside the block, not a heading
du -sh /var/log
```

- Look at the biggest files.
- Check the log rotation:
  - nested item one
  - nested item two

| column | meaning |
|---|---|
| size | bytes used |

## Mitigation

### Delete old logs

Delete logs older than seven days. Then check again.
"""


def _lines(text: str, start: int, end: int) -> str:
    return "\n".join(text.split("\n")[start - 1 : end])


def test_chunks_keep_heading_paths_and_lines():
    chunks = chunk_markdown(RUNBOOK, "disk/DiskFillingUp.md", chunk_chars=10_000)

    assert [chunk.heading for chunk in chunks] == [
        "DiskFillingUp",
        "DiskFillingUp > Diagnosis",
        "DiskFillingUp > Mitigation > Delete old logs",
    ]
    assert [(chunk.line_start, chunk.line_end) for chunk in chunks] == [(8, 9), (13, 29), (35, 35)]
    for chunk in chunks:
        assert chunk.source == "disk/DiskFillingUp.md"
        assert chunk.text == _lines(RUNBOOK, chunk.line_start, chunk.line_end)


def test_blocks_stay_whole_with_exact_lines():
    diagnosis = chunk_markdown(RUNBOOK, "DiskFillingUp.md", chunk_chars=10_000)[1]
    blocks = [(block.kind, block.line_start, block.line_end) for block in diagnosis.blocks]

    assert blocks == [
        ("paragraph", 13, 13),
        ("code", 15, 20),
        ("list_item", 22, 22),
        ("list_item", 23, 25),
        ("table", 27, 29),
    ]
    for block in diagnosis.blocks:
        assert block.text == _lines(RUNBOOK, block.line_start, block.line_end)
    assert diagnosis.blocks[1].info == "sh"
    assert "# a comment line inside the block" in diagnosis.blocks[1].text


def test_small_chunk_size_never_splits_blocks():
    chunks = chunk_markdown(RUNBOOK, "DiskFillingUp.md", chunk_chars=20)
    diagnosis = [chunk for chunk in chunks if chunk.heading == "DiskFillingUp > Diagnosis"]

    # The paragraph ending with ":" stays with the code block it introduces.
    assert [(chunk.line_start, chunk.line_end) for chunk in diagnosis] == [(13, 20), (22, 22), (23, 25), (27, 29)]


def test_front_matter_title_without_h1():
    text = "---\ntitle: Node Down\n---\n\n## Meaning\n\nThe node is down.\n"

    chunks = chunk_markdown(text, "NodeDown.md", chunk_chars=1000)

    assert [(chunk.heading, chunk.line_start, chunk.line_end) for chunk in chunks] == [("Node Down > Meaning", 7, 7)]


def test_text_before_any_heading_uses_file_stem():
    chunks = chunk_markdown("Intro line.\n\n# Title\n\nBody.\n", "dir/Intro.md", chunk_chars=1000)

    assert [(chunk.heading, chunk.line_start) for chunk in chunks] == [("Intro", 1), ("Title", 5)]


def test_crlf_line_endings_keep_line_numbers(tmp_path: Path):
    path = tmp_path / "Crlf.md"
    path.write_bytes(b"# Crlf\r\n\r\nFirst.\r\n\r\n## Fix\r\n\r\nRestart it.\r\n")

    chunks = chunk_markdown(read_markdown(path, max_bytes=1000), "Crlf.md", chunk_chars=1000)

    assert [(chunk.heading, chunk.line_start, chunk.text) for chunk in chunks] == [
        ("Crlf", 3, "First."),
        ("Crlf > Fix", 7, "Restart it."),
    ]


def test_directory_index_handles_odd_files(tmp_path: Path, caplog):
    (tmp_path / "nested" / "deeper").mkdir(parents=True)
    (tmp_path / "Empty.md").write_bytes(b"")
    (tmp_path / "nested" / "deeper" / "Latin1.md").write_bytes(b"# Latin1\n\nCaf\xe9 is down.\n")
    (tmp_path / "Huge.md").write_text("# Huge\n\n" + "".join(f"Line {index} of a huge runbook.\n\n" for index in range(5000)))
    (tmp_path / "notes.txt").write_text("# Not Markdown\n")

    with caplog.at_level(logging.WARNING, logger="bentos.docqa.chunking"):
        chunks = index_directory(tmp_path, chunk_chars=1000, max_file_bytes=2000)

    assert {chunk.source for chunk in chunks} == {"Huge.md", "nested/deeper/Latin1.md"}
    latin1 = [chunk for chunk in chunks if chunk.source == "nested/deeper/Latin1.md"]
    assert [(chunk.heading, chunk.line_start, chunk.text) for chunk in latin1] == [("Latin1", 3, "Caf\ufffd is down.")]
    huge = [chunk for chunk in chunks if chunk.source == "Huge.md"]
    assert max(chunk.line_end for chunk in huge) < 200
    assert "not valid UTF-8" in caplog.text
    assert "larger than 2000 bytes" in caplog.text
