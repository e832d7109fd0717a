"""Lightning modules, layers, the data module and checkpoints. Never imports prefect (docs/design.md)."""
