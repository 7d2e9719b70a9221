"""The run engine: planning, the runner state machine, the journal, recovery
and the kill switch. The only layer that decides what happens next."""
