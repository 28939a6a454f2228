"""`make up`: the whole mlfunctions stack on one machine."""
