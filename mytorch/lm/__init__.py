"""The causal language model of notebook 04: model, loss, decoders and the quality check.

Nothing is imported here, so that grading mode can hide the graded modules
(`model`, `loss`, `decoding`) while the helpers (`stepping`, `checkpoint`, `run`) stay importable.
"""
