"""Response models of the HTTP API."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LayerPublic(BaseModel):
    """One stored layer."""

    name: str = Field(description="Identificador de la capa (defibrillators, ceas…).")
    title: str = Field(description="Nombre de la capa para las personas.")
    count: int = Field(description="Número de registros.")
    sources: dict[str, int] = Field(description="Registros por procedencia (campo source).")


class CityPublic(BaseModel):
    """The municipality the app serves."""

    name: str
    ine_code: str
    population: int
    population_year: int
    population_source: str


class IndexPublic(BaseModel):
    """What the app holds: the city and its layers."""

    app: str = "cardiomapa"
    city: CityPublic
    layers: list[LayerPublic]
    notice: str = Field(description="Aviso sobre la procedencia de los datos.")


class ErrorPublic(BaseModel):
    """Every error answer: a stable machine code and a Spanish message."""

    code: str
    message: str
