"""The vision check-up: language models drawing, recognizing and correcting images through code."""
