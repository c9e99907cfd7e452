"""The device protocol the piles speak: topics, payload models and code lists.
Imported by the ingest, the simulator, services and the web; imports nothing of ours."""
