"""Runbook question answering: hybrid BM25 and embedding retrieval over Markdown runbooks, served by BentoML.

Modules: settings (OPSSEER_* configuration), schemas (the /ask contract), chunking (Markdown to chunks with
heading paths and line ranges), retrieval (the hybrid index), answer (picking the answer span), service (the
RunbookQA BentoML service).
"""
