"""Operating an instance: backup and restore (:mod:`sandbox.operations.backup`)
and the master key that wraps every data key (:mod:`sandbox.operations.masterkey`).
See docs/operations.md."""
