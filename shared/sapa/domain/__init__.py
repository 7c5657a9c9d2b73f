"""Pure domain model: the SOP as data, the case aggregate, its state machine and SLA arithmetic."""
