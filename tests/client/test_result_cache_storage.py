"""The result cache's storage: switched off, the size cap and eviction, concurrent writers, damaged entries,
no key on disk, and the same cache from the command line."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import ROOT
from helpers import base_request, photo_like
from ppinfra import result_cache
from client.result_cache_support import entries, results_dir

# --------------------------------------------------------------------------- switching off, size cap, damage


def test_switched_off_by_env_or_setting(make_client, sandbox, isolated_env, monkeypatch):
    req = base_request(seed=3, width=128, height=128)
    off = make_client(result_cache=False)
    off.img2img(req)
    off.img2img(req)
    assert len(sandbox.tasks) == 2 and entries(isolated_env) == []
    monkeypatch.setenv(result_cache.ENV_ENABLED, "0")
    client = make_client()
    client.img2img(req)
    assert not client.img2img(req).from_cache and len(sandbox.tasks) == 4 and entries(isolated_env) == []
    monkeypatch.delenv(result_cache.ENV_ENABLED)
    client.img2img(req)
    assert client.img2img(req).from_cache and len(sandbox.tasks) == 5


def test_least_recently_used_entry_is_evicted_under_the_cap(make_client, sandbox, isolated_env, monkeypatch):
    client = make_client()
    reqs = {s: base_request(seed=s, width=128, height=128) for s in (1, 2, 3)}
    client.img2img(reqs[1])
    client.img2img(reqs[2])
    a, b = (os.path.join(results_dir(isolated_env), name) for name in _names(client, reqs[1], reqs[2]))
    os.utime(a, (1_000_000, 1_000_000))  # both old, b the newer of the two ...
    os.utime(b, (2_000_000, 2_000_000))
    assert client.img2img(reqs[1]).from_cache  # ... until a hit makes a the most recently used
    assert os.path.getmtime(a) > os.path.getmtime(b)
    monkeypatch.setenv(result_cache.ENV_MAX_BYTES, str(os.path.getsize(a) + os.path.getsize(b) + 100))
    client.img2img(reqs[3])  # a third entry does not fit: the least recently used (b) goes
    assert os.path.exists(a) and not os.path.exists(b) and len(entries(isolated_env)) == 2
    tasks = len(sandbox.tasks)
    assert client.img2img(reqs[1]).from_cache and len(sandbox.tasks) == tasks
    assert not client.img2img(reqs[2]).from_cache and len(sandbox.tasks) == tasks + 1
    total = sum(os.path.getsize(os.path.join(results_dir(isolated_env), f)) for f in entries(isolated_env))
    assert total <= int(os.environ[result_cache.ENV_MAX_BYTES])


def test_an_entry_over_the_cap_is_not_kept(make_client, sandbox, isolated_env):
    client = make_client(result_cache_max_bytes=1000)
    req = base_request(seed=4, width=128, height=128)
    client.img2img(req)
    assert not client.img2img(req).from_cache and len(sandbox.tasks) == 2 and entries(isolated_env) == []


WRITER = r"""
import io, sys
sys.path.insert(0, sys.argv[1])
from PIL import Image
from ppinfra.result_cache import ResultCache
cache = ResultCache(sys.argv[2], max_bytes=int(sys.argv[4]))
for i in range(40):
    buf = io.BytesIO()
    Image.new("RGB", (64 + i, 64), (int(sys.argv[3]) * 60, i, 0)).save(buf, format="PNG")
    key = "shared" if i % 2 else f"own-{sys.argv[3]}-{i}"
    cache.put(key, task_id=f"w{sys.argv[3]}-{i}", images=[buf.getvalue()] * 2, seed=i, image_type="png")
"""


def test_concurrent_writers_and_a_reader_see_only_whole_entries(tmp_path):
    directory = str(tmp_path / "results")
    cap = 40_000  # small: the writers evict each other's entries all along
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, ROOT, directory, str(n), str(cap)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    reader = result_cache.ResultCache(directory, max_bytes=cap)
    hits = 0
    while any(w.poll() is None for w in writers):
        entry = reader.get("shared", expected=2)
        if entry is not None:  # never a torn entry: both images present, equal, and readable
            hits += 1
            assert entry.images[0] == entry.images[1] and entry.task_id.startswith("w")
            Image.open(io.BytesIO(entry.images[0])).load()
    assert [w.wait() for w in writers] == [0, 0, 0], [w.stderr.read() for w in writers]
    assert hits > 0 and reader.get("shared", expected=2) is not None
    assert not [f for f in os.listdir(directory) if not f.endswith(result_cache.SUFFIX)]  # no temp file left
    assert reader.info()["bytes"] <= cap + 2 * 1024  # at most the last writer's own entry above the cap


def _names(client, *reqs):
    slots = [result_cache.lookup_for(client.settings, r) for r in reqs]
    return [os.path.basename(s.cache.path(s.key)) for s in slots]


def _rewrite(path, damage):
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(damage(data))


def _bad_image_entry(path):
    # A well-formed entry whose checksums match, but whose "image" is no image at all.
    key = os.path.basename(path)[: -len(result_cache.SUFFIX)]
    result_cache.ResultCache(os.path.dirname(path)).put(
        key, task_id="t", images=[b"not an image at all"], seed=6, image_type="png"
    )


DAMAGE = {
    "truncated": lambda p: _rewrite(p, lambda d: d[: len(d) // 2]),
    "empty": lambda p: _rewrite(p, lambda d: b""),
    "bad json": lambda p: _rewrite(
        p, lambda d: d[: len(result_cache.MAGIC) + 8] + b"{" * 40 + d[len(result_cache.MAGIC) + 48 :]
    ),
    "flipped image byte": lambda p: _rewrite(p, lambda d: d[:-10] + bytes([d[-10] ^ 0xFF]) + d[-9:]),
    "wrong magic": lambda p: _rewrite(p, lambda d: b"X" + d[1:]),
    "bad image bytes": _bad_image_entry,
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_corrupt_entry_is_a_miss_never_a_failure(make_client, sandbox, isolated_env, damage):
    client = make_client()
    req = base_request(seed=6, width=128, height=128)
    first = client.img2img(req)
    (name,) = entries(isolated_env)
    DAMAGE[damage](os.path.join(results_dir(isolated_env), name))
    again = client.img2img(req)
    assert not again.from_cache and len(sandbox.tasks) == 2 and len(again.images) == 1
    Image.open(io.BytesIO(again.images[0])).load()
    third = client.img2img(req)  # the broken entry was replaced by the new task's result
    assert third.from_cache and third.images == again.images and len(sandbox.tasks) == 2
    assert first.task_id != again.task_id


def test_the_key_is_in_no_cache_file(make_client, sandbox, isolated_env, api_key):
    client = make_client()
    for seed in (1, 2):
        req = base_request(seed=seed, width=128, height=128, image_num=2)
        client.img2img(req)
        client.img2img(req)
    files = [os.path.join(d, f) for d, _, fs in os.walk(isolated_env / "cache") for f in fs]
    assert len([f for f in files if f.endswith(result_cache.SUFFIX)]) == 2
    for path in files:
        with open(path, "rb") as fh:
            data = fh.read()
        for needle in (api_key, api_key[-8:], base64.b64encode(api_key.encode()).decode(), "Bearer"):
            assert needle.encode() not in data, (path, needle)


def test_bad_size_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(result_cache.ENV_MAX_BYTES, "lots")
    with pytest.raises(Exception) as info:
        result_cache.max_bytes()
    assert (
        result_cache.ENV_MAX_BYTES in str(info.value)
        and "'lots'" in str(info.value)
        and "2G" in str(info.value)
    )
    monkeypatch.setenv(result_cache.ENV_MAX_BYTES, "500M")
    assert result_cache.max_bytes() == 500 * 1024**2


def test_command_line_info_and_clear(make_client, sandbox, isolated_env):
    client = make_client()
    for seed in (1, 2):
        client.img2img(base_request(seed=seed, width=128, height=128))
    env = dict(os.environ)

    def cli(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "ppinfra", "cache", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert "2 result(s)" in cli("info") and results_dir(isolated_env) in cli("info")
    assert "removed 2 cached result(s)" in cli("clear")
    assert entries(isolated_env) == [] and "0 result(s)" in cli("info")
    assert not client.img2img(base_request(seed=1, width=128, height=128)).from_cache


def test_the_cli_uses_the_same_cache(sandbox, api_key, isolated_env, tmp_path):
    src = tmp_path / "inputs"
    src.mkdir()
    for i in range(2):
        Image.fromarray((photo_like(600, 400, seed=i) * 255).astype(np.uint8)).save(src / f"p{i}.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PPINFRA_")}
    env.update(
        PPINFRA_API_KEY=api_key,
        PPINFRA_CONFIG=str(tmp_path / "none.json"),
        PPINFRA_CACHE_DIR=str(isolated_env / "cache"),
    )

    def cli(out, seed):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ppinfra",
                "img2img",
                "--base-url",
                sandbox.base_url,
                "--image",
                str(src),
                "--prompt",
                "a harbour",
                "--width",
                "256",
                "--height",
                "256",
                "--seed",
                str(seed),
                "--out",
                str(tmp_path / out),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        return {
            f: (tmp_path / out / f).read_bytes()
            for f in sorted(os.listdir(tmp_path / out))
            if not f.startswith(".")
        }

    first = cli("a", 21)
    assert len(sandbox.tasks) == 2 and len(first) == 2
    second = cli("b", 21)  # another output folder: no journal to skip by, only the cache
    assert len(sandbox.tasks) == 2 and second == first
    cli("c", -1)
    assert len(sandbox.tasks) == 4
