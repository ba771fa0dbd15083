"""Response models of the planners' analyses: ``/api/coverage``, ``/api/gaps``, ``/api/siting``,
``/api/outcomes`` and ``/api/indicators`` answer the documents of ``cardiomapa … --format json``.

The top level of each document is typed, with its members in the order the document holds them;
its tables (one record per zone, area, site, hour of the week, plan year…) are lists of records
whose columns the README documents. Nothing is added or dropped (``extra="forbid"``: a member
the analysis writes and no model declares fails the tests, it is never lost), and a number keeps
the type the analysis gave it (:data:`Number`), so an answer validated here is the same JSON as
the document. Members that only some requests produce (``income_quintiles``, ``year``) are left
out of the answer when absent: the routes answer with ``response_model_exclude_unset``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

#: A figure as the analysis computed it: an integer stays an integer and a float a float (a
#: plain ``float`` field would write an estimate of 0 lives as ``0.0``, a count of 3 as ``3.0``).
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
#: A table of the document: one JSON object per row, columns as documented in the README.
Records = list[dict[str, Any]]
#: An instant or a day as ISO 8601 text, as the document writes it.
IsoText = str


class Document(BaseModel):
    """A document of an analysis: every member declared, none added."""

    model_config = ConfigDict(extra="forbid")


# --- coverage ---------------------------------------------------------------------------------


class CoveragePublic(Document):
    """Coverage at one instant (``instant``) or by the devices open 24/7 all year (``always``)."""

    city: str
    data_origin: str = Field(description="De dónde se leyeron las capas.")
    mode: Literal["instant", "always"]
    at: IsoText | None = Field(description="El instante (hora local); null: 24/7.")
    radius_m: float
    distance_model: str
    distance_model_description: str
    devices_available: int
    devices_total: int
    residents: int
    residents_covered: int
    share_covered: float
    residents_65_plus: int
    residents_65_plus_covered: int
    share_65_plus_covered: float
    count_overdue: bool
    residents_only_overdue: int
    residents_65_plus_only_overdue: int
    zones: Records = Field(description="Una fila por zona CEAS.")
    warnings: list[str]
    income_quintiles: Records | None = Field(
        default=None, description="Solo con by=income: la cobertura por quintil de renta."
    )


class WorstSlot(Document):
    """The hour of the week with the fewest residents covered."""

    slot: int = Field(description="0 = lunes 00:00-01:00 … 167 = domingo 23:00-24:00.")
    label: str
    share_covered: float


class WeeklyCoveragePublic(Document):
    """Coverage in each of the 168 hours of the reference week (``weekly=true``)."""

    mode: Literal["weekly"]
    week_start: IsoText
    radius_m: float
    distance_model: str
    distance_model_description: str
    residents: int
    residents_65_plus: int
    residents_covered_always: int
    share_covered_always: float
    residents_covered_potential: int
    share_covered_potential: float
    mean_share_covered: float
    count_overdue: bool
    residents_only_overdue: int
    share_lost_to_hours: float
    share_lost_off_hours: float
    worst_slot: WorstSlot
    slices: Records = Field(description="Una fila por hora de la semana (168).")
    zones: Records = Field(description="Una fila por zona CEAS y hora de la semana.")
    warnings: list[str]


CoverageAnswer = Annotated[CoveragePublic | WeeklyCoveragePublic, Field(discriminator="mode")]


# --- gaps -------------------------------------------------------------------------------------


class GapsPublic(Document):
    """Uncovered areas ranked, and the entities and cohousing sites without a device in reach."""

    mode: Literal["instant", "always"]
    at: IsoText | None
    radius_m: float
    distance_model: str
    distance_model_description: str
    residents_uncovered: int
    areas: Records = Field(description="Zonas sin cobertura, de más a menos residentes.")
    entities_without_device: Records
    cohousing_without_device: Records


# --- siting -----------------------------------------------------------------------------------

SITES = (
    "Un paso por fila, en el orden de ejecución: step, candidate_id, action (new: desfibrilador "
    "nuevo; extend_hours: abrir 24 h uno existente), device_id (el existente, en extend_hours; "
    "null en new), name, kind, lo que añade (residents_gained, residents_65_plus_gained; con "
    "objective=lives, lives_gained) y lo acumulado (residents_covered_new y "
    "share_covered_after; con lives, lives_saved_after), lon, lat y near: dónde está (kind, "
    "name, address, distance_m en línea recta y text, p. ej. «a 40 m de Residencia San Juan»; "
    "null si no hay un lugar conocido a menos de 150 m)."
)


class PlanSteps(Document):
    """What both objectives' plans say of their steps: the method, how it ended and what the steps
    do."""

    mode: Literal["budget", "target"]
    method: str
    status: str = Field(description="optimal, time_limit o greedy.")
    gap: Number | None = Field(description="Hueco relativo demostrado (null con greedy).")
    solver_seconds: Number
    new_devices: int = Field(description="Pasos que instalan un desfibrilador nuevo.")
    extended_devices: int = Field(
        description="Pasos que abren 24 h (o pasan a una vitrina exterior) uno existente."
    )
    actions: list[Literal["new", "extend_hours"]] = Field(
        description="Acciones que el plan podía mezclar."
    )
    new_candidates_replaced: int = Field(
        description="Candidatos nuevos descartados por estar en el mismo sitio que un "
        "desfibrilador que se puede abrir 24 h (se propone la ampliación en su lugar)."
    )


class SitingPublic(PlanSteps):
    """New sites that cover the most residents (``objective=residents``), in the order to install
    them, and the zones before and after."""

    target_share: Number | None
    radius_m: Number
    distance_model: str
    distance_model_description: str
    objective: Literal["residents"]
    senior_weight: Number
    candidates: str
    candidates_count: int
    residents: int
    residents_covered_before: int
    share_covered_before: float
    residents_covered_after: int
    share_covered_after: float
    sites: Records = Field(description=SITES)
    zones: Records


class LivesSaved(Document):
    """Expected lives saved per year, with the model's 5–95 % band."""

    lives_saved: Number
    lives_saved_low: Number
    lives_saved_high: Number


class LivesSitingPublic(PlanSteps):
    """New sites that add the most expected lives saved per year (``objective=lives``)."""

    objective: Literal["lives"]
    target_lives: Number | None
    outcome_mode: str
    week_start: IsoText | None
    radius_m: Number
    distance_model: str
    distance_model_description: str
    candidates: str
    candidates_count: int
    residents: Number
    before: LivesSaved
    after: LivesSaved
    lives_gained: Number
    lives_gained_low: Number
    lives_gained_high: Number
    sites: Records = Field(description=SITES)
    zones: Records
    warnings: list[str]


SitingAnswer = Annotated[SitingPublic | LivesSitingPublic, Field(discriminator="objective")]


# --- outcomes ---------------------------------------------------------------------------------


class Band(Document):
    """How the model's band is drawn: its percentiles, draws and seed."""

    percentiles: list[Number]
    draws: int
    seed: int


class OutcomesPublic(Document):
    """Expected lives saved per year: the city, each CEAS zone and each device (``format=json``)."""

    city: str
    data_origin: str
    mode: str = Field(description="weekly, instant o always.")
    at: IsoText | None
    week_start: IsoText | None
    reach_m: Number
    full_use_m: Number
    distance_model: str
    distance_model_description: str
    band: Band
    hour_weights: str
    totals: dict[str, Any] = Field(description="Las cifras de toda la ciudad.")
    zones: Records
    devices: Records
    warnings: list[str]
    parameters: Records = Field(description="Los parámetros del modelo, con su fuente.")
    observed_arrests: dict[str, Any] | None


# --- indicators -------------------------------------------------------------------------------


class PlanPublic(Document):
    """The municipal plan the indicators measure."""

    name: str
    action: str
    goal: str
    start: IsoText
    end: IsoText
    device_cost_eur: Number | None
    device_lifetime_years: Number
    device_upkeep_eur_per_year: Number
    device_cost_source: str | None
    annual_cost_per_device_eur: Number | None


class IndicatorOutcomesPublic(Document):
    """How the indicators' lives saved were estimated."""

    mode: str
    reach_m: Number
    full_use_m: Number
    band: Band
    home_arrests: str
    notes: list[str]
    parameters: Records


class IndicatorsPublic(Document):
    """The plan's indicators per year and to date, by zone, entity, training and density."""

    data_origin: str
    city: str
    plan: PlanPublic
    as_of: IsoText
    radius_m: float
    distance_model: str
    population: int
    area_km2: Number
    labels: dict[str, str] = Field(description="Nombre de cada indicador.")
    years: Records = Field(description="Una fila por año del plan (con year=, ese año).")
    year_on_year: Records
    to_date: dict[str, Any]
    zones: Records
    entities: Records
    training: Records
    density: Records
    outcomes: IndicatorOutcomesPublic | None
    notes: list[str]
    distance_model_description: str
    year: int | None = Field(default=None, description="Solo con year=: el año pedido.")
