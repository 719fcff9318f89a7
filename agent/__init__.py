"""The recommender agent and the command line: profile, candidate buffer, fusion, grounding."""
