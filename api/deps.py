"""What routes depend on: the store, the city, the clock, who is asking, the nearest-device
snapshot, and the cache of what pages and feeds render from it."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.web import throttled_authenticate
from geo.city import CityProfile
from geo.clock import SYSTEM_CLOCK, Clock, local_today
from geo.core.nearest import DeviceFinder
from geo.io.changes import ChangeWatch
from geo.io.store import Store
from geo.services.inputs import device_finder
from geo.services.tokens import Principal
from geo.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")
_bearer = HTTPBearer(auto_error=False, description="Token emitido con `cardiomapa token create`.")


class FinderCache:
    """One :class:`DeviceFinder` per version of the defibrillators layer, fresh on every request.

    ``watch`` (:func:`geo.io.changes.watch`) tells from memory whether anything was committed since
    the last look, by this process or any other; only then is the layer's revision read, and the
    finder rebuilt if the layer changed. So a write through any worker is seen by the next request
    on every worker, without a database round trip per request.
    """

    def __init__(self, store: Store, city: CityProfile, *, watch: ChangeWatch) -> None:
        self.store = store
        self.city = city
        self.watch = watch
        self._lock = threading.Lock()
        self._finder: DeviceFinder | None = None
        self._revision = -1
        self._seen: int | None = None

    def invalidate(self) -> None:
        """Look again at the next request (this process wrote)."""
        self._seen = None

    def fresh(self) -> DeviceFinder | None:
        """The current finder if nothing was committed since it was checked (no database I/O)."""
        finder = self._finder
        if finder is not None and self._seen is not None and self.watch.version() == self._seen:
            return finder
        return None

    def get(self) -> DeviceFinder:
        """The finder, after reading the layer's revision if anything changed (and rebuilding)."""
        finder = self.fresh()
        if finder is not None:
            return finder
        with self._lock:
            finder = self.fresh()  # another thread may have checked while this one waited
            if finder is not None:
                return finder
            seen = self.watch.version()  # before the revision: a commit in between is seen next
            revision = self.store.revision("defibrillators")
            if self._finder is None or revision != self._revision:
                self._finder = device_finder(self.store, self.city)
                self._revision = revision
            self._seen = seen
            return self._finder


async def current_finder(finders: FinderCache) -> DeviceFinder:
    """The finder now, from an async route: at once when nothing changed, else read (and
    rebuilt if need be) in the thread pool, so the event loop never waits on the database."""
    finder = finders.fresh()
    return finder if finder is not None else await run_in_threadpool(finders.get)


class RenderCache(Generic[T]):
    """The last thing rendered and what it was rendered from (one per process).

    A key that has not changed gets the cached value. When it changes: if ``serve_stale`` says
    the previous value may still be served (the citizens' page: when only the minute changed; it
    reloads its device states itself when they change by the clock), it is rendered again in the
    background while callers keep getting the previous one, so no visitor waits (about 1 s with
    50,000 devices); otherwise (new data: a write through any worker) the first caller renders
    and the others wait for that one render. The very first value is always rendered while
    waiting.
    """

    def __init__(
        self, *, serve_stale: Callable[[tuple[Any, ...], tuple[Any, ...]], bool] | None = None
    ) -> None:
        self.serve_stale = serve_stale
        self._lock = threading.Lock()  # guards the fields below
        self._render_lock = threading.Lock()  # one render at a time
        self._key: tuple[Any, ...] | None = None
        self._value: T | None = None
        self._refreshing = False

    def get(self, key: tuple[Any, ...], render: Callable[[], T]) -> T:
        with self._lock:
            stale_ok = (
                self._key is not None
                and self.serve_stale is not None
                and self.serve_stale(self._key, key)
            )
            if self._value is not None and (key == self._key or (self._refreshing and stale_ok)):
                return self._value
            if self._value is not None and stale_ok:
                self._refreshing = True
                threading.Thread(
                    target=self._refresh, args=(key, render), name="page-render", daemon=True
                ).start()
                return self._value
        with self._render_lock:
            with self._lock:
                if self._value is not None and key == self._key:
                    return self._value  # rendered by the caller this one waited for
            value = render()
            with self._lock:
                self._key, self._value = key, value
            return value

    def _refresh(self, key: tuple[Any, ...], render: Callable[[], T]) -> None:
        try:
            with self._render_lock:
                value = render()
            with self._lock:
                self._key, self._value = key, value
        except (
            Exception
        ):  # a thread's last stop: keep the last good value; the next request retries
            logger.exception("no se pudo volver a dibujar el mapa ciudadano")
        finally:
            with self._lock:
                self._refreshing = False


# These only read app.state: async, so FastAPI does not send them to the thread pool.
async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _city(request: Request) -> CityProfile:
    city: CityProfile = request.app.state.city
    return city


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _finders(request: Request) -> FinderCache:
    cache: FinderCache = request.app.state.finders
    return cache


def app_clock(request: Request) -> Clock:
    """The clock the app runs on: ``app.state.clock`` when the app sets one, else the system's.

    The one place routes and pages get "now" and "today" from (see :func:`city_today`).
    """
    clock: Clock | None = getattr(request.app.state, "clock", None)
    return clock if clock is not None else SYSTEM_CLOCK


def city_today(request: Request) -> dt.date:
    """The city's local date by the app's clock."""
    city: CityProfile = request.app.state.city
    return local_today(app_clock(request), city.timezone)


async def _clock(request: Request) -> Clock:
    return app_clock(request)


async def _today(request: Request) -> dt.date:
    return city_today(request)


StoreDep = Annotated[Store, Depends(_store)]
CityDep = Annotated[CityProfile, Depends(_city)]
SettingsDep = Annotated[Settings, Depends(_settings)]
FindersDep = Annotated[FinderCache, Depends(_finders)]
#: The clock every "now" and "today" of a request comes from (``settings.clock(city)``).
ClockDep = Annotated[Clock, Depends(_clock)]
TodayDep = Annotated[dt.date, Depends(_today)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _principal(request: Request, store: StoreDep, credentials: Credentials) -> Principal:
    """The bearer token's principal; wrong tokens are throttled per client (429)."""
    return throttled_authenticate(request, store, credentials.credentials if credentials else None)


def _maybe_principal(
    request: Request, store: StoreDep, credentials: Credentials
) -> Principal | None:
    """Anonymous when no token is sent; a token that is sent must be valid."""
    if credentials is None:
        return None
    return throttled_authenticate(request, store, credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(_principal)]
MaybePrincipalDep = Annotated[Principal | None, Depends(_maybe_principal)]
