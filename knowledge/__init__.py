"""Knowledge base engine: files -> documents -> chunks -> a searchable, quotable index.

Kept light: importing this package loads no model and no FAISS.
"""
