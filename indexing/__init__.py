"""Catalogues in, Chroma collections out: schema, loaders, the indexing pipeline, search."""
