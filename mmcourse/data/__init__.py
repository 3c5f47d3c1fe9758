"""Data the course makes or ships: scenes, photos (and, per topic, sounds, documents, paired signals)."""
