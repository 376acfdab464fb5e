"""Vector index: add / remove / search / save / load, numpy and faiss backends."""

from __future__ import annotations

import json

import numpy as np
import pytest

from triage.errors import BundleError, InvalidInput
from triage.index import FaissIndex, NumpyIndex, load_index, make_index

BACKENDS = ["numpy", "faiss", "faiss-hnsw"]


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture()
def vectors():
    return unit_vectors(300, 32)


@pytest.fixture()
def ids():
    return [f"P-{i:04d}" for i in range(300)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stored_vector_is_its_own_nearest_neighbour(backend, vectors, ids):
    index = make_index(backend, 32)
    index.add(ids, vectors)
    found, scores = index.search(vectors[[5, 17]], k=3)
    assert [row[0] for row in found] == ["P-0005", "P-0017"]
    assert scores.shape == (2, 3) and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert scores[0, 0] >= scores[0, 1] >= scores[0, 2]


def test_numpy_and_faiss_agree_on_the_top_hit_of_random_queries(vectors, ids):
    queries = unit_vectors(40, 32, seed=1)
    tops = []
    for backend in ("numpy", "faiss"):
        index = make_index(backend, 32)
        index.add(ids, vectors)
        found, _ = index.search(queries, k=1)
        tops.append([row[0] for row in found])
    assert tops[0] == tops[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_removed_ids_are_never_returned(backend, vectors, ids):
    index = make_index(backend, 32)
    index.add(ids, vectors)
    assert index.remove(["P-0005", "P-9999"]) == 1
    assert len(index) == 299 and "P-0005" not in index
    found, _ = index.search(vectors[[5]], k=10)
    assert "P-0005" not in found[0] and len(found[0]) == 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_allowed_ids_restrict_the_hits_even_when_they_are_far(backend, vectors, ids):
    index = make_index(backend, 32)
    index.add(ids, vectors)
    allowed = ["P-0100", "P-0200", "P-0250"]
    found, scores = index.search(vectors[[5]], k=5, allowed_ids=allowed + ["unknown-id"])
    assert sorted(found[0]) == sorted(allowed)
    assert np.isneginf(scores[0, 3:]).all()


def test_search_with_an_empty_allowed_set_returns_nothing(vectors, ids):
    index = make_index("numpy", 32)
    index.add(ids, vectors)
    found, scores = index.search(vectors[:2], k=3, allowed_ids=[])
    assert found == [[], []] and np.isneginf(scores).all()


def test_adding_an_existing_id_replaces_its_vector(vectors, ids):
    index = make_index("numpy", 32)
    index.add(ids[:10], vectors[:10])
    index.add(["P-0003"], vectors[[200]])
    assert len(index) == 10
    found, _ = index.search(vectors[[200]], k=1)
    assert found[0] == ["P-0003"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_and_load_round_trip_gives_the_same_answers(backend, vectors, ids, tmp_path):
    index = make_index(backend, 32)
    index.add(ids, vectors)
    index.remove(["P-0001"])
    before = index.search(vectors[:20], k=5)
    index.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix", dim=32)
    after = loaded.search(vectors[:20], k=5)
    assert len(loaded) == len(index) == 299
    assert after[0] == before[0]
    np.testing.assert_allclose(after[1], before[1], rtol=1e-6)
    # new ids after loading must not collide with the stored ones
    loaded.add(["P-new"], vectors[[1]])
    assert loaded.search(vectors[[1]], k=1)[0] == [["P-new"]]


def test_saved_manifest_stamps_backend_dim_count_and_versions(vectors, ids, tmp_path):
    index = make_index("faiss", 32)
    index.add(ids, vectors)
    index.save(tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["backend"] == "faiss" and manifest["dim"] == 32 and manifest["count"] == 300
    assert manifest["created_at"] and "faiss-cpu" in manifest["versions"] and "numpy" in manifest["versions"]


def test_load_refuses_an_index_of_another_dim(vectors, ids, tmp_path):
    index = make_index("numpy", 32)
    index.add(ids, vectors)
    index.save(tmp_path / "ix")
    with pytest.raises(BundleError, match="32-dim"):
        load_index(tmp_path / "ix", dim=384)


def test_load_refuses_an_index_of_another_backend(vectors, ids, tmp_path):
    index = make_index("numpy", 32)
    index.add(ids, vectors)
    index.save(tmp_path / "ix")
    with pytest.raises(BundleError, match="numpy"):
        FaissIndex.load(tmp_path / "ix")
    assert isinstance(NumpyIndex.load(tmp_path / "ix"), NumpyIndex)


def test_load_refuses_a_directory_without_manifest(tmp_path):
    with pytest.raises(BundleError, match="manifest"):
        load_index(tmp_path)


def test_vectors_of_the_wrong_width_are_refused(ids):
    index = make_index("numpy", 32)
    with pytest.raises(InvalidInput):
        index.add(ids[:2], unit_vectors(2, 16))
    with pytest.raises(InvalidInput):
        index.search(unit_vectors(1, 16), k=1)


def test_unknown_backend_is_refused():
    with pytest.raises(InvalidInput, match="backend"):
        make_index("annoy", 32)


def test_concurrent_adds_from_threads_lose_nothing():
    from concurrent.futures import ThreadPoolExecutor

    index = make_index("numpy", 8)
    batches = [([f"T{t}-{i}" for i in range(50)], unit_vectors(50, 8, seed=t)) for t in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda batch: index.add(*batch), batches))
    assert len(index) == 400
    found, _ = index.search(batches[3][1][[7]], k=1)
    assert found[0] == ["T3-7"]


def test_saving_over_an_existing_index_replaces_it_whole(vectors, ids, tmp_path):
    first = make_index("numpy", 32)
    first.add(ids[:10], vectors[:10])
    first.save(tmp_path / "ix")
    second = make_index("faiss", 32)
    second.add(ids[:20], vectors[:20])
    second.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix", dim=32)
    assert loaded.backend == "faiss" and len(loaded) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]
