"""mytorch: the course library for building Transformers from scratch.

Submodules are imported on demand: `import mytorch` loads neither torch nor the reference
of any graded component, so that grading mode (see `mytorch.registry`) can hide the
references of the assignment being graded.
"""

__version__ = "0.1.0"
