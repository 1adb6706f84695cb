"""Batches of a streamed evaluation on an existing distributed engine (Ray)."""
