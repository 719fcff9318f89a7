"""Model-backed building blocks: config, model provisioning, captions, transcripts, embeddings.

Every module here loads its model lazily, on first use, so importing is cheap and side-effect free.
"""
