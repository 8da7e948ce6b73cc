"""Importers: sessions recorded before lit was there (agents' own transcripts) as lit sessions."""
