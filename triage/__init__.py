"""petition-triage: routing, duplicates, clusters, risk flags and chat intake for Chinese citizen petitions."""

__version__ = "0.1.0"
