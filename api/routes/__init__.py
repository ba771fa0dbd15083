"""The JSON API and the OGC API: one router per concept, answers described by response models."""
