"""Deciding what to cache, under which key, for whom: pure, synchronous, standard library only."""
