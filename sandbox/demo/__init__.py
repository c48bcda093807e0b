"""The offline demo, kept apart from the runtime: ``data`` writes the synthetic
source files, ``run`` builds a whole instance from them. Nothing in the
runtime imports this package."""
