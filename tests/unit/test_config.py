"""Settings defaults, the example file, layering, conversions, problems and secret masking."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest

from webproxy.config import (
    Address,
    CacheSettings,
    ConfigError,
    Secret,
    Settings,
    describe,
    env_name,
    load_settings,
    parse_address,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "webproxy.toml"
SECRET = "hunter2-s3cret"


def value_at(settings: Settings, key: str) -> object:
    """`cache.ttl.ChatConfig` -> settings.cache.ttl["ChatConfig"]."""
    value: object = settings
    for part in key.split("."):
        value = value[part] if isinstance(value, Mapping) else getattr(value, part)
    return value


def flat_keys(data: Mapping[str, object], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, value in data.items():
        if isinstance(value, Mapping):
            keys += flat_keys(value, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


ALL_KEYS = flat_keys(describe(Settings()))


class Sources(NamedTuple):
    toml: str | None = None
    environ: Mapping[str, str] = {}
    flags: Mapping[str, object] | None = None


def load(tmp_path: Path, sources: Sources) -> Settings:
    """Load with `{tmp}` in the TOML and environment replaced by a directory holding
    readable cert.pem, key.pem and ca.pem."""
    for name in ("cert.pem", "key.pem", "ca.pem"):
        (tmp_path / name).write_text("-----BEGIN PEM-----\n")
    path = None
    if sources.toml is not None:
        path = tmp_path / "webproxy.toml"
        path.write_text(sources.toml.replace("{tmp}", str(tmp_path)))
    environ = {name: text.replace("{tmp}", str(tmp_path)) for name, text in sources.environ.items()}
    return load_settings(path, environ, sources.flags)


def problems_of(tmp_path: Path, sources: Sources) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, sources)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


# --- defaults and the example file -------------------------------------------------------

DEFAULTS = {
    "server.listen": Address("0.0.0.0", 8445),
    "server.tls_cert": None,
    "server.tls_key": None,
    "server.workers": 1,
    "server.max_header_bytes": 16384,
    "server.max_head_bytes": 64 * 1024,
    "server.max_body_bytes": 16 * 1024 * 1024,
    "server.body_buffer_bytes": 64 * 1024,
    "server.client_header_timeout": 60.0,
    "server.client_body_timeout": 60.0,
    "server.send_timeout": 60.0,
    "server.keepalive_timeout": 75.0,
    "server.max_upstream_per_client": 32,
    "server.max_long_lived_per_client": 256,
    "server.max_connections_per_client": 1024,
    "server.max_client_connections": 0,
    "server.shutdown_grace": 30.0,
    "server.fast_lane": True,
    "upstream.url": "http://127.0.0.1:8082",
    "upstream.connect_timeout": 5.0,
    "upstream.read_timeout": 30.0,
    "upstream.idle_timeout": 120.0,
    "upstream.tls_verify": True,
    "upstream.ca_file": None,
    "upstream.max_connections": 100,
    "store.backend": "memory",
    "store.redis_url": Secret("redis://127.0.0.1:6379/0"),
    "store.key_prefix": "webproxy",
    "store.max_bytes": 64 * 1024 * 1024,
    "store.timeout": 0.5,
    "store.max_connections": 200,
    "store.on_purge_failure": "refuse",
    "store.redis_cluster": False,
    "store.sentinels": (),
    "store.sentinel_master": "mymaster",
    "store.local_max_bytes": 0,
    "store.local_ttl": 1.0,
    "cache.enabled": True,
    "cache.identity_ttl": 300.0,
    "cache.stale_if_error": 300.0,
    "cache.coalesce_timeout": 10.0,
    "cache.max_entry_bytes": 4 * 1024 * 1024,
    "cache.max_key_bytes": 8 * 1024,
    "cache.max_sign_in_bytes": 1024 * 1024,
    "cache.repurge_after": 35.0,
    "cache.repurge_every_write": False,
    "cache.fleet_key": None,
    "cache.media_domain_path": "/finesse/api/MediaDomains",
    "cache.override_upstream": (),
    "cache.ttl.ChatConfig": 300.0,
    "cache.ttl.ECCVariableConfig": 300.0,
    "cache.ttl.MediaDomain": 300.0,
    "cache.ttl.TeamResource": 300.0,
    "cache.desktop.enabled": True,
    "cache.desktop.ttl": 3600.0,
    "cache.desktop.max_bytes": 64 * 1024 * 1024,
    "cache.shindig.enabled": True,
    "cache.shindig.ttl": 3600.0,
    "cache.shindig.max_bytes": 32 * 1024 * 1024,
    "cache.authmode.enabled": True,
    "cache.authmode.ttl": 300.0,
    "cache.authmode.max_bytes": 4 * 1024 * 1024,
    "admin.listen": Address("127.0.0.1", 9901),
    "admin.token": None,
    "log.level": "info",
    "log.format": "text",
    "log.access": "off",
}


def test_a_redis_url_with_a_bad_port_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(None, {"WEBPROXY_STORE_REDIS_URL": "redis://:pw@127.0.0.1:notaport/0"})
    (problem,) = refused.value.problems
    assert problem == (
        "store.redis_url (WEBPROXY_STORE_REDIS_URL): has a port that is not a number"
        " from 0 to 65535"
    )


def test_kubernetes_service_links_are_not_taken_for_configuration() -> None:
    environ = {
        "WEBPROXY_SERVICE_HOST": "10.0.0.7",
        "WEBPROXY_SERVICE_PORT": "8445",
        "WEBPROXY_PORT": "tcp://10.0.0.7:8445",
        "WEBPROXY_PORT_8445_TCP_ADDR": "10.0.0.7",
    }
    assert load_settings(None, environ) == Settings()


def test_the_defaults_table_covers_every_key() -> None:
    assert sorted(DEFAULTS) == sorted(ALL_KEYS)


@pytest.mark.parametrize(("key", "expected"), DEFAULTS.items(), ids=list(DEFAULTS))
def test_default(key: str, expected: object) -> None:
    assert value_at(Settings(), key) == expected


def test_loading_nothing_gives_the_defaults() -> None:
    assert load_settings(None, {}) == Settings()
    assert load_settings(None, {"PATH": "/bin", "WEBPROXYX": "1"}, {}) == Settings()


def test_example_file_equals_the_defaults() -> None:
    assert load_settings(EXAMPLE, {}) == Settings()


@pytest.mark.parametrize("key", ALL_KEYS)
def test_example_file_documents_the_key_with_a_comment(key: str) -> None:
    section, _, name = key.rpartition(".")
    text = EXAMPLE.read_text()
    block = text.split(f"\n[{section}]\n", 1)[1].split("\n[", 1)[0]
    assert re.search(rf"^# .+\n(# )?{name} = ", block, re.MULTILINE)


@pytest.mark.parametrize("key", ALL_KEYS)
def test_every_key_has_an_environment_variable(key: str) -> None:
    variable = env_name(key)
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {variable: "no such value !"})
    assert caught.value.problems[0].startswith(f"{key} ({variable}): ")


# --- layering ------------------------------------------------------------------------------

PRECEDENCE = {
    "file beats default": (
        Sources('[upstream]\nurl = "http://file:1"\n'),
        "upstream.url",
        "http://file:1",
    ),
    "env beats default": (
        Sources(environ={"WEBPROXY_UPSTREAM_URL": "http://env:2"}),
        "upstream.url",
        "http://env:2",
    ),
    "env beats file": (
        Sources('[upstream]\nurl = "http://file:1"\n', {"WEBPROXY_UPSTREAM_URL": "http://env:2"}),
        "upstream.url",
        "http://env:2",
    ),
    "flag beats env": (
        Sources(
            '[upstream]\nurl = "http://file:1"\n',
            {"WEBPROXY_UPSTREAM_URL": "http://env:2"},
            {"upstream.url": "http://flag:3"},
        ),
        "upstream.url",
        "http://flag:3",
    ),
    "None flag is skipped": (
        Sources(environ={"WEBPROXY_UPSTREAM_URL": "http://env:2"}, flags={"upstream.url": None}),
        "upstream.url",
        "http://env:2",
    ),
    "file keeps other keys": (
        Sources('[upstream]\nurl = "http://file:1"\n', {"WEBPROXY_UPSTREAM_URL": "http://e:2"}),
        "upstream.read_timeout",
        30.0,
    ),
    "file ttl sets one resource": (
        Sources("[cache.ttl]\nTeamResource = 60\n"),
        "cache.ttl.TeamResource",
        60.0,
    ),
    "file ttl keeps the others": (
        Sources("[cache.ttl]\nTeamResource = 60\n"),
        "cache.ttl.ChatConfig",
        300.0,
    ),
    "env ttl beats file ttl": (
        Sources("[cache.ttl]\nChatConfig = 60\n", {"WEBPROXY_CACHE_TTL_CHATCONFIG": "7"}),
        "cache.ttl.ChatConfig",
        7.0,
    ),
    "typed int flag": (
        Sources(flags={"server.workers": 2, "store.backend": "redis"}),
        "server.workers",
        2,
    ),
    "string int flag": (
        Sources(flags={"server.workers": "3", "store.backend": "redis"}),
        "server.workers",
        3,
    ),
    "string address flag": (
        Sources(flags={"server.listen": "0.0.0.0:8080"}),
        "server.listen",
        Address("0.0.0.0", 8080),
    ),
    "typed address flag": (
        Sources(flags={"admin.listen": Address("::1", 9999)}),
        "admin.listen",
        Address("::1", 9999),
    ),
    "string secret flag": (
        Sources(flags={"store.redis_url": "rediss://cache:6380/1"}),
        "store.redis_url",
        Secret("rediss://cache:6380/1"),
    ),
    "file tls files": (
        Sources('[server]\ntls_cert = "{tmp}/cert.pem"\ntls_key = "{tmp}/key.pem"\n'),
        "server.tls_key",
        "{tmp}/key.pem",
    ),
}


@pytest.mark.parametrize(("sources", "key", "expected"), PRECEDENCE.values(), ids=list(PRECEDENCE))
def test_precedence(tmp_path: Path, sources: Sources, key: str, expected: object) -> None:
    if isinstance(expected, str):
        expected = expected.replace("{tmp}", str(tmp_path))
    assert value_at(load(tmp_path, sources), key) == expected


ENV_CONVERSIONS = {
    "bool true": ("WEBPROXY_UPSTREAM_TLS_VERIFY", "true", "upstream.tls_verify", True),
    "bool False": ("WEBPROXY_UPSTREAM_TLS_VERIFY", "False", "upstream.tls_verify", False),
    "bool 0": ("WEBPROXY_UPSTREAM_TLS_VERIFY", "0", "upstream.tls_verify", False),
    "bool 1": ("WEBPROXY_CACHE_ENABLED", "1", "cache.enabled", True),
    "bool no": ("WEBPROXY_CACHE_ENABLED", "no", "cache.enabled", False),
    "bool YES": ("WEBPROXY_CACHE_ENABLED", "YES", "cache.enabled", True),
    "int": ("WEBPROXY_UPSTREAM_MAX_CONNECTIONS", "7", "upstream.max_connections", 7),
    "float": ("WEBPROXY_UPSTREAM_READ_TIMEOUT", "2.5", "upstream.read_timeout", 2.5),
    "int as float": ("WEBPROXY_STORE_TIMEOUT", "3", "store.timeout", 3.0),
    "ttl": ("WEBPROXY_CACHE_TTL_TEAMRESOURCE", "60", "cache.ttl.TeamResource", 60.0),
    "ttl ecc": ("WEBPROXY_CACHE_TTL_ECCVARIABLECONFIG", "9", "cache.ttl.ECCVariableConfig", 9.0),
    "list": (
        "WEBPROXY_CACHE_OVERRIDE_UPSTREAM",
        "ChatConfig, MediaDomain,",
        "cache.override_upstream",
        ("ChatConfig", "MediaDomain"),
    ),
    "empty list": ("WEBPROXY_CACHE_OVERRIDE_UPSTREAM", "", "cache.override_upstream", ()),
    "sentinels": (
        "WEBPROXY_STORE_SENTINELS",
        "10.0.0.1:26379, [::1]:26380",
        "store.sentinels",
        (Address("10.0.0.1", 26379), Address("::1", 26380)),
    ),
    "port only": ("WEBPROXY_SERVER_LISTEN", ":8080", "server.listen", Address("0.0.0.0", 8080)),
    "ipv6": ("WEBPROXY_ADMIN_LISTEN", "[::1]:9000", "admin.listen", Address("::1", 9000)),
    "choice any case": ("WEBPROXY_LOG_LEVEL", "DEBUG", "log.level", "debug"),
    "token": ("WEBPROXY_ADMIN_TOKEN", SECRET, "admin.token", Secret(SECRET)),
    "redis url": (
        "WEBPROXY_STORE_REDIS_URL",
        "unix:///run/redis.sock",
        "store.redis_url",
        Secret("unix:///run/redis.sock"),
    ),
    "url trailing slash": (
        "WEBPROXY_UPSTREAM_URL",
        "https://finesse.example.com:8445/",
        "upstream.url",
        "https://finesse.example.com:8445",
    ),
    "url with path": ("WEBPROXY_UPSTREAM_URL", "http://f/base//", "upstream.url", "http://f/base/"),
    "file": ("WEBPROXY_UPSTREAM_CA_FILE", "{tmp}/ca.pem", "upstream.ca_file", "{tmp}/ca.pem"),
}


@pytest.mark.parametrize(
    ("variable", "text", "key", "expected"), ENV_CONVERSIONS.values(), ids=list(ENV_CONVERSIONS)
)
def test_environment_conversion(
    tmp_path: Path, variable: str, text: str, key: str, expected: object
) -> None:
    if isinstance(expected, str):
        expected = expected.replace("{tmp}", str(tmp_path))
    assert value_at(load(tmp_path, Sources(environ={variable: text})), key) == expected


# --- problems ------------------------------------------------------------------------------

PROBLEMS = {
    "unknown section": (
        Sources("[serverx]\nworkers = 1\n"),
        "serverx: unknown section (did you mean server?)",
    ),
    "unknown key": (Sources("[server]\nport = 1\n"), "server.port: unknown key"),
    "unknown key suggestion": (
        Sources("[upstream]\nread_timout = 1\n"),
        "upstream.read_timout: unknown key (did you mean upstream.read_timeout?)",
    ),
    "unknown ttl key": (Sources("[cache.ttl]\nFoo = 1\n"), "cache.ttl.Foo: unknown key"),
    "section not a table": (Sources("server = 1\n"), "server: must be a table, got a number"),
    "ttl not a table": (Sources("[cache]\nttl = 5\n"), "cache.ttl: must be a table, got a number"),
    "string for number": (
        Sources('[upstream]\nread_timeout = "30"\n'),
        "upstream.read_timeout: must be a number, got a string '30'",
    ),
    "bool for int": (
        Sources("[server]\nworkers = true\n"),
        "server.workers: must be an integer, got a boolean (true)",
    ),
    "bool for float": (
        Sources("[store]\ntimeout = false\n"),
        "store.timeout: must be a number, got a boolean (false)",
    ),
    "float for int": (
        Sources("[server]\nworkers = 1.5\n"),
        "server.workers: must be an integer, got a number (1.5)",
    ),
    "list for string": (
        Sources("[log]\nlevel = []\n"),
        "log.level: must be one of debug, info, warning, error, critical",
    ),
    "negative timeout": (
        Sources("[upstream]\nread_timeout = -1\n"),
        "upstream.read_timeout: must be a positive number, got -1",
    ),
    "zero timeout": (
        Sources("[store]\ntimeout = 0\n"),
        "store.timeout: must be a positive number, got 0",
    ),
    "infinite timeout": (
        Sources("[upstream]\nconnect_timeout = inf\n"),
        "upstream.connect_timeout: must be a positive number, got inf",
    ),
    "zero ttl": (
        Sources("[cache.ttl]\nMediaDomain = 0\n"),
        "cache.ttl.MediaDomain: must be a positive number, got 0",
    ),
    "negative stale": (
        Sources("[cache]\nstale_if_error = -0.5\n"),
        "cache.stale_if_error: must be a number >= 0, got -0.5",
    ),
    "no workers": (
        Sources("[server]\nworkers = 0\n"),
        "server.workers: must be an integer from 1 to 64, got 0",
    ),
    "too many workers": (
        Sources('[server]\nworkers = 65\n[store]\nbackend = "redis"\n'),
        "server.workers: must be an integer from 1 to 64, got 65",
    ),
    "zero size": (
        Sources("[server]\nmax_body_bytes = 0\n"),
        "server.max_body_bytes: must be a positive integer, got 0",
    ),
    "zero connections": (
        Sources("[upstream]\nmax_connections = 0\n"),
        "upstream.max_connections: must be a positive integer, got 0",
    ),
    "string for bool": (
        Sources('[upstream]\ntls_verify = "yes"\n'),
        "upstream.tls_verify: must be true or false, got a string 'yes'",
    ),
    "port out of range": (
        Sources('[server]\nlisten = "0.0.0.0:70000"\n'),
        "server.listen: invalid address '0.0.0.0:70000': the port must be from 0 to 65535",
    ),
    "no port": (
        Sources('[admin]\nlisten = "localhost"\n'),
        "admin.listen: invalid address 'localhost': missing :PORT",
    ),
    "same listen twice": (
        Sources('[server]\nlisten = "127.0.0.1:9901"\n'),
        "admin.listen: same address as server.listen",
    ),
    "url scheme": (
        Sources('[upstream]\nurl = "ftp://finesse"\n'),
        "upstream.url: must be an absolute http:// or https:// URL",
    ),
    "url relative": (
        Sources('[upstream]\nurl = "finesse:8082"\n'),
        "upstream.url: must be an absolute http:// or https:// URL",
    ),
    "url without host": (
        Sources('[upstream]\nurl = "http:///path"\n'),
        "upstream.url: must be an absolute http:// or https:// URL",
    ),
    "url bad port": (
        Sources('[upstream]\nurl = "http://finesse:99999"\n'),
        "upstream.url: must be an absolute http:// or https:// URL",
    ),
    "url query": (
        Sources('[upstream]\nurl = "http://finesse/?a=1"\n'),
        "upstream.url: must not have a query or a fragment",
    ),
    "url fragment": (
        Sources('[upstream]\nurl = "http://finesse#top"\n'),
        "upstream.url: must not have a query or a fragment",
    ),
    "url credentials": (
        Sources('[upstream]\nurl = "http://admin:pw@finesse"\n'),
        "upstream.url: must not contain credentials",
    ),
    "tls key alone": (
        Sources('[server]\ntls_key = "{tmp}/key.pem"\n'),
        "server.tls_key: set without server.tls_cert",
    ),
    "tls cert alone": (
        Sources('[server]\ntls_cert = "{tmp}/cert.pem"\n'),
        "server.tls_cert: set without server.tls_key",
    ),
    "tls cert missing": (
        Sources('[server]\ntls_cert = "{tmp}/nope.pem"\ntls_key = "{tmp}/key.pem"\n'),
        "server.tls_cert: no such file: {tmp}/nope.pem",
    ),
    "ca file missing": (
        Sources('[upstream]\nca_file = "{tmp}/nope.pem"\n'),
        "upstream.ca_file: no such file: {tmp}/nope.pem",
    ),
    "ca file empty": (Sources('[upstream]\nca_file = ""\n'), "upstream.ca_file: must not be empty"),
    "media path": (
        Sources('[cache]\nmedia_domain_path = "/api/MediaDomains"\n'),
        "cache.media_domain_path: must be a path under /finesse/api/, got '/api/MediaDomains'",
    ),
    "override unknown": (
        Sources('[cache]\noverride_upstream = ["ChatConfig", "Foo"]\n'),
        "cache.override_upstream: unknown resource 'Foo' "
        "(known: ChatConfig, ECCVariableConfig, MediaDomain, TeamResource)",
    ),
    "override not a list": (
        Sources('[cache]\noverride_upstream = "ChatConfig"\n'),
        "cache.override_upstream: must be a list of resource names, got a string 'ChatConfig'",
    ),
    "key prefix empty": (
        Sources('[store]\nkey_prefix = ""\n'),
        "store.key_prefix: must be non-empty without spaces, got ''",
    ),
    "key prefix space": (
        Sources('[store]\nkey_prefix = "web proxy"\n'),
        "store.key_prefix: must be non-empty without spaces, got 'web proxy'",
    ),
    "backend": (
        Sources('[store]\nbackend = "disk"\n'),
        "store.backend: must be one of memory, redis",
    ),
    "sentinel without port": (
        Sources('[store]\nsentinels = ["10.0.0.1"]\n'),
        "store.sentinels: '10.0.0.1': missing :PORT",
    ),
    "sentinels not a list": (
        Sources('[store]\nsentinels = "10.0.0.1:26379"\n'),
        "store.sentinels: must be a list of HOST:PORT, got a string '10.0.0.1:26379'",
    ),
    "sentinel master empty": (
        Sources('[store]\nsentinel_master = ""\n'),
        "store.sentinel_master: must be non-empty without spaces, got ''",
    ),
    "sentinels with cluster": (
        Sources('[store]\nsentinels = ["10.0.0.1:26379"]\nredis_cluster = true\n'),
        "store.sentinels: set with redis_cluster",
    ),
    "local tier negative": (
        Sources("[store]\nlocal_max_bytes = -1\n"),
        "store.local_max_bytes: must be an integer >= 0, got -1",
    ),
    "redis scheme": (
        Sources('[store]\nredis_url = "http://cache:6379"\n'),
        "store.redis_url: must start with redis://, rediss:// or unix://",
    ),
    "log format": (Sources('[log]\nformat = "xml"\n'), "log.format: must be one of text, json"),
    "log access": (
        Sources("[log]\naccess = true\n"),
        "log.access: must be one of off, info, debug",
    ),
    "token empty": (Sources('[admin]\ntoken = ""\n'), "admin.token: must not be empty"),
    "token spaces": (
        Sources('[admin]\ntoken = "two words"\n'),
        "admin.token: must be printable ASCII without spaces",
    ),
    "token number": (
        Sources("[admin]\ntoken = 1234\n"),
        "admin.token: must be a string, got a number",
    ),
    "env value": (
        Sources(environ={"WEBPROXY_UPSTREAM_READ_TIMEOUT": "-1"}),
        "upstream.read_timeout (WEBPROXY_UPSTREAM_READ_TIMEOUT): must be a positive number, got -1",
    ),
    "env not a number": (
        Sources(environ={"WEBPROXY_SERVER_WORKERS": "two"}),
        "server.workers (WEBPROXY_SERVER_WORKERS): must be an integer, got 'two'",
    ),
    "env bool": (
        Sources(environ={"WEBPROXY_UPSTREAM_TLS_VERIFY": "maybe"}),
        "upstream.tls_verify (WEBPROXY_UPSTREAM_TLS_VERIFY): "
        "must be true, false, 1, 0, yes or no, got 'maybe'",
    ),
    "env unknown": (Sources(environ={"WEBPROXY_NOPE": "1"}), "WEBPROXY_NOPE: unknown variable"),
    "env unknown suggestion": (
        Sources(environ={"WEBPROXY_UPSTREAM_URLL": "http://x"}),
        "WEBPROXY_UPSTREAM_URLL: unknown variable (did you mean WEBPROXY_UPSTREAM_URL?)",
    ),
    "env whole ttl table": (
        Sources(environ={"WEBPROXY_CACHE_TTL": "5"}),
        "WEBPROXY_CACHE_TTL: unknown variable (did you mean WEBPROXY_CACHE_SHINDIG_TTL?)",
    ),
    "env cross-check": (
        Sources(environ={"WEBPROXY_SERVER_TLS_KEY": "{tmp}/key.pem"}),
        "server.tls_key (WEBPROXY_SERVER_TLS_KEY): set without server.tls_cert",
    ),
    "flag value": (
        Sources(flags={"server.workers": 0}),
        "server.workers (flag): must be an integer from 1 to 64, got 0",
    ),
    "flag bool for int": (
        Sources(flags={"server.workers": True}),
        "server.workers (flag): must be an integer, got a boolean (true)",
    ),
    "flag unknown": (Sources(flags={"server.port": 1}), "server.port (flag): unknown key"),
}


@pytest.mark.parametrize(("sources", "expected"), PROBLEMS.values(), ids=list(PROBLEMS))
def test_problem(tmp_path: Path, sources: Sources, expected: str) -> None:
    assert problems_of(tmp_path, sources) == [expected.replace("{tmp}", str(tmp_path))]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    sources = Sources(
        '[server]\nworkers = 0\ncolour = "red"\n[upstream]\nurl = "ftp://x"\n'
        '[store]\nbackend = "disk"\n[cache.ttl]\nChatConfig = -5\n',
        {"WEBPROXY_UPSTREAM_READ_TIMEOUT": "soon", "WEBPROXY_NOPE": "1"},
        {"admin.listen": "nowhere"},
    )
    assert problems_of(tmp_path, sources) == [
        "server.workers: must be an integer from 1 to 64, got 0",
        "server.colour: unknown key",
        "upstream.url: must be an absolute http:// or https:// URL",
        "store.backend: must be one of memory, redis",
        "cache.ttl.ChatConfig: must be a positive number, got -5",
        "WEBPROXY_NOPE: unknown variable",
        "upstream.read_timeout (WEBPROXY_UPSTREAM_READ_TIMEOUT): must be a number, got 'soon'",
        "admin.listen (flag): invalid address 'nowhere': missing :PORT",
    ]


def test_a_bad_file_value_is_reported_even_when_the_environment_overrides_it(
    tmp_path: Path,
) -> None:
    sources = Sources("[upstream]\nread_timeout = 0\n", {"WEBPROXY_UPSTREAM_READ_TIMEOUT": "5"})
    assert problems_of(tmp_path, sources) == [
        "upstream.read_timeout: must be a positive number, got 0"
    ]


def test_missing_file_is_one_line_and_other_layers_are_still_checked(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {"WEBPROXY_NOPE": "1"})
    assert caught.value.problems == [f"{path}: no such file", "WEBPROXY_NOPE: unknown variable"]


FILE_PROBLEMS = {
    "syntax": (b"[server\nworkers = 1\n", "invalid TOML: "),
    "duplicate key": (b"[server]\nworkers = 1\nworkers = 2\n", "invalid TOML: "),
    "not utf-8": (b'[log]\nlevel = "\xff"\n', "invalid TOML: not UTF-8 text"),
}


@pytest.mark.parametrize(("content", "start"), FILE_PROBLEMS.values(), ids=list(FILE_PROBLEMS))
def test_unreadable_file_is_one_line_naming_it(tmp_path: Path, content: bytes, start: str) -> None:
    path = tmp_path / "webproxy.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}: {start}")


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(str(tmp_path), {})
    [problem] = caught.value.problems
    assert problem.startswith(f"{tmp_path}: cannot read: ")


# --- secrets -------------------------------------------------------------------------------

SHOWN: dict[str, Callable[[Settings], str]] = {
    "repr": lambda settings: repr(settings),
    "str": lambda settings: str(settings),
    "format": lambda settings: f"{settings.admin.token} {settings.store.redis_url!s}",
    "token repr": lambda settings: repr(settings.admin.token),
    "describe": lambda settings: json.dumps(describe(settings)),
}


@pytest.mark.parametrize("show", SHOWN.values(), ids=list(SHOWN))
def test_secrets_are_masked(show: Callable[[Settings], str]) -> None:
    settings = load_settings(
        None,
        {"WEBPROXY_ADMIN_TOKEN": SECRET, "WEBPROXY_STORE_REDIS_URL": f"redis://:{SECRET}@r:6379/0"},
    )
    text = show(settings)
    assert SECRET not in text
    assert "********" in text


def test_secret_reveals_its_value_only_when_asked() -> None:
    secret = Secret(SECRET)
    assert secret.reveal() == SECRET
    assert repr(secret) == str(secret) == "Secret('********')"
    assert secret == Secret(SECRET)
    assert secret != Secret("other")


def test_describe_gives_plain_data_with_secrets_masked() -> None:
    settings = load_settings(None, {"WEBPROXY_ADMIN_TOKEN": SECRET})
    described = describe(settings)
    assert described["admin"] == {"listen": "127.0.0.1:9901", "token": "********"}
    assert described["store"] == {
        "backend": "memory",
        "redis_url": "********",
        "key_prefix": "webproxy",
        "max_bytes": 64 * 1024 * 1024,
        "timeout": 0.5,
        "max_connections": 200,
        "on_purge_failure": "refuse",
        "redis_cluster": False,
        "sentinels": [],
        "sentinel_master": "mymaster",
        "local_max_bytes": 0,
        "local_ttl": 1.0,
    }
    cache = described["cache"]
    assert isinstance(cache, dict)
    assert cache["override_upstream"] == []
    assert cache["ttl"] == dict.fromkeys(
        ["ChatConfig", "ECCVariableConfig", "MediaDomain", "TeamResource"], 300.0
    )
    assert json.loads(json.dumps(described)) == described


SECRET_PROBLEMS = {
    "redis url in file": Sources(f'[store]\nredis_url = "http://:{SECRET}@cache"\n'),
    "redis url in env": Sources(environ={"WEBPROXY_STORE_REDIS_URL": f"tcp://:{SECRET}@cache"}),
    "redis url flag": Sources(flags={"store.redis_url": f"tcp://{SECRET}"}),
    "token with space": Sources(environ={"WEBPROXY_ADMIN_TOKEN": f"{SECRET} x"}),
    "token with newline": Sources(flags={"admin.token": f"{SECRET}\n"}),
    "token misspelt": Sources(f'[admin]\ntokn = "{SECRET}"\n'),
    "upstream credentials": Sources(f'[upstream]\nurl = "http://u:{SECRET}@finesse"\n'),
}


@pytest.mark.parametrize("sources", SECRET_PROBLEMS.values(), ids=list(SECRET_PROBLEMS))
def test_problems_never_show_a_secret(tmp_path: Path, sources: Sources) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, sources)
    assert caught.value.problems
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


# --- records -------------------------------------------------------------------------------


def test_settings_vary_with_dataclasses_replace() -> None:
    settings = Settings()
    faster = dataclasses.replace(
        settings, upstream=dataclasses.replace(settings.upstream, read_timeout=1.0)
    )
    assert faster.upstream.read_timeout == 1.0
    assert faster.server == settings.server
    assert settings.upstream.read_timeout == 30.0


def test_settings_are_frozen_and_slotted() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.upstream.url = "http://other"  # type: ignore[misc]
    assert not hasattr(settings.upstream, "__dict__")


def test_cache_ttl_is_completed_and_read_only() -> None:
    cache = dataclasses.replace(CacheSettings(), ttl={"TeamResource": 5})
    assert dict(cache.ttl) == {
        "ChatConfig": 300.0,
        "ECCVariableConfig": 300.0,
        "MediaDomain": 300.0,
        "TeamResource": 5.0,
    }
    with pytest.raises(TypeError):
        cache.ttl["ChatConfig"] = 1.0  # type: ignore[index]
    with pytest.raises(ValueError, match="Foo"):
        CacheSettings(ttl={"Foo": 1.0})


ADDRESSES = {
    "host and port": ("localhost:8080", Address("localhost", 8080), "localhost:8080"),
    "ipv4": ("10.0.0.1:80", Address("10.0.0.1", 80), "10.0.0.1:80"),
    "port only": (":8445", Address("0.0.0.0", 8445), "0.0.0.0:8445"),
    "ipv6": ("[::1]:9901", Address("::1", 9901), "[::1]:9901"),
    "ipv6 any": ("[::]:0", Address("::", 0), "[::]:0"),
    "highest port": ("h:65535", Address("h", 65535), "h:65535"),
}


@pytest.mark.parametrize(("text", "address", "shown"), ADDRESSES.values(), ids=list(ADDRESSES))
def test_parse_address(text: str, address: Address, shown: str) -> None:
    assert parse_address(text) == address
    assert str(address) == shown


BAD_ADDRESSES = {
    "no port": ("localhost", "missing :PORT"),
    "empty port": ("localhost:", "the port is not a number"),
    "port word": ("localhost:http", "the port is not a number"),
    "negative port": ("localhost:-1", "the port is not a number"),
    "port too big": ("localhost:65536", "the port must be from 0 to 65535"),
    "bare ipv6": ("::1:8080", "an IPv6 address needs brackets"),
    "unclosed bracket": ("[::1:8080", "missing ']'"),
    "not ipv6 in brackets": ("[localhost]:80", "not an IPv6 address"),
    "brackets without port": ("[::1]", "missing :PORT"),
    "space in host": ("my host:80", "not a name or an IP address"),
    "empty": ("", "missing :PORT"),
}


@pytest.mark.parametrize(("text", "reason"), BAD_ADDRESSES.values(), ids=list(BAD_ADDRESSES))
def test_parse_address_says_why_not(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_address(text)
