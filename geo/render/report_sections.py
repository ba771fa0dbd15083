"""The report's sections as text ready for the template: every figure formatted in Spanish.

One builder per section (the summary cards, the indicator table, lives saved, density, zones,
the week, gaps, the proposal, training and uses); where the records come from is
:mod:`geo.render.report_sources`. They read results already computed; nothing here draws.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geo.core.coverage import WeeklyCoverage
from geo.core.density import devices_needed
from geo.core.indicators import (
    FLOW_INDICATORS,
    INDICATOR_LABELS,
    KIND_LABELS,
    Indicators,
    estimate_decimals,
    format_value,
    year_on_year,
)
from geo.core.outcome_model import BAND_PERCENTILES, PARAMETER_KEYS
from geo.core.outputs import DASH
from geo.core.plan_lives import BANDS
from geo.core.results import GapsAnalysis, SitingAnalysis
from geo.core.text import in_words
from geo.render.report_format import day, is_missing, number, percent, plural

#: Rows of the gaps table (the map labels the same ones).
TOP_GAPS = 10

ENTITY_KIND_LABELS: Mapping[str, str] = {
    "residence": "residencia",
    "day_centre": "centro de día",
    "association": "asociación",
    "foundation": "fundación",
    "clinic": "clínica",
    "health_centre": "centro de salud",
    "hospital": "hospital",
    "pharmacy": "farmacia",
    "school": "centro educativo",
    "sports_centre": "centro deportivo",
    "public_building": "edificio público",
    "social_centre": "centro social",
    "company": "empresa",
    "other": "otra",
}
COHOUSING_STATUS_LABELS: Mapping[str, str] = {
    "idea": "idea",
    "planned": "proyecto",
    "building": "en obras",
    "active": "habitado",
}
SITE_KIND_LABELS: Mapping[str, str] = {
    "entity": "entidad sin DEA a su alcance",
    "cohousing": "cohousing / coliving",
    "grid": "punto de rejilla",
    "file": "candidato del archivo",
}
YEAR_STATUS_LABELS: Mapping[str, str] = {
    "closed": "cerrado",
    "in_course": "en curso",
    "future": "futuro",
}


def _label(key: str, radius_m: float) -> str:
    return INDICATOR_LABELS[key].replace("≤ radio", f"≤ {number(radius_m)} m")


def indicator_table(ind: Indicators, year: int, radius_m: float) -> dict[str, Any]:
    """Every indicator per plan year with its band, the change on the year before and to date."""
    years = ind.years
    change = year_on_year(years)
    change_row = change[change["year"] == year].iloc[0]
    columns = []
    for row in years.itertuples():
        status = str(row.status)
        title = str(row.year)
        note = f"en curso, a {day(ind.as_of)}" if status == "in_course" else ""
        columns.append(
            {"title": title, "note": note, "status": status, "current": int(row.year) == year}
        )
    rows = []
    for key in INDICATOR_LABELS:
        cells = [
            DASH if row["status"] == "future" else format_value(key, row[key])
            for _, row in years.iterrows()
        ]
        bands = None
        if key in BANDS:  # the band's ends, under the estimate
            bands = [
                "" if row["status"] == "future" else _band_text(key, row[key], *row[[*BANDS[key]]])
                for _, row in years.iterrows()
            ]
        rows.append(
            {
                "key": key,
                "label": _label(key, radius_m),
                "cells": cells,
                "bands": bands,
                "change": format_value(key, change_row[key], change=True),
                "to_date": format_value(key, ind.to_date.get(key)),
                "to_date_band": _band_text(
                    key, ind.to_date.get(key), *(ind.to_date.get(end) for end in BANDS[key])
                )
                if key in BANDS
                else "",
                "flow": key in FLOW_INDICATORS,
            }
        )
    previous = year - 1 if year - 1 in ind.plan.years else None
    return {"columns": columns, "rows": rows, "previous": previous}


def _band_text(key: str, value: Any, low: Any, high: Any) -> str:
    """``0,011–0,028``: a band's ends with the estimate's decimals (empty when unknown)."""
    if is_missing(value) or is_missing(low) or is_missing(high):
        return ""
    places = estimate_decimals(float(value))
    return "–".join(format_value(key, end, decimals=places) for end in (low, high))


def _parameter_number(value: float) -> str:
    """A parameter as written in its table: up to three decimals, none trailing."""
    decimals = next((d for d in range(4) if math.isclose(round(value, d), value)), 3)
    return number(value, decimals)


def lives_section(ind: Indicators, year: int) -> dict[str, Any] | None:
    """The section on expected lives saved: per plan year so far, the cost, the parameters."""
    lives = ind.lives
    if lives is None:
        return None
    rows = []
    for row in ind.years[ind.years["status"] != "future"].to_dict("records"):
        week = row["outcome_week_start"]
        cells: dict[str, Any] = {
            "year": str(row["year"]),
            "current": int(row["year"]) == year,
            "status": YEAR_STATUS_LABELS[str(row["status"])],
            "period_end": day(row["period_end"]),
            "week": f"{day(week)} – {day(week + dt.timedelta(days=6))}",
            "initial": format_value("lives_saved", row["lives_saved_initial_only"]),
            "devices": number(row["plan_devices_in_place"]),
            "annual_cost": format_value(
                "new_devices_annual_cost_eur", row["new_devices_annual_cost_eur"]
            ),
        }
        for key, name in (
            ("lives_saved", "lives"),
            ("lives_saved_by_new_devices", "added"),
            ("life_years_by_new_devices", "life_years"),
            ("cost_per_life_year_eur", "per_life_year"),
        ):
            low, high = (row[end] for end in BANDS[key])
            cells[name] = format_value(key, row[key])
            cells[f"{name}_band"] = _band_text(key, row[key], low, high)
        rows.append(cells)
    current = next(r for r in rows if r["current"])
    plan = ind.plan
    cost = None
    if plan.annual_cost_per_device_eur is not None:
        cost = {
            "device": format_value("device_cost_eur", plan.device_cost_eur),
            "lifetime": number(plan.lifetime_years, 1 if plan.lifetime_years % 1 else 0),
            "lifetime_default": plan.device_lifetime_years is None,
            "upkeep": format_value("device_cost_eur", plan.device_upkeep_eur_per_year),
            "annual": format_value("device_cost_eur", plan.annual_cost_per_device_eur),
            "source": plan.device_cost_source or "",
        }
    parameters = [
        {
            "label": item.label or item.key,
            "key": item.key,
            "value": f"{_parameter_number(item.central)} {item.unit}".strip(),
            "range": "fijo"
            if item.fixed
            else f"{_parameter_number(item.low)}–{_parameter_number(item.high)}",
            "source": item.source,
            "note": item.note,
        }
        for item in (lives.parameters[key] for key in PARAMETER_KEYS)
    ]
    life_years = lives.parameters.central("life_years_per_survivor")
    return {
        "rows": rows,
        "current": current,
        "cost": cost,
        "parameters": parameters,
        "home_arrests": lives.home_arrests,
        "reach": number(lives.reach_m),
        "full_use": number(lives.full_use_m),
        "ratio": _parameter_number(lives.parameters.central("day_night_ratio")),
        "draws": number(lives.draws),
        "seed": str(lives.seed),
        "low": number(BAND_PERCENTILES[0]),
        "high": number(BAND_PERCENTILES[1]),
        "life_years": _parameter_number(life_years),
    }


def _region(ind: Indicators) -> pd.Series | None:
    region_id = ind.plan.region_reference
    if region_id is None:
        return None
    rows = ind.density[(ind.density["id"] == region_id) & ~ind.density["is_city"]]
    return None if rows.empty else rows.iloc[0]


def summary_section(ind: Indicators, year: int, radius_m: float) -> dict[str, Any]:
    """The year's summary cards, and how many devices the regional reference asks for."""
    row = ind.year(year)
    total = int(row["devices_total"])
    region = _region(ind)
    density_text = f"{number(row['devices_per_100k'], 1)}"
    if region is None:
        region_text = "No hay referencia regional configurada (plan.region_reference)."
        needed = None
    else:
        needed = devices_needed(total, ind.population, float(region["devices_per_100k"]))
        region_text = (
            f"{region['name']}: {number(region['devices_per_100k'], 1)} por 100.000"
            + (f" ({int(region['year'])})" if not is_missing(region["year"]) else "")
            + ". "
            + (
                f"La supera con {plural(total, 'desfibrilador', 'desfibriladores')}."
                if needed == 0
                else f"Para superarla {'falta' if needed == 1 else 'faltan'} "
                f"{plural(needed, 'desfibrilador', 'desfibriladores')} "
                f"({number(total + needed)} en total)."
            )
        )
    radius = number(radius_m)
    cards = [
        {
            "title": "Desfibriladores",
            "value": number(total),
            "detail": f"{number(row['devices_new'])} nuevos en {year} · "
            f"{number(row['devices_removed'])} retirados · "
            f"{number(row['devices_initial'])} antes del plan",
        },
        {
            "title": "Entidades cardioprotegidas",
            "value": f"{number(row['entities_cardioprotected'])} de "
            f"{number(row['entities_members'])}",
            "detail": f"{percent(row['share_entities_cardioprotected'])} de las entidades del "
            "clúster",
        },
        {
            "title": f"Personas formadas en {year}",
            "value": number(row["people_trained"]),
            "detail": "en "
            + plural(int(row["training_actions"]), "acción formativa", "acciones formativas"),
        },
        {
            "title": f"Personas atendidas con un DEA en {year}",
            "value": number(row["people_attended"]),
            "detail": plural(int(row["uses"]), "uso comunicado", "usos comunicados"),
        },
        {
            "title": f"Población a ≤ {radius} m de un DEA 24 h",
            "value": percent(row["share_covered"]),
            "detail": f"{percent(row['share_covered_any_hours'])} con cualquier DEA en su horario"
            f" · mayores de 65: {percent(row['share_65_plus_covered'])}",
        },
        {
            "title": "Desfibriladores por 100.000 habitantes",
            "value": density_text,
            "detail": region_text,
        },
    ]
    return {"cards": cards, "needed": needed, "region": region}


def density_section(ind: Indicators) -> dict[str, Any]:
    """Devices per 100,000 inhabitants: the city's and the references' it is compared with."""
    region = _region(ind)
    rows = []
    for row in ind.density.itertuples():
        if row.is_city:
            devices = int(ind.to_date["devices_total"])
            basis = (
                f"{plural(devices, 'desfibrilador verificado', 'desfibriladores verificados')}, "
                f"{number(ind.population)} habitantes, "
                f"{number(ind.to_date['devices_per_km2'], 2)} por km²"
            )
            source = f"cardiomapa, a {day(ind.as_of)}"
        else:
            basis, source = str(row.basis), str(row.source)
        rows.append(
            {
                "name": str(row.name),
                "value": number(row.devices_per_100k, 1),
                "year": DASH if is_missing(row.year) else str(int(row.year)),
                "basis": basis,
                "source": source,
                "is_city": bool(row.is_city),
                "is_region": region is not None and row.id == region["id"],
                "needed": DASH if row.is_city else number(row.devices_needed),
            }
        )
    cities = ind.density[(ind.density["scope"] == "city") & ~ind.density["is_city"]]
    city_rank = None
    if len(cities):
        ranked = ind.density[ind.density["scope"] == "city"].reset_index(drop=True)
        position = int(np.flatnonzero(ranked["is_city"].to_numpy())[0]) + 1
        city_rank = {"position": position, "of": len(ranked)}
    current = float(ind.to_date["devices_per_100k"])
    region_row = None
    if region is not None:
        region_row = {
            "name": str(region["name"]),
            "value": number(region["devices_per_100k"], 1),
            "year": None if is_missing(region["year"]) else str(int(region["year"])),
            "needed": int(region["devices_needed"]),
        }
    return {
        "rows": rows,
        "region": region_row,
        "other_cities": [str(name) for name in cities["name"]],
        "city_rank": city_rank,
        "current": number(current, 1),
    }


def zones_section(ind: Indicators) -> list[dict[str, str]]:
    """Residents, devices and coverage per CEAS zone."""
    return [
        {
            "name": str(row.zone_name),
            "residents": number(row.residents),
            "initial": number(row.devices_initial),
            "new": number(row.devices_new),
            "total": number(row.devices_total),
            "per_100k": number(row.devices_per_100k, 1),
            "always": percent(row.share_covered),
            "anytime": percent(row.share_covered_any_hours),
        }
        for row in ind.zones.itertuples()
    ]


def week_section(week: WeeklyCoverage) -> dict[str, Any]:
    """The weekly profile: mean, worst and best hour, and what opening hours cost."""
    document = week.to_dict()
    worst = document["worst_slot"]
    share = week.residents_covered_always / week.residents if week.residents else 0.0
    potential = week.residents_covered_potential / week.residents if week.residents else 0.0
    return {
        "start": day(week.week_start.date()),
        "end": day(week.week_start.date() + dt.timedelta(days=6)),
        "mean": percent(week.mean_share_covered),
        "worst_label": str(worst["label"]),
        "worst": percent(worst["share_covered"]),
        "best": percent(float(week.slices["share_covered"].max())),
        "always": percent(share),
        "potential": percent(potential),
        "lost": percent(week.share_lost_to_hours),
        "lost_off_hours": percent(document["share_lost_off_hours"]),
        "issues": len(week.hours_issues),
    }


def gaps_section(
    gaps: GapsAnalysis, zone_names: Mapping[str, str], radius_m: float
) -> dict[str, Any]:
    """The uncovered areas with most residents, and the entities and cohousing out of reach."""
    result = gaps.result
    areas = [
        {
            "rank": int(row.rank),
            "zone": zone_names.get(str(row.zone_id), DASH),
            "residents": number(row.residents),
            "seniors": number(row.residents_65_plus),
            "nearest": number(row.nearest_distance_m)
            if np.isfinite(row.nearest_distance_m)
            else DASH,
        }
        for row in gaps.areas.head(TOP_GAPS).itertuples()
    ]
    entities = [
        {
            "name": str(row.name),
            "kind": ENTITY_KIND_LABELS.get(str(row.kind), str(row.kind)),
            "nearest": number(row.distance_m) if np.isfinite(row.distance_m) else DASH,
            "own": "sí, pero no disponible 24 h" if row.holds_device else "no",
        }
        for row in gaps.uncovered["entities"].itertuples()
    ]
    cohousing = [
        {
            "name": str(row.name),
            "status": COHOUSING_STATUS_LABELS.get(str(row.status), str(row.status)),
            "dwellings": number(row.dwellings),
            "nearest": number(row.distance_m) if np.isfinite(row.distance_m) else DASH,
        }
        for row in gaps.uncovered["cohousing"].itertuples()
    ]
    uncovered = result.residents - result.residents_covered
    uncovered_65 = result.residents_65_plus - result.residents_65_plus_covered
    return {
        "areas": areas,
        "count": len(gaps.areas),
        "entities": entities,
        "cohousing": cohousing,
        "uncovered": number(uncovered),
        "residents": number(result.residents),
        "uncovered_share": percent(uncovered / result.residents if result.residents else 0.0),
        "uncovered_65": number(uncovered_65),
        "radius": number(radius_m),
    }


def _site_name(name: str, kind: str) -> str:
    if kind == "grid":
        return "Punto de rejilla"
    label = SITE_KIND_LABELS.get(kind)
    return f"{name} ({label})" if label else name


#: What each step of a plan does, as the report's table says it.
def _where(near: Any) -> str:
    """Where a step is, in words (``""`` when no known place is near: the coordinates say it)."""
    return str(near["text"]) if isinstance(near, dict) else ""


def proposal_section(siting: SitingAnalysis, ind: Indicators, gaps: GapsAnalysis) -> dict[str, Any]:
    """The proposed steps in greedy order (new devices and devices opened 24/7), and the
    entities still without one."""
    document = siting.document
    chosen = siting.chosen
    steps = [
        {
            "step": int(row.step),
            "action": in_words("action", row.action).capitalize(),
            "name": _site_name(str(row.name), str(row.kind)),
            "where": _where(row.near),
            "lonlat": f"{number(row.lat, 5)}, {number(row.lon, 5)}",
            "residents": f"+{number(row.residents_gained)}",
            "seniors": f"+{number(row.residents_65_plus_gained)}",
            "after": percent(row.share_covered_after),
        }
        for row in chosen.itertuples()
    ]
    out_of_reach = set(gaps.uncovered["entities"]["id"].astype(str))
    lacking = ind.entities[~ind.entities["cardioprotected"]]
    entities = [
        {
            "name": str(row.name),
            "kind": ENTITY_KIND_LABELS.get(str(row.kind), str(row.kind)),
            "since": DASH if is_missing(row.member_since) else day(row.member_since),
            "reach": "no" if str(row.id) in out_of_reach else "sí",
        }
        for row in lacking.itertuples()
    ]
    return {
        "steps": steps,
        "new": int(document.get("new_devices", len(steps))),
        "extended": int(document.get("extended_devices", 0)),
        "before": percent(document["share_covered_before"]),
        "after": percent(document["share_covered_after"]),
        "gained": number(
            document["residents_covered_after"] - document["residents_covered_before"]
        ),
        "candidates": number(document["candidates_count"]),
        "entities": entities,
    }


def training_section(ind: Indicators) -> dict[str, Any]:
    """Training per year and kind (with each year's total), and the reported uses."""
    rows = []
    order = {kind: position for position, kind in enumerate(KIND_LABELS)}
    for year, group in ind.training.groupby("year", sort=True):
        group = group.sort_values("kind", key=lambda kinds: kinds.map(order), kind="stable")
        for row in group.itertuples():
            rows.append(
                {
                    "year": str(year),
                    "kind": KIND_LABELS.get(str(row.kind), str(row.kind)),
                    "actions": number(row.actions),
                    "people": number(row.people_trained),
                    "subtotal": False,
                }
            )
        rows.append(
            {
                "year": str(year),
                "kind": "Total del año",
                "actions": number(group["actions"].sum()),
                "people": number(group["people_trained"].sum()),
                "subtotal": True,
            }
        )
    uses = [
        {
            "year": str(int(row.year)),
            "status": YEAR_STATUS_LABELS[str(row.status)],
            "uses": number(row.uses),
            "people": number(row.people_attended),
        }
        for row in ind.years.itertuples()
        if row.status != "future"
    ]
    return {
        "rows": rows,
        "uses": uses,
        "entities_with_training": number(ind.to_date.get("entities_with_training", 0)),
        "people_total": number(ind.to_date["people_trained"]),
        "actions_total": number(ind.to_date["training_actions"]),
    }
