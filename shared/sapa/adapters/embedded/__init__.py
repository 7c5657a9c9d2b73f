"""The embedded default: everything on one machine, persistent under the data directory."""
