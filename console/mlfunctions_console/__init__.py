"""mlfunctions console: the MLFunctions, models and triggers of an mlfunctions installation, in a browser."""
