"""Model loading (zoo.py) and the small encoders the course trains itself."""
