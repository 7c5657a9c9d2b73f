"""Adapters: the embedded (SQLite, files, local queue, simulator, local signer) and cloud ones."""
