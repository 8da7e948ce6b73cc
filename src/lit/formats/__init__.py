"""Other tools' formats out of lit: Agent Trace records (the readers of other formats are in lit.importers)."""
