"""The JSON API and the OGC API: one router per concept, each with typed response models."""
