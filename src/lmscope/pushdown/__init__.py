"""Pushdown layers: attention with a stack tape, an attachment head, beam search over parses."""
