"""The Groove MIDI Dataset: info.csv, and the verified unpacking of its archive (local zips only)."""
import zipfile

import pytest

from deepbeat import gmd
from deepbeat.errors import DatasetError
from deepbeat.gmd import GMD_ARCHIVE_NAME, contents_digest, download, fetch_gmd, read_index


def quiet(line):
    """A log that drops progress lines."""


def zip_folder(folder, archive, prefix="groove", extra=(), skip=()):
    """Zip every file of `folder` under `prefix/`, plus (name, bytes) extras; returns the path."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            name = f"{prefix}/{path.relative_to(folder).as_posix()}"
            if path.is_file() and name not in skip:
                zipped.write(path, name)
        for name, data in extra:
            zipped.writestr(name, data)
    return archive


@pytest.fixture
def fixture_zip(tmp_path, gmd_fixture_dir):
    return zip_folder(gmd_fixture_dir, tmp_path / "fixture.zip")


@pytest.fixture
def fixture_digest(gmd_fixture_dir):
    return contents_digest(gmd_fixture_dir)


def fetch_fails(dest, archive, expected, fragment):
    with pytest.raises(DatasetError) as caught:
        fetch_gmd(dest, archive=archive, expected=expected, log=quiet)
    message = str(caught.value)
    assert fragment in message and "\n" not in message, message
    assert not (dest / "groove").exists() and not (dest / "groove.unpacking").exists()
    return message


def test_contents_digest_counts_midi_files(gmd_fixture_dir, tmp_path):
    count, digest = contents_digest(gmd_fixture_dir)
    assert count == 4 and len(digest) == 64
    copy = tmp_path / "copy"
    for path in gmd_fixture_dir.rglob("*.mid"):
        target = copy / path.relative_to(gmd_fixture_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    assert contents_digest(copy) == (count, digest)
    first = sorted(copy.rglob("*.mid"))[0]
    first.write_bytes(first.read_bytes() + b"\x00")
    assert contents_digest(copy)[1] != digest


def test_good_zip_unpacks_and_verifies(tmp_path, fixture_zip, fixture_digest, gmd_fixture_dir):
    lines = []
    target = fetch_gmd(tmp_path / "dest", archive=fixture_zip, expected=fixture_digest, log=lines.append)
    assert target == tmp_path / "dest" / "groove"
    assert contents_digest(target) == fixture_digest
    assert (target / "info.csv").read_bytes() == (gmd_fixture_dir / "info.csv").read_bytes()
    assert lines == [f"verified 4 MIDI files; unpacked to {target}"]
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["groove"]
    # a second fetch replaces the folder
    fetch_gmd(tmp_path / "dest", archive=fixture_zip, expected=fixture_digest, log=quiet)
    assert contents_digest(target) == fixture_digest


def test_the_fixture_zip_is_not_gmd(tmp_path, fixture_zip):
    message = fetch_fails(tmp_path, fixture_zip, (gmd.GMD_MIDI_FILES, gmd.GMD_DIGEST), "contents differ")
    assert "4 MIDI files" in message and "expected 1150 files" in message


def test_wrong_digest(tmp_path, fixture_zip):
    fetch_fails(tmp_path, fixture_zip, (4, "0" * 64), "contents differ from GMD v1.0.0")


def test_corrupt_member(tmp_path, gmd_fixture_dir, fixture_digest):
    archive = tmp_path / "stored.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        zipped.write(gmd_fixture_dir / "info.csv", "groove/info.csv")
        zipped.writestr("groove/a.mid", b"MThd" + bytes(200))
    data = bytearray(archive.read_bytes())
    data[data.index(b"MThd") + 50] ^= 0xFF  # the CRC no longer matches
    archive.write_bytes(bytes(data))
    fetch_fails(tmp_path / "dest", archive, fixture_digest, "member groove/a.mid is corrupt")


def test_corrupt_deflate_stream(tmp_path, fixture_zip, fixture_digest):
    data = bytearray(fixture_zip.read_bytes())
    name = b"groove/drummer6/session1/3_rock_80_beat_6-8.mid"
    start = data.index(name) + len(name)  # the local header's name; the deflate stream follows
    data[start:start + 30] = b"\xff" * 30  # an invalid block type: zlib itself fails, not the CRC
    fixture_zip.write_bytes(bytes(data))
    message = fetch_fails(tmp_path / "dest", fixture_zip, fixture_digest, "not a readable zip archive")
    assert message.startswith(str(fixture_zip)) and "invalid block type" in message


@pytest.mark.parametrize("data", [b"", b"not a zip", b"PK\x03\x04" + bytes(30)])
def test_not_a_zip(tmp_path, data, fixture_digest):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(data)
    fetch_fails(tmp_path / "dest", archive, fixture_digest, "not a readable zip archive")


def test_truncated_zip(tmp_path, fixture_zip, fixture_digest):
    fixture_zip.write_bytes(fixture_zip.read_bytes()[:-100])
    fetch_fails(tmp_path / "dest", fixture_zip, fixture_digest, "not a readable zip archive")


def test_missing_archive(tmp_path, fixture_digest):
    fetch_fails(tmp_path / "dest", tmp_path / "absent.zip", fixture_digest, "not a readable zip archive")


def test_missing_info_csv(tmp_path, gmd_fixture_dir, fixture_digest):
    archive = zip_folder(gmd_fixture_dir, tmp_path / "noindex.zip", skip={"groove/info.csv"})
    fetch_fails(tmp_path / "dest", archive, fixture_digest, "no groove/info.csv")


@pytest.mark.parametrize(
    "member", ["groove/../../evil.mid", "../evil.mid", "/tmp/evil.mid", "groove\\..\\..\\evil.mid"]
)
def test_path_traversal_member(tmp_path, gmd_fixture_dir, fixture_digest, member):
    archive = zip_folder(gmd_fixture_dir, tmp_path / "evil.zip", extra=[(member, b"MThd")])
    dest = tmp_path / "a" / "b" / "dest"
    fetch_fails(dest, archive, fixture_digest, "unsafe member path")
    assert not list(tmp_path.rglob("evil.mid"))


def test_zip_bomb_is_refused_before_unpacking(tmp_path, gmd_fixture_dir, fixture_digest, monkeypatch):
    archive = zip_folder(gmd_fixture_dir, tmp_path / "big.zip", extra=[("groove/zeros.bin", bytes(100_000))])
    monkeypatch.setattr(gmd, "MAX_UNPACKED_BYTES", 50_000)
    fetch_fails(tmp_path / "dest", archive, fixture_digest, "more than the 50000 allowed")


def test_download_from_a_file_url(tmp_path, fixture_zip):
    target = tmp_path / "copy.zip"
    download(fixture_zip.as_uri(), target)
    assert target.read_bytes() == fixture_zip.read_bytes()
    with pytest.raises(DatasetError, match="cannot download file:///"):
        download((tmp_path / "absent.zip").as_uri(), tmp_path / "other.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.zip", "fixture.zip"]  # no .part left
    with pytest.raises(DatasetError, match="cannot download nowhere"):
        download("nowhere", tmp_path / "x.zip")


def test_fetch_downloads_verifies_and_reuses(tmp_path, fixture_zip, fixture_digest):
    dest = tmp_path / "dest"
    lines = []
    fetch_gmd(dest, url=fixture_zip.as_uri(), expected=fixture_digest, log=lines.append)
    assert lines[0] == f"downloading {fixture_zip.as_uri()}"
    assert (dest / GMD_ARCHIVE_NAME).read_bytes() == fixture_zip.read_bytes()
    lines.clear()
    fetch_gmd(dest, url="file:///nowhere.zip", expected=fixture_digest, log=lines.append)  # kept archive
    assert not lines[0].startswith("downloading")


def test_a_bad_download_is_removed(tmp_path, fixture_digest):
    page = tmp_path / "page.html"
    page.write_text("<html>not found</html>")
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError) as caught:
        fetch_gmd(dest, url=page.as_uri(), expected=fixture_digest, log=quiet)
    message = str(caught.value)
    assert "not a readable zip archive" in message and "removed it" in message
    assert not (dest / GMD_ARCHIVE_NAME).exists()


def test_a_given_archive_is_never_removed(tmp_path, fixture_zip):
    fetch_fails(tmp_path / "dest", fixture_zip, (4, "0" * 64), "contents differ")
    assert fixture_zip.exists()


def test_unusable_dest(tmp_path, fixture_zip, fixture_digest):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatasetError, match="file/sub: cannot create the folder"):
        fetch_gmd(blocker / "sub", archive=fixture_zip, expected=fixture_digest, log=quiet)


def test_read_index(gmd_fixture_dir):
    entries = {e.midi_filename: e for e in read_index(gmd_fixture_dir)}
    hiphop = entries["drummer3/session2/33_hiphop_92_beat_4-4.mid"]
    assert (hiphop.split, hiphop.style, hiphop.bpm, hiphop.beat_type, hiphop.drummer, hiphop.time_signature) == (
        "train", "hiphop", 92.0, "beat", "drummer3", "4-4",
    )
    assert entries["drummer1/session1/29_latin-samba_116_fill_4-4.mid"].style == "latin"  # primary of latin/samba


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda row: row.replace(",train", ",training"), "line 2: split 'training' is not one of train"),
        (lambda row: row.replace(",92,", ",fast,"), "line 2: bpm 'fast' is not a number"),
        (lambda row: row.rsplit(",", 3)[0], "line 2: fewer columns than the header"),
    ],
)
def test_read_index_errors(tmp_path, gmd_fixture_dir, mutate, fragment):
    header, *rows = (gmd_fixture_dir / "info.csv").read_text().splitlines()
    hiphop = next(row for row in rows if "hiphop" in row)
    (tmp_path / "info.csv").write_text(f"{header}\n{mutate(hiphop)}\n")
    with pytest.raises(DatasetError) as caught:
        read_index(tmp_path)
    assert fragment in str(caught.value) and str(caught.value).startswith(str(tmp_path / "info.csv"))


def test_read_index_without_rows_or_columns(tmp_path, gmd_fixture_dir):
    header = (gmd_fixture_dir / "info.csv").read_text().splitlines()[0]
    (tmp_path / "info.csv").write_text(header + "\n")
    with pytest.raises(DatasetError, match="info.csv: lists no MIDI files"):
        read_index(tmp_path)
    (tmp_path / "info.csv").write_text("drummer,split\nx,train\n")
    with pytest.raises(DatasetError, match="info.csv: expected columns beat_type, bpm, drummer"):
        read_index(tmp_path)
    (tmp_path / "info.csv").write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(DatasetError, match="info.csv: cannot read"):
        read_index(tmp_path)


def test_read_index_missing(tmp_path):
    with pytest.raises(DatasetError, match="info.csv: not found; expected the Groove MIDI Dataset's info.csv"):
        read_index(tmp_path)


def test_real_gmd_zip_matches_the_shipped_digest(tmp_path, groove_root):
    """Zip ../shared/data/groove as the official archive lays it out and verify it for real."""
    archive = tmp_path / GMD_ARCHIVE_NAME
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zipped:
        for path in sorted(groove_root.rglob("*")):
            if path.is_file():
                zipped.write(path, f"groove/{path.relative_to(groove_root).as_posix()}")
    target = fetch_gmd(tmp_path / "dest", archive=archive, log=quiet)
    assert contents_digest(target) == (gmd.GMD_MIDI_FILES, gmd.GMD_DIGEST)
    assert len(read_index(target)) == 1150
