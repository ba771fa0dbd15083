"""Where an analysis gets its inputs: the database or a folder of layer files, plus the network.

An edge helper for the CLI and the API: it reads (files, database), the computing modules do not.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.city import CityProfile
from geo.clock import local_today
from geo.core.availability import ReportFlag
from geo.core.density import DensityReference
from geo.core.distance import DistanceModel, NetworkDistance, StraightLine, to_metric
from geo.core.gaps import sites_without_device
from geo.core.layers import Layers
from geo.core.nearest import DeviceFinder
from geo.core.outcome_model import OutcomeParameters
from geo.core.results import AnalysisInputs
from geo.core.siting import candidate_grid
from geo.errors import IncomeDataError, ReferenceDataError, SitingError
from geo.io.files import read_layers
from geo.io.osm import load_network
from geo.io.store import Store
from geo.services.training import read_training_csv, training_rows
from geo.settings import SAMPLE_DATA_DIR, Settings

INCOME_FILE = "palencia_34120_renta_media_secciones_2015_2016_INE_ADRH.csv"
INCOME_COLUMN = "renta_media_persona_2016"
DENSITY_FILE = "dea_density_references.csv"
OUTCOME_PARAMETERS_FILE = "outcome_parameters.csv"
TRAINING_FILE = "training.csv"


def load_inputs(
    settings: Settings,
    *,
    store: Store | None,
    network_file: Path | None = None,
    use_network: bool = True,
) -> AnalysisInputs:
    """Read the layers from the open ``store``, or from ``settings.data_dir`` when it is None.

    The walking network is ``network_file`` when given; otherwise, reading from the database,
    the stored network if there is one. ``use_network=False`` forces the straight-line model.
    From the database come also the citizens' pending "missing"/"broken" reports: those
    devices do not count until staff or their entity answer. The store is the caller's (the
    app's, one per process; the command's): this never opens one.
    """
    city = settings.load_city()
    network = None
    reports: dict[str, ReportFlag] = {}
    if store is None:
        layers = read_layers(
            settings.data_dir, city, today=local_today(settings.clock(city), city.timezone)
        )
        origin = f"archivos de {settings.data_dir}"
    else:
        layers = store.read_layers()
        reports = store.downgrading_reports()
        if use_network and network_file is None:
            network = store.read_network(crs=city.metric_crs)
        origin = "base de datos"
    if use_network and network_file is not None:
        network = load_network(network_file, crs=city.metric_crs)
    metric = Layers({name: to_metric(frame, city) for name, frame in layers.frames.items()})
    return AnalysisInputs(city, layers, metric, network, origin, reports=reports)


def device_finder(store: Store, city: CityProfile) -> DeviceFinder:
    """A nearest-device finder over the stored devices, on the stored walking network if any,
    with the citizens' pending "missing"/"broken" reports (:meth:`Store.downgrading_reports`)."""
    network = store.read_network(crs=city.metric_crs)
    model = NetworkDistance(network) if network is not None else StraightLine()
    return DeviceFinder(
        store.read_layer("defibrillators"), city, model=model, reports=store.downgrading_reports()
    )


def plan_registers(
    settings: Settings, inputs: AnalysisInputs, *, store: Store | None, today: dt.date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training register and the reported uses of devices, for the plan's indicators.

    From the open ``store`` (:meth:`Store.training_frame`, :meth:`Store.uses_frame`); without
    one, the training register is ``<data dir>/training.csv`` if there is one (checked against
    ``inputs``' entities, none held after ``today``, the city's date), and no uses: they are only
    ever reported to the database.

    Raises
    ------
    RecordValidationError
        ``training.csv`` is malformed (every problem with its line and column).
    """
    if store is not None:
        return store.training_frame(), store.uses_frame()
    uses = pd.DataFrame(
        {
            "device_id": pd.Series(dtype="object"),
            "used_at": pd.Series(dtype="datetime64[us]"),
            "people_attended": pd.Series(dtype="int64"),
        }
    )
    path = settings.data_dir / TRAINING_FILE
    columns = ["held_on", "entity_id", "place", "kind", "people_trained", "source"]
    if not path.exists():
        return pd.DataFrame({name: pd.Series(dtype="object") for name in columns}), uses
    rows = training_rows(
        read_training_csv(path),
        file=path.name,
        entity_ids=set(inputs.layers["entities"]["id"]),
        today=today,
        source=f"csv:{path.name}",
    )
    training = pd.DataFrame(rows, columns=columns)
    return training.astype({"people_trained": "int64"}), uses


def section_incomes(settings: Settings) -> pd.DataFrame:
    """INE mean income per person by census section (``code``, ``income``; NaN where unpublished).

    Read from ``<data dir>/reference/`` if the file is there, else from the sample's copy.
    """
    path = _reference_file(settings, INCOME_FILE)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("level") == "seccion"]
    except FileNotFoundError:
        msg = f"No se encuentra la tabla de renta por sección {path}."
        raise IncomeDataError(msg) from None
    try:
        incomes = [float(r[INCOME_COLUMN]) if r[INCOME_COLUMN].strip() else None for r in rows]
        return pd.DataFrame({"code": [r["code"] for r in rows], "income": incomes})
    except (KeyError, ValueError) as exc:
        msg = f"{path.name}: se esperaban las columnas code y {INCOME_COLUMN} numérica ({exc})."
        raise IncomeDataError(msg) from None


def density_references(settings: Settings) -> list[DensityReference]:
    """Published defibrillator densities to compare with (``reference/dea_density_references.csv``).

    Read from ``<data dir>/reference/`` if the file is there, else from the sample's copy.

    Raises
    ------
    ReferenceDataError
        The file is missing, or a row lacks a field or has a density that is not a positive number
        (the message names the line and the field).
    """
    path = _reference_file(settings, DENSITY_FILE)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        msg = f"No se encuentra la tabla de densidades de referencia {path}."
        raise ReferenceDataError(msg) from None
    references = []
    for line, row in enumerate(rows, start=2):
        for name in ("id", "name", "scope", "devices_per_100k", "source"):
            if not (row.get(name) or "").strip():
                msg = f"{path.name}, línea {line}, campo {name}: falta el valor."
                raise ReferenceDataError(msg)
        try:
            density = float(row["devices_per_100k"].replace(",", "."))
            year = int(row["year"]) if (row.get("year") or "").strip() else None
        except ValueError:
            msg = (
                f"{path.name}, línea {line}: devices_per_100k debe ser un número y year un año "
                f"(se leyó {row['devices_per_100k']!r} y {row.get('year')!r})."
            )
            raise ReferenceDataError(msg) from None
        if not density > 0:
            msg = f"{path.name}, línea {line}, campo devices_per_100k: debe ser mayor que 0."
            raise ReferenceDataError(msg)
        references.append(
            DensityReference(
                id=row["id"].strip(),
                name=row["name"].strip(),
                scope=row["scope"].strip(),
                devices_per_100k=density,
                year=year,
                basis=(row.get("basis") or "").strip(),
                source=row["source"].strip(),
            )
        )
    return references


def outcome_parameters(settings: Settings, path: Path | None = None) -> OutcomeParameters:
    """The outcome model's parameters (``reference/outcome_parameters.csv``, or ``path``).

    Read from ``<data dir>/reference/`` if the file is there, else from the sample's copy.

    Raises
    ------
    geo.errors.OutcomeInputError
        A row lacks a field, a value is not a number or is out of range (the message names the
        file, the line and the field).
    ReferenceDataError
        The file is missing.
    """
    path = path or _reference_file(settings, OUTCOME_PARAMETERS_FILE)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except FileNotFoundError:
        msg = f"No se encuentra la tabla de parámetros del modelo de vidas salvadas {path}."
        raise ReferenceDataError(msg) from None
    return OutcomeParameters.from_rows(rows, name=path.name)


def _reference_file(settings: Settings, name: str) -> Path:
    path = settings.data_dir / "reference" / name
    return path if path.exists() else SAMPLE_DATA_DIR / "reference" / name


def site_cover(
    inputs: AnalysisInputs,
    layer: str,
    *,
    radius_m: float,
    at: dt.datetime | None,
    model: DistanceModel,
    reference_date: dt.date | None = None,
) -> gpd.GeoDataFrame:
    """The sites of ``layer`` (``entities`` or ``cohousing``), each with whether a device
    available at ``at`` is within ``radius_m`` (:func:`geo.core.gaps.sites_without_device`)."""
    return sites_without_device(
        inputs.metric[layer],
        inputs.metric["defibrillators"],
        inputs.city,
        radius_m=radius_m,
        at=at,
        model=model,
        reference_date=reference_date,
        **inputs.counting(),
    )


def siting_candidates(
    spec: str,
    inputs: AnalysisInputs,
    *,
    radius_m: float,
    at: dt.datetime | None,
    model: DistanceModel,
    reference_date: dt.date | None = None,
) -> gpd.GeoDataFrame:
    """Candidate sites for ``cardiomapa site --candidates SPEC`` (metric CRS).

    ``entities``: member entities with no available device within ``radius_m``; ``all``: those,
    the cohousing sites and a regular grid every ``radius_m / 2`` over the populated area; else a
    GeoJSON file (:func:`read_candidates`). Columns ``id``, ``name``, ``kind``, ``geometry``.
    """
    metric = inputs.metric
    entities = site_cover(
        inputs, "entities", radius_m=radius_m, at=at, model=model, reference_date=reference_date
    )
    lacking = entities.loc[~entities["covered"], ["id", "name", "geometry"]].assign(kind="entity")
    if spec == "entities":
        return lacking.reset_index(drop=True)
    if spec == "all":
        cohousing = metric["cohousing"][["id", "name", "geometry"]].assign(kind="cohousing")
        grid = candidate_grid(metric["population"], spacing_m=radius_m / 2).assign(
            name="punto de rejilla", kind="grid"
        )
        frame = pd.concat([lacking, cohousing, grid], ignore_index=True)
        return gpd.GeoDataFrame(frame, geometry="geometry", crs=metric["population"].crs)
    return read_candidates(Path(spec), inputs.city)


def read_candidates(path: Path, city: CityProfile) -> gpd.GeoDataFrame:
    """Candidate sites from a GeoJSON file of points with a unique ``id`` (and ``name``).

    Returned in the city's metric CRS with ``id``, ``name``, ``kind`` = ``file``.
    """
    if not path.is_file():
        msg = (
            f"--candidates: no existe el archivo {path}; se admite entities, all o un archivo "
            "GeoJSON de puntos con un campo id."
        )
        raise SitingError(msg)
    try:
        frame = gpd.read_file(path)
    except (OSError, ValueError) as exc:
        msg = f"{path.name}: no se puede leer como GeoJSON ({exc})."
        raise SitingError(msg) from None
    if "id" not in frame or frame["id"].isna().any() or frame["id"].duplicated().any():
        msg = f"{path.name}: cada candidato necesita un campo id único."
        raise SitingError(msg)
    if not (frame.geom_type == "Point").all():
        msg = f"{path.name}: los candidatos deben ser puntos."
        raise SitingError(msg)
    outside = ~frame.to_crs("EPSG:4326").geometry.within(city.boundary)
    if outside.any():
        msg = (
            f"{path.name}, elemento {int(np.flatnonzero(outside.to_numpy())[0])}: el candidato "
            f"cae fuera del término municipal de {city.name}."
        )
        raise SitingError(msg)
    name = frame["name"] if "name" in frame else frame["id"]
    candidates = gpd.GeoDataFrame(
        {"id": frame["id"].astype(str), "name": name.astype(str), "kind": "file"},
        geometry=frame.geometry,
        crs=frame.crs,
    )
    return candidates.to_crs(city.metric_crs)


def arrests_inputs(store: Store, city: CityProfile) -> gpd.GeoDataFrame:
    """The stored past arrests in the city's metric CRS, for the staff's analyses.

    PRIVATE (:meth:`Store.arrests_frame`): what reads this is never served publicly. Empty when
    none was imported (``cardiomapa import arrests``).
    """
    return to_metric(store.arrests_frame(), city)
