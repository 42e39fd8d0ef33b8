"""The behavioural shop simulation, the window a run generates, and its landing in `raw`."""
