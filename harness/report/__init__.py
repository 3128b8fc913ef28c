"""Showing results: bench tables, the model info text, the report's data frames, its charts and
the HTML page."""
