"""Bridges to application frameworks: ``vecbridge.integrations.langchain`` (and, as they land,
LlamaIndex and Haystack).

Each bridge is its own module and imports its framework only when that module is imported,
so this package (and ``import vecbridge``) stays free of every framework.
"""
