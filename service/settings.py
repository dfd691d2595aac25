"""Settings from the environment (prefix WSRELAY_), a YAML/JSON file and `.env`, validated at start.

Sources, later wins: defaults < file named by WSRELAY_CONFIG < `.env` < environment. Every
problem is reported at once (see `problems`), naming the setting, so an operator fixes a bad
deployment in one round.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from . import httplimits, tls
from .backplane.redis_url import check_url
from .faults.params import (
    NO_FAULTS,
    Faults,
    Stream,
    faults_from_settings,
    faults_settings,
    parse_duration,
    stream_from_settings,
)
from .urlsecrets import redact

ENV_PREFIX = "WSRELAY_"
CONFIG_ENV = "WSRELAY_CONFIG"

Mode = Literal["echo", "broadcast", "proxy", "feed", "stream", "http_echo"]

#: Paths the service itself answers; routes may not take them.
RESERVED_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/routes"})

_PLACEHOLDER = re.compile(r"\{([^}]*)\}")
_ORIGIN = re.compile(r"^(https?)://(\*\.)?[A-Za-z0-9.-]+(:\d{1,5})?$")
_TOKEN_CHARS = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _json_or_csv(value: Any) -> Any:
    """Lists come as JSON (`["a","b"]`) or comma-separated (`a,b`) from the environment."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return []
    if text.startswith("["):
        return _json(text)
    return [item.strip() for item in text.split(",") if item.strip()]


def _json(value: Any) -> Any:
    """Routes and upstreams come as JSON text from the environment, as data from a file."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None


def _check_origins(origins: list[str]) -> list[str]:
    for origin in origins:
        if origin != "null" and not _ORIGIN.match(origin):
            raise ValueError(
                f"{origin!r} is not an origin: expected scheme://host[:port], "
                "optionally scheme://*.domain for its subdomains"
            )
    return origins


def _route_faults(value: Any) -> Faults:
    """A route's `faults` object, checked against the same bounds as a handshake's query."""
    if isinstance(value, Faults):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{value!r} is not an object of fault parameters")
    return faults_from_settings(value)


def _seconds_or_none(value: Any) -> Any:
    """A duration setting: seconds, or text with a unit ("250ms", "2s")."""
    return parse_duration(value) if isinstance(value, str) else value


RouteFaults = Annotated[
    Faults, PlainValidator(_route_faults), PlainSerializer(faults_settings, return_type=dict)
]


class Upstream(BaseModel):
    """An upstream WebSocket endpoint reached through the outbound client pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    max_connections: int = Field(100, ge=1)
    min_idle: int = Field(0, ge=0)
    connect_timeout: float = Field(5.0, gt=0)
    acquire_timeout: float = Field(5.0, gt=0)
    backoff_initial: float = Field(0.5, gt=0)
    backoff_max: float = Field(30.0, gt=0)
    ping_interval: float = Field(20.0, ge=0)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _ws_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"{url!r} is not a ws:// or wss:// URL")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> Upstream:
        if self.min_idle > self.max_connections:
            raise ValueError("min_idle must not exceed max_connections")
        if self.backoff_initial > self.backoff_max:
            raise ValueError("backoff_initial must not exceed backoff_max")
        return self


class Route(BaseModel):
    """One WebSocket route: a path, a mode and the options that override the global limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    mode: Mode
    auth: Literal["none", "token"] = "none"
    max_message_bytes: int | None = Field(None, ge=1)
    max_connections: int | None = Field(None, ge=1)
    ping_interval: float | None = Field(None, ge=0)
    ping_timeout: float | None = Field(None, gt=0)
    idle_timeout: float | None = Field(None, gt=0)
    allowed_origins: list[str] | None = None
    subprotocols: list[str] = Field(default_factory=list)
    greeting: str | None = None
    compress: bool = False
    echo_to_sender: bool = False
    upstream: str | None = None
    forward: bool = False
    resubscribe: str | None = None
    required: bool = False
    #: Faults every connection of the route gets (see SPEC.md's testing section).
    faults: RouteFaults = NO_FAULTS
    #: Clients may set faults (and stream/http_echo options) in the handshake's query string.
    query_overrides: bool = False
    # stream mode
    rate: float | None = None
    size: int | None = None
    count: int | None = None
    duration: Annotated[float | None, BeforeValidator(_seconds_or_none)] = None
    binary: bool = False

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        if not path.startswith("/") or "//" in path or (path.endswith("/") and path != "/"):
            raise ValueError(f"{path!r} must start with '/' and not end with '/'")
        names = _PLACEHOLDER.findall(path)
        if any(name != "room" for name in names) or len(names) > 1:
            raise ValueError(f"{path!r}: the only path parameter is {{room}}, at most once")
        if path in RESERVED_PATHS:
            raise ValueError(f"{path!r} is reserved for the service's own endpoints")
        return path

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str] | None) -> list[str] | None:
        return None if origins is None else _check_origins(origins)

    @field_validator("subprotocols")
    @classmethod
    def _subprotocols(cls, protocols: list[str]) -> list[str]:
        for protocol in protocols:
            if not _TOKEN_CHARS.match(protocol):
                raise ValueError(f"{protocol!r} is not a valid subprotocol token")
        return protocols

    @model_validator(mode="after")
    def _mode_options(self) -> Route:
        mode = self.mode
        relay = mode in ("proxy", "feed")
        websocket = mode != "http_echo"
        if "{room}" in self.path and self.mode != "broadcast":
            raise ValueError("{room} is only meaningful on broadcast routes")
        if relay and not self.upstream:
            raise ValueError(f'{self.mode} routes need "upstream": the name of an UPSTREAMS entry')
        misplaced = [
            name
            for name, allowed in (
                ("upstream", relay),
                ("required", relay),
                ("echo_to_sender", self.mode == "broadcast"),
                ("forward", self.mode == "feed"),
                ("resubscribe", self.mode == "feed"),
                ("rate", mode == "stream"),
                ("size", mode == "stream"),
                ("count", mode == "stream"),
                ("duration", mode == "stream"),
                ("binary", mode == "stream"),
                # http_echo answers plain HTTP: none of the WebSocket options mean anything.
                *(
                    (name, websocket)
                    for name in (
                        "max_message_bytes",
                        "max_connections",
                        "ping_interval",
                        "ping_timeout",
                        "idle_timeout",
                        "allowed_origins",
                        "greeting",
                        "compress",
                    )
                ),
            )
            if getattr(self, name) not in (None, False) and not allowed
        ]
        if not websocket and self.subprotocols:
            misplaced.append("subprotocols")
        if not websocket and self.faults != NO_FAULTS:
            misplaced.append("faults")
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} do not apply to {self.mode} routes")
        if mode == "stream":
            stream_from_settings(self._stream_options())  # the bounds: rate x size, ...
        return self

    @property
    def has_room(self) -> bool:
        return "{room}" in self.path

    @property
    def stream(self) -> Stream:
        """A stream route's push settings (the defaults where the route sets none)."""
        return stream_from_settings(self._stream_options())

    def _stream_options(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "size": self.size,
            "count": self.count,
            "duration": self.duration,
            "binary": self.binary,
        }


DEFAULT_ROUTES: tuple[Route, ...] = (
    Route(path="/echo", mode="echo"),
    Route(path="/rooms/{room}", mode="broadcast"),
    # For testing clients (SPEC.md): faults, server push and plain HTTP set by the query string.
    Route(path="/faults", mode="echo", query_overrides=True),
    Route(path="/stream", mode="stream", query_overrides=True),
    Route(path="/http", mode="http_echo", query_overrides=True),
)


class Settings(BaseSettings):
    """Every setting of wsrelay; SPEC.md's settings table is the contract for these names."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    host: str = "0.0.0.0"  # a container listens on every interface
    port: int = Field(8080, ge=0, le=65535)
    routes: Annotated[list[Route], NoDecode] = Field(default_factory=lambda: list(DEFAULT_ROUTES))
    upstreams: Annotated[dict[str, Upstream], NoDecode] = Field(default_factory=dict)
    backplane_url: str = "memory://"
    ping_interval: float = Field(20.0, ge=0)
    ping_timeout: float = Field(20.0, gt=0)
    max_message_bytes: int = Field(1_048_576, ge=1)
    max_connections: int = Field(10_000, ge=1)
    send_queue_bytes: int = Field(1_048_576, ge=1024)
    auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    shutdown_delay: float = Field(0.0, ge=0)
    shutdown_timeout: float = Field(10.0, gt=0)
    shutdown_spread: float = Field(0.0, ge=0)
    path_prefix: str = ""
    shutdown_close_code: int = 1001
    close_code_labels: Annotated[list[int], NoDecode] = Field(default_factory=list)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    # Off: no /metrics and no counting per connection, so a benchmark can price the metrics.
    metrics_enabled: bool = True
    # Hardening (SECURITY.md): request size limits, TLS, per-address handshake rate limit.
    max_request_line_bytes: int = Field(httplimits.DEFAULT_MAX_REQUEST_LINE_BYTES, ge=256)
    max_header_bytes: int = Field(httplimits.DEFAULT_MAX_HEADER_BYTES, ge=256)
    max_headers: int = Field(httplimits.DEFAULT_MAX_HEADERS, ge=8)
    handshake_timeout: float = Field(httplimits.DEFAULT_HANDSHAKE_TIMEOUT, gt=0)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    upstream_ca_file: str | None = None
    handshake_rate: float = Field(0.0, ge=0)
    handshake_burst: int = Field(20, ge=1)

    _lists = field_validator("auth_tokens", "allowed_origins", "close_code_labels", mode="before")(
        _json_or_csv
    )
    _objects = field_validator("routes", "upstreams", mode="before")(_json)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("backplane_url")
    @classmethod
    def _backplane(cls, url: str) -> str:
        scheme = urlsplit(url).scheme
        if scheme not in ("memory", "redis", "rediss", "redis-cluster", "rediss-cluster"):
            raise ValueError(
                f"{redact(url)!r}: expected memory://, redis://host:port/db (rediss://) "
                "or redis-cluster://host:port[,host:port...] (rediss-cluster://)"
            )
        if scheme != "memory":
            check_url(url)  # a bad ?option fails here, in one line, without the password
        return url

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        return _check_origins(origins)

    @field_validator("shutdown_close_code")
    @classmethod
    def _shutdown_code(cls, code: int) -> int:
        if code not in (1001, 1012):
            raise ValueError(f"{code} is neither 1001 (going away) nor 1012 (service restart)")
        return code

    @field_validator("close_code_labels")
    @classmethod
    def _application_codes(cls, codes: list[int]) -> list[int]:
        bad = [code for code in codes if not 3000 <= code <= 4999]
        if bad:
            raise ValueError(f"{bad} outside the application range 3000-4999")
        return codes

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"{prefix!r} must be empty or start with '/' and not end with '/'")
        return prefix

    @field_validator("routes")
    @classmethod
    def _unique_paths(cls, routes: list[Route]) -> list[Route]:
        if not routes:
            raise ValueError("at least one route is needed")
        seen: set[str] = set()
        for route in routes:
            if route.path in seen:
                raise ValueError(f"path {route.path!r} appears twice")
            seen.add(route.path)
        return routes

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        problems = []
        for route in self.routes:
            if route.upstream and route.upstream not in self.upstreams:
                known = ", ".join(sorted(self.upstreams)) or "none defined"
                problems.append(f"route {route.path} names upstream {route.upstream!r} ({known})")
            if route.auth == "token" and not self.auth_tokens:
                problems.append(f"route {route.path} has auth token but AUTH_TOKENS is empty")
        if self.shutdown_spread and self.shutdown_spread >= self.shutdown_timeout:
            problems.append("SHUTDOWN_SPREAD must be below SHUTDOWN_TIMEOUT")
        if self.shutdown_delay >= self.shutdown_timeout:
            problems.append("SHUTDOWN_DELAY must be below SHUTDOWN_TIMEOUT")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _tls_files(self) -> Settings:
        tls.check_server_files(self.tls_cert_file, self.tls_key_file)
        tls.check_ca_file(self.upstream_ca_file)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (
            init_settings,
            env_settings,
            dotenv_settings,
        )
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            # YAML is a superset of JSON, so one source reads both kinds of file.
            sources += (YamlConfigSettingsSource(settings_cls, yaml_file=config_file),)
        return sources


class SettingsProblem(Exception):
    """Settings could not be loaded; `lines` holds one human-readable line per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


_SECRET_FIELDS = frozenset({"auth_tokens"})


def _setting_name(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "settings"
    name = ENV_PREFIX + str(loc[0]).upper()
    for part in loc[1:]:
        name += f"[{part}]" if isinstance(part, int) else f".{part}"
    return name


def problems(error: ValidationError) -> list[str]:
    """One line per problem, naming the setting and the bad value (never a secret's value)."""
    lines = []
    for item in error.errors(include_url=False):
        loc = item["loc"]
        message = item["msg"].removeprefix("Value error, ")
        line = f"{_setting_name(loc)}: {message}"
        secret = bool(loc) and loc[0] in _SECRET_FIELDS
        # A whole-model problem's input is every setting, secrets included: never shown.
        if loc and not secret and item["type"] != "missing":
            value = item["input"]
            shown = repr(redact(value) if loc[0] == "backplane_url" else value)
            line += f" (got {shown if len(shown) <= 120 else shown[:117] + '...'})"
        lines.append(line)
    return lines


def unknown_variables(environ: dict[str, str]) -> list[str]:
    """WSRELAY_* variables that name no setting: a typo there would otherwise pass unnoticed."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields} | {CONFIG_ENV}
    return sorted(
        f"{var}: unknown setting"
        for var in environ
        if var.startswith(ENV_PREFIX) and var.split("__")[0] not in known
    )


def load_settings() -> Settings:
    """Load and validate every source; raise SettingsProblem with all the problems found."""
    lines = unknown_variables(dict(os.environ))
    config_file = os.environ.get(CONFIG_ENV)
    if config_file and not Path(config_file).is_file():
        lines.append(f"{CONFIG_ENV}: no such file {config_file!r}")
    else:
        try:
            settings = Settings()
        except ValidationError as error:
            lines += problems(error)
        except (ValueError, OSError) as error:  # unreadable file, YAML syntax error
            lines.append(f"{CONFIG_ENV}: {error}")
        else:
            if not lines:
                return settings
    raise SettingsProblem(lines)
