"""Figures and exports that show a person what an embedding model learned."""
