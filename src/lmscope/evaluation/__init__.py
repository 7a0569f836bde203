"""Pseudointelligence: evaluation as a distinguishing game between a model and learned evaluators."""
