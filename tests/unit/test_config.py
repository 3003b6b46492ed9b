import pytest

from registry.config import ConfigError, load

BASE = {"PATH": "/usr/bin"}


def test_defaults():
    c = load(env=BASE)
    assert c.server.listen == "127.0.0.1:5000"
    assert c.storage.driver == "filesystem" and c.storage.auto_mount is True
    assert c.limits.manifest_max_bytes == 4 * 1024 * 1024


def test_precedence_cli_over_env_over_file(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('[server]\nlisten = "127.0.0.1:1"\n[storage]\nroot = "/file"\n'
                 "auto_mount = true\n")
    env = {"REGISTRY_STORAGE_ROOT": "/env", "REGISTRY_SERVER_LISTEN": "127.0.0.1:2",
           "REGISTRY_STORAGE_AUTO_MOUNT": "false", "REGISTRY_LIMITS_MANIFEST_MAX_BYTES": "2048"}
    c = load(f, env=env, overrides={"server": {"listen": "127.0.0.1:3"}})
    assert c.server.listen == "127.0.0.1:3"
    assert c.storage.root == "/env"
    assert c.storage.auto_mount is False
    assert c.limits.manifest_max_bytes == 2048


def test_every_problem_named(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[server]\nlisten = "nope"\nworkers = "many"\ntls_cert = "/nonexistent"\n'
                 '[storage]\ndriver = "tape"\nroott = "x"\n[bogus]\na = 1\n')
    with pytest.raises(ConfigError) as info:
        load(f, env=BASE)
    text = "\n".join(info.value.problems)
    for fragment in ("listen", "workers", "tls_cert", "driver", "roott", "[bogus]"):
        assert fragment in text


def test_bad_toml(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(f, env=BASE)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "missing.toml", env=BASE)


def test_env_bad_value():
    with pytest.raises(ConfigError, match="REGISTRY_STORAGE_AUTO_MOUNT"):
        load(env={"REGISTRY_STORAGE_AUTO_MOUNT": "maybe"})


def test_s3_requires_bucket():
    with pytest.raises(ConfigError, match="bucket"):
        load(env={"REGISTRY_STORAGE_DRIVER": "s3"})


def test_documented_default_config_is_valid():
    from pathlib import Path

    c = load(Path(__file__).parents[2] / "config" / "registry.toml", env=BASE)
    assert c.server.listen == "127.0.0.1:5000"


def test_node_cache_config_is_valid():
    from pathlib import Path

    c = load(Path(__file__).parents[2] / "config" / "node-cache.toml", env=BASE)
    assert c.cache.enabled and c.cache.upstream == "http://127.0.0.1:5000"
    assert c.cache.tag_ttl == 60 and c.cache.max_bytes == 0
    assert not load(env=BASE).cache.enabled  # off by default


def test_node_cache_problems_named(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[cache]\nupstream = "ftp://x/y"\ntag_ttl = -1\nmax_bytes = -5\n'
                 'password = "p"\nca_bundle = "/nonexistent.pem"\n'
                 '[storage]\ndriver = "s3"\nbucket = "b"\n')
    with pytest.raises(ConfigError) as info:
        load(f, env=BASE)
    text = "\n".join(info.value.problems)
    for fragment in ("[cache] upstream", "[cache] tag_ttl", "[cache] max_bytes",
                     "[cache] password", "[cache] ca_bundle", "[storage] driver"):
        assert fragment in text, fragment
    env = {**BASE, "REGISTRY_CACHE_UPSTREAM": "https://up.example:5000",
           "REGISTRY_CACHE_TAG_TTL": "5"}
    c = load(env=env)
    assert (c.cache.upstream, c.cache.tag_ttl) == ("https://up.example:5000", 5)


def test_retention_rules_checked(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('[gc]\nretention = ["ci/* keep=10 days=7", "scratch/* days=1.5"]\n')
    assert load(f, env=BASE).gc.retention == ["ci/* keep=10 days=7", "scratch/* days=1.5"]
    for bad in ("ci/*", "ci/* keep=ten", "ci/* keep=1.5", "ci/* forever=1"):
        f.write_text(f'[gc]\nretention = ["{bad}"]\n')
        with pytest.raises(ConfigError) as info:
            load(f, env=BASE)
        assert "[gc] retention" in info.value.problems[0] and bad in info.value.problems[0]


def test_cache_host_checked_with_the_host_parser(tmp_path):
    f = tmp_path / "h.toml"
    base = '[cache]\nupstream = "http://127.0.0.1:5000"\n'
    f.write_text(base + 'host_aware = true\nhost = "target=zen3&cuda=12.4"\n')
    c = load(f, env=BASE)
    assert c.cache.host_aware and c.cache.host == "target=zen3&cuda=12.4"
    assert not load(env=BASE).cache.host_aware  # off by default
    for bad, words in [("target=zen99", "unknown archspec target"),
                       ("arch=arm64&target=zen3", "not a arm64 target"),
                       ("cuda=twelve", "not a dotted version"), ("colour=red", "unknown")]:
        f.write_text(base + f'host_aware = true\nhost = "{bad}"\n')
        with pytest.raises(ConfigError) as info:
            load(f, env=BASE)
        assert any(p.startswith("[cache] host:") and words in p
                   for p in info.value.problems), (bad, info.value.problems)
    f.write_text(base + 'host = "target=zen3"\n')
    with pytest.raises(ConfigError) as info:
        load(f, env=BASE)
    assert "[cache] host: set without host_aware = true" in info.value.problems[0]
    env = {**BASE, "REGISTRY_CACHE_UPSTREAM": "http://127.0.0.1:5000",
           "REGISTRY_CACHE_HOST_AWARE": "true", "REGISTRY_CACHE_HOST": "target=x86_64_v3"}
    assert load(env=env).cache.host == "target=x86_64_v3"
