"""Configuration, read once at the edge (CLI, app factory) and passed down explicitly.

Every setting can come from the environment with the ``CARDIOMAPA_`` prefix, e.g.
``CARDIOMAPA_DATABASE_URL=postgresql+psycopg://user@host/db``. Nothing here connects to anything
or reads a file when imported.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from geo.city import PROFILE_FILE_NAME, CityProfile, load_city_profile

PROJECT_DIR = Path(__file__).resolve().parent.parent
SAMPLE_DATA_DIR = PROJECT_DIR / "data"
DEFAULT_DATABASE_URL = "sqlite:///var/cardiomapa.sqlite"


class Settings(BaseSettings):
    """cardiomapa settings.

    Attributes
    ----------
    database_url
        SQLAlchemy URL. ``sqlite:///path.sqlite`` (SpatiaLite, the embedded default; relative paths
        are relative to the working directory) or ``postgresql+psycopg://…`` (PostGIS).
    data_dir
        Folder holding the layer files (``defibrillators.geojson``, ``ceas.geojson``…).
    city_profile
        City profile JSON. When unset, ``<data_dir>/city.json`` if present, else the Palencia
        profile shipped in ``data/``.
    host, port
        Where ``cardiomapa serve`` listens.
    """

    model_config = SettingsConfigDict(env_prefix="CARDIOMAPA_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    data_dir: Path = SAMPLE_DATA_DIR
    city_profile: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000

    def city_profile_path(self) -> Path:
        if self.city_profile is not None:
            return self.city_profile
        candidate = self.data_dir / PROFILE_FILE_NAME
        return candidate if candidate.exists() else SAMPLE_DATA_DIR / PROFILE_FILE_NAME

    def load_city(self) -> CityProfile:
        return load_city_profile(self.city_profile_path())
