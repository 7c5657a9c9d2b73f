"""Adapters: the embedded (SQLite, files, local queue, local signer) and cloud ones."""
