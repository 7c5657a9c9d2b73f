"""Use cases: load a case, apply a domain operation, save it, enqueue what comes next."""
