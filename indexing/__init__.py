"""Catalogues in, Chroma collections out: schema, loaders, validation, the indexing pipeline, search."""
