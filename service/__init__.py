"""The HTTP service: the recommender's turn, sessions, feedback and media over FastAPI."""
