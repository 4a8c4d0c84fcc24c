"""The harmoniser's web API (serve/harmonize.py) on a tiny trained chorale model."""
import pytest

from tunesmith.data.midi import read_midi, write_midi
from tunesmith.data.notes import Score


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from starlette.testclient import TestClient

    from tunesmith.serve.app import create_app
    from tunesmith.training import train

    root = tmp_path_factory.mktemp("hz")
    cfg = root / "c.toml"
    cfg.write_text('name = "tiny_chorale"\n[data]\nencoding = "chorale_grid"\nmax_pieces = 6\nval_windows = 4\n'
                   '[model]\nname = "coconet"\nchannels = 8\nblocks = 1\n'
                   '[train]\nmax_steps = 1\nbatch_size = 4\n[sample]\ngibbs_steps = 3\n')
    train(str(cfg), root / "run", device="cpu", progress=False)
    with TestClient(create_app([root / "run"])) as c:
        yield c


def test_listed_as_a_harmoniser(client):
    (m,) = client.get("/api/models").json()
    assert m["harmonize"] is True and m["kind"] == "chorale" and m["gibbs_steps"] == 3


def test_held_out_soprano_comes_back_exactly_in_four_voices(client, tmp_path):
    sops = client.get("/api/harmonize/sopranos", params={"model": "run"}).json()
    assert len(sops) == 35 and sops[0]["beats"] > 0
    j = client.post("/api/harmonize", json={"model": "run", "soprano": 3, "seed": 1, "gibbs_steps": 2}).json()
    from tunesmith.serve.harmonize import sopranos

    want = [(int(p), round(float(s), 5), round(float(d), 5)) for p, s, d in sopranos()[3].notes()]
    assert [(n["p"], n["s"], n["d"]) for n in j["voices"][0]] == want
    assert len(j["voices"]) == 4 and len(j["notes"]) == sum(len(v) for v in j["voices"])
    again = client.post("/api/harmonize", json={"model": "run", "soprano": 3, "seed": 1, "gibbs_steps": 2}).json()
    assert again["voices"] == j["voices"]  # the seed decides
    r = client.post("/api/harmonize/midi", json={"voices": j["voices"], "tempo": 80})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/midi"
    p = tmp_path / "x.mid"
    p.write_bytes(r.content)
    back = read_midi(p)
    assert [(int(a), float(b), float(c)) for a, b, c in back.select(back.track == 0).notes()] == want


def test_notes_and_uploaded_midi(client, tmp_path):
    mel = Score.from_notes([(67, 0, 1), (67, 1, 1), (69, 2, 1), (71, 3, 1), (72, 4, 2)], tempo=90)
    j = client.post("/api/harmonize", json={"model": "run", "seed": 0, "gibbs_steps": 2,
                                            "notes": [{"p": p, "s": s, "d": d} for p, s, d in mel.notes()]}).json()
    assert [(n["p"], n["s"], n["d"]) for n in j["voices"][0]] == mel.notes()
    f = write_midi(mel, tmp_path / "m.mid")
    r = client.post("/api/harmonize/upload", params={"model": "run", "seed": 0}, content=f.read_bytes())
    assert r.status_code == 200
    assert [(n["p"], n["s"], n["d"]) for n in r.json()["voices"][0]] == mel.notes()
    assert r.json()["tempo"] == 90


@pytest.mark.parametrize("body", [
    {"model": "run"},                                                     # neither soprano nor notes
    {"model": "run", "soprano": 0, "notes": [{"p": 60, "s": 0, "d": 1}]},  # both
    {"model": "run", "soprano": 99},
    {"model": "nope", "soprano": 0},
    {"model": "run", "notes": [{"p": 10, "s": 0, "d": 1}]},                # outside the harmoniser's range
    {"model": "run", "soprano": 0, "gibbs_steps": 100000},
])
def test_bad_requests_are_one_sentence_422s(client, body):
    r = client.post("/api/harmonize", json=body)
    assert r.status_code == 422 and isinstance(r.json()["detail"], str)


def test_garbage_upload_refused(client):
    r = client.post("/api/harmonize/upload", params={"model": "run"}, content=b"not a midi file")
    assert r.status_code == 422 and "MIDI" in r.json()["detail"]
