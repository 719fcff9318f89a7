"""Model-backed building blocks: configuration, model provisioning, captioning, transcription, embeddings.

Every module here loads its model lazily, on first use, so importing is cheap and side-effect free.
"""
