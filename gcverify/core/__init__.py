"""What things are: models, conversions, expectations and the registries that hold them (no defaults, no nnabla at import)."""
