"""Real data sets offline: a tiny CelebA-layout folder, folders of images, torchvision's formats on
fake files, the cache, and every bad input with its documented behaviour."""

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import vaegan_lite.data.sets as D
from vaegan_lite.cli import main
from vaegan_lite.config import ModelConfig, TrainConfig
from vaegan_lite.data import DataError, load_split
from vaegan_lite.data.cache import PREP_VERSION
from vaegan_lite.files import STALE_S, atomic_path, atomic_write_text

N = 12  # fake CelebA: 8 train, 2 valid, 2 test
TINY = ["--image-size", "32", "--width", "0.125", "--latent-dim", "16", "--batch-size", "4",
        "--device", "cpu", "--no-progress", "--log-every", "1"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def celeba_master(tmp_path_factory, fake_celeba):
    root = tmp_path_factory.mktemp("celeba_master")
    fake_celeba(root, N)
    return root


@pytest.fixture
def celeba(celeba_master, tmp_path):
    """A fresh copy (tests break it), without the master's cache."""
    root = tmp_path / "data"
    shutil.copytree(celeba_master, root, ignore=shutil.ignore_patterns(".vaegan_cache"))
    return root


def caches(root):
    d = root / ".vaegan_cache"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def count_decodes(monkeypatch):
    calls = {"n": 0}
    real = D._open_rgb

    def counting(path):
        calls["n"] += 1
        return real(path)

    monkeypatch.setattr(D, "_open_rgb", counting)
    return calls


# -----------------------------------------------------------------------------
# CelebA


def test_celeba_folder_trains_through_the_cli(celeba, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "--data", "celeba", "--data-root", str(celeba), "--steps", "2",
            "--out", str(out), *TINY]  # fmt: skip
    assert main(argv) == 0
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["step"] == 2
    cfg = json.loads(ckpt["config"])
    assert cfg["data"] == "celeba" and cfg["data_root"] == str(celeba) and cfg["dataset_size"] == 0
    # The same files elsewhere resume the run (data_root may change, nothing else).
    moved = tmp_path / "moved"
    shutil.copytree(celeba, moved)
    argv[argv.index(str(celeba))] = str(moved)
    argv[argv.index("2")] = "3"
    assert main(argv) == 0
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 3


def test_celeba_splits_attributes_and_the_authors_crop(celeba_master):
    sets = {s: load_split("celeba", celeba_master, s, 32, progress=False)
            for s in ("train", "valid", "test", "all")}  # fmt: skip
    assert [len(s.images) for s in sets.values()] == [8, 2, 2, 12]
    everything = sets["all"]
    assert everything.images.dtype == torch.uint8 and everything.images.shape == (N, 3, 32, 32)
    assert everything.attr_names == D.CELEBA_ATTRS and everything.attrs.shape == (N, 40)
    assert torch.equal(torch.cat([sets[s].images for s in ("train", "valid", "test")]),
                       everything.images)  # fmt: skip
    faces, attrs = D.SyntheticFaces(N, 128).tensors()
    for j, name in enumerate(D.ATTR_NAMES):
        assert torch.equal(everything.attrs[:, D.CELEBA_ATTRS.index(name)], attrs[:, j]), name
    assert everything.attrs[:, D.CELEBA_ATTRS.index("Attractive")].sum() == 0  # -1 in the file
    # The faces were pasted into the crop box: cropping, blurring and resizing gets them back.
    want = F.interpolate(faces.float(), size=(32, 32), mode="bicubic", antialias=True)
    assert (everything.images.float() - want).abs().mean() < 8
    off = F.interpolate(faces.float()[..., 16:, :], size=(32, 32), mode="bicubic", antialias=True)
    assert (everything.images.float() - off).abs().mean() > 12  # a misplaced crop would be far


def test_kaggle_layout_is_read_as_it_is(celeba_master, tmp_path, fake_celeba):
    fake_celeba(tmp_path, N, kaggle=True)
    assert (tmp_path / "celeba" / "img_align_celeba" / "img_align_celeba" / "000001.jpg").is_file()
    a = load_split("celeba", tmp_path, "test", 32, progress=False)
    b = load_split("celeba", celeba_master, "test", 32, progress=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.attrs, b.attrs)
    assert a.attr_names == b.attr_names


def test_cache_is_reused_and_rebuilt_when_settings_or_files_change(celeba, monkeypatch):
    calls = count_decodes(monkeypatch)
    first = load_split("celeba", celeba, "train", 32, progress=False)
    assert calls["n"] == 8 and len(caches(celeba)) == 1
    again = load_split("celeba", celeba, "train", 32, progress=False)
    assert calls["n"] == 8 and torch.equal(first.images, again.images)  # read back, not decoded
    assert load_split("celeba", celeba, "train", 64, progress=False).images.shape[-1] == 64
    assert calls["n"] == 16 and len(caches(celeba)) == 2  # another size: another cache
    gray = load_split("celeba", celeba, "train", 32, channels=1, progress=False)
    assert gray.images.shape == (8, 1, 32, 32) and calls["n"] == 24
    # A replaced image (another size in bytes) rebuilds the cache of the sets that use it.
    img = celeba / "celeba" / "img_align_celeba" / "000001.jpg"
    Image.open(img).save(img, quality=60)
    load_split("celeba", celeba, "train", 32, progress=False)
    assert calls["n"] == 32 and len(caches(celeba)) == 3  # and the cache it replaces is gone
    assert not any(name.startswith(".tmp") for name in caches(celeba))
    meta = json.loads((celeba / ".vaegan_cache" / caches(celeba)[0] / "meta.json").read_text())
    assert meta["prep_version"] == PREP_VERSION and meta["skipped"] == []


def test_a_cache_is_on_disk_before_its_folder_is_renamed(celeba, monkeypatch):
    """A power cut after the rename must not leave a cache whose data was still in memory:
    each of its files is fsynced under the temporary name, before the rename publishes it."""
    import vaegan_lite.data.cache as cache

    events = []
    monkeypatch.setattr(cache, "fsync", lambda path: events.append(("fsync", Path(path).name)))
    real_rename = os.rename
    monkeypatch.setattr(cache.os, "rename", lambda a, b: (events.append(("rename", "")),
                                                          real_rename(a, b))[1])  # fmt: skip
    load_split("celeba", celeba, "train", 32, progress=False)
    assert events[-1] == ("rename", "")
    assert sorted(name for what, name in events[:-1]) == ["attrs.npy", "images.npy", "meta.json"]


def test_read_json_names_the_file_it_cannot_read(tmp_path):
    from vaegan_lite.files import read_json

    (tmp_path / "ok.json").write_text('{"a": [1]}')
    assert read_json(tmp_path / "ok.json") == {"a": [1]}
    for name, content, says in [("cut.json", b'{"a": [1', "not a JSON file"),
                                ("bytes.json", b"\xff\xfe", "not a JSON file")]:  # fmt: skip
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path / name))}: {says}"):
            read_json(tmp_path / name)
    with pytest.raises(ValueError, match="gone.json: cannot be read"):
        read_json(tmp_path / "gone.json")


DAMAGED_META = [
    ("{}", "'n' missing or not a count"),  # was a KeyError
    ("[1]", "not a JSON object"),  # was a TypeError
    ("null", "not a JSON object"),
    ('{"n": 5, "attr_names": [], "skipped": "x"}', "'skipped' missing or not a list of names"),
    ('{"n": 5, "attr_names": [1], "skipped": []}', "'attr_names' missing or not a list of names"),
    ('{"n": 5, "attr_names": []}', "'skipped' missing"),
    ('{"n": "5", "attr_names": [], "skipped": []}', "'n' missing or not a count"),
    ('{"n": 4, "attr_names": [], "skipped": []}', "meta.json says .4, 0."),
    ('{"n": 5, "attr_names": ["a"], "skipped": []}', r"attrs.npy \(5, 0\); meta.json says"),
    ('{"n": 5, "attr_n', "Unterminated string"),
    (b"\xff\xfe", "can't decode"),
]


def test_a_damaged_cache_meta_is_one_line_naming_the_cache(tmp_path, capsys):
    make_folder(tmp_path / "f")
    argv = ["train", "--data", "folder", "--data-root", str(tmp_path / "f"), "--steps", "1",
            "--dataset-size", "4", "--out", str(tmp_path / "run"), *TINY]  # fmt: skip
    good = load_split("folder", tmp_path / "f", "train", 32, progress=False)
    [folder] = (tmp_path / "f" / ".vaegan_cache").iterdir()
    meta = folder / "meta.json"
    for text, why in DAMAGED_META:
        meta.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(DataError, match=f"^{re.escape(str(folder))}: a damaged cache "
                                            f"\\(.*{why}.*\\); delete the folder to rebuild it$"):
            load_split("folder", tmp_path / "f", "train", 32, progress=False)
    meta.write_text("{}")
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {folder}: a damaged cache (meta.json: 'n' missing or not a count); "
                   "delete the folder to rebuild it"]  # fmt: skip
    assert not (tmp_path / "run").exists()
    shutil.rmtree(folder)  # as the message says: rebuilt
    assert torch.equal(load_split("folder", tmp_path / "f", "train", 32).images, good.images)


def test_a_crash_while_caching_leaves_nothing_that_is_read_later(celeba, monkeypatch):
    real, calls = D._open_rgb, {"n": 0}

    def dies_on_the_fifth(path):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(D, "_open_rgb", dies_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        load_split("celeba", celeba, "train", 32, progress=False)
    assert caches(celeba) == []  # neither a cache nor its temporary folder
    # A build whose process was killed leaves a temporary folder: never read, removed later.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = celeba / ".vaegan_cache" / f".tmp-{dead.stdout.strip()}-x"
    stale.mkdir(parents=True)
    np.save(stale / "images.npy", np.zeros((1, 3, 32, 32), np.uint8))
    monkeypatch.setattr(D, "_open_rgb", real)
    s = load_split("celeba", celeba, "train", 32, progress=False)
    assert len(s.images) == 8 and not stale.exists() and len(caches(celeba)) == 1


def break_line(path, lineno, fn):
    lines = path.read_text().splitlines()
    lines[lineno - 1] = fn(lines[lineno - 1])
    path.write_text("\n".join(lines) + "\n")


def drop_last_value(line):
    return line.rsplit(" ", 1)[0]


ATTR, PART = "celeba/list_attr_celeba.txt", "celeba/list_eval_partition.txt"
IMG = "celeba/img_align_celeba"


def tiny_jpeg(path, size=(100, 100)):
    Image.new("RGB", size, (120, 60, 30)).save(path)


CELEBA_BAD = {  # what breaks the folder => what the one-line message must say
    "attr list missing": (lambda r: (r / ATTR).unlink(), "list_attr_celeba.txt: missing"),
    "partition missing": (lambda r: (r / PART).unlink(), "list_eval_partition.txt: missing"),
    "image folder missing": (lambda r: shutil.rmtree(r / IMG), "img_align_celeba: missing"),
    "column count": (lambda r: break_line(r / ATTR, 5, drop_last_value),
                     "list_attr_celeba.txt: line 5 has 39 values, expected 40"),
    "non-integer": (lambda r: break_line(r / ATTR, 4, lambda s: s[:-2] + " x"),
                    "list_attr_celeba.txt: line 4: 'x' is not an integer"),
    "out of range": (lambda r: break_line(r / ATTR, 6, lambda s: s[:-2] + " 2"),
                     "list_attr_celeba.txt: line 6: 2 is not an attribute value"),
    "count header": (lambda r: break_line(r / ATTR, 1, lambda s: "twelve"),
                     "list_attr_celeba.txt: line 1 should be the number of images"),
    "cut short": (lambda r: break_line(r / ATTR, N + 2, lambda s: ""),
                  "list_attr_celeba.txt: line 1 says 12 images, 11 listed"),
    "partition non-integer": (lambda r: break_line(r / PART, 3, lambda s: "000003.jpg a"),
                              "list_eval_partition.txt: line 3: 'a' is not an integer"),
    "partition value": (lambda r: break_line(r / PART, 3, lambda s: "000003.jpg 7"),
                        "list_eval_partition.txt: line 3: partition 7"),
    "partition columns": (lambda r: break_line(r / PART, 2, lambda s: s + " 1"),
                          "list_eval_partition.txt: line 2 has 2 values, expected 1"),
    "lists disagree": (lambda r: break_line(r / PART, N, lambda s: ""),
                       "list_eval_partition.txt: no line for 000012.jpg"),
    "image missing": (lambda r: (r / IMG / "000002.jpg").unlink(),
                      "000002.jpg: missing, though list_attr_celeba.txt lists it"),
    "wrong image size": (lambda r: tiny_jpeg(r / IMG / "000001.jpg"),
                         "000001.jpg: 100x100, not CelebA's aligned 178x218"),
    "no train images": (lambda r: (r / PART).write_text("".join(
                            f"{line.split()[0]} 2\n" for line in (r / PART).read_text().split("\n")
                            if line)),
                        "list_eval_partition.txt: split 'train' has no images"),
    "image folder a file": (lambda r: (shutil.rmtree(r / IMG), (r / IMG).write_text("")),
                            "img_align_celeba: a file, not the folder"),
}  # fmt: skip


@pytest.mark.parametrize("case", CELEBA_BAD)
def test_bad_celeba_input_is_one_line_exit_2_and_nothing_written(celeba, tmp_path, capsys, case):
    breaks, needle = CELEBA_BAD[case]
    breaks(celeba)
    out = tmp_path / "run"
    argv = ["train", "--data", "celeba", "--data-root", str(celeba), "--steps", "1",
            "--out", str(out), *TINY]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not out.exists() and caches(celeba) == []


def test_missing_data_root_is_one_line(tmp_path, capsys):
    argv = ["train", "--data", "celeba", "--data-root", str(tmp_path / "nowhere"), "--steps", "1",
            "--out", str(tmp_path / "run"), *TINY]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere does not exist" in err[0]
    assert err[0].startswith("error: data root "), err  # not "--data:": it is --data-root's
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "run").exists()
    (tmp_path / "afile").write_text("")
    argv[argv.index("--data-root") + 1] = str(tmp_path / "afile")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "afile is a file, not a folder (root / --data-root)" in err[0], err
    assert not err[0].startswith("error: --data:"), err
    assert not (tmp_path / "run").exists()
    # the same root from $VAEGAN_DATA is blamed on $VAEGAN_DATA, which the user set
    i = argv.index("--data-root")
    del argv[i : i + 2]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAEGAN_DATA", str(tmp_path / "afile"))
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "afile is a file, not a folder ($VAEGAN_DATA)" in err[0], err


def test_unreadable_images_are_skipped_with_one_warning(celeba, capsys):
    img = celeba / IMG
    data = (img / "000003.jpg").read_bytes()
    (img / "000003.jpg").write_bytes(data[: len(data) // 2])  # truncated
    (img / "000005.jpg").write_text("not a picture")
    s = load_split("celeba", celeba, "train", 32, progress=False)
    assert len(s.images) == 6
    _, attrs = D.SyntheticFaces(N, 32).tensors()
    kept = [0, 1, 3, 5, 6, 7]  # the attributes stay with their images
    male = D.CELEBA_ATTRS.index("Male")
    assert torch.equal(s.attrs[:, male], attrs[kept, D.ATTR_NAMES.index("Male")])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "skipped 2 unreadable images" in err[0]
    assert "000003.jpg" in err[0] and "000005.jpg" in err[0]
    load_split("celeba", celeba, "train", 32, progress=False)  # from the cache: said again
    assert "skipped 2 unreadable images" in capsys.readouterr().err
    for name in ("000001.jpg", "000002.jpg", "000004.jpg", "000006.jpg", "000007.jpg",
                 "000008.jpg"):  # fmt: skip
        (img / name).write_bytes(b"")
    with pytest.raises(DataError, match="none of its 8 images could be read"):
        load_split("celeba", celeba, "train", 64, progress=False)


def test_training_tensors_size_batch_and_condition_checks(celeba, capsys):
    def cfg(batch_size=4, cond_dim=0, **kw):
        model = ModelConfig(image_size=32, width=0.125, cond_dim=cond_dim)
        return TrainConfig(model=model, data="celeba", data_root=str(celeba),
                           batch_size=batch_size, **kw)  # fmt: skip

    images, attrs = D.training_tensors(cfg(dataset_size=0), progress=False)
    assert images.shape == (8, 3, 32, 32) and attrs.shape == (8, 40)
    assert capsys.readouterr().err == ""
    images, _ = D.training_tensors(cfg(dataset_size=5), progress=False)
    assert torch.equal(images, load_split("celeba", celeba, "train", 32).images[:5])
    # a set cut short is said in one line (TrainConfig's default would cut a large folder)
    assert capsys.readouterr().err == (f"warning: {celeba.resolve()} (celeba): training on the "
                                       "first 5 of its 8 training images (dataset_size; 0 takes "
                                       "them all)\n")  # fmt: skip
    with pytest.raises(DataError, match="8 training images, fewer than the batch size 16"):
        D.training_tensors(cfg(batch_size=16), progress=False)
    with pytest.raises(DataError, match="40 attributes per image; the model is conditioned on 17"):
        D.training_tensors(cfg(cond_dim=17), progress=False)


def test_to_unit_range_takes_uint8_only_and_leaves_its_input_alone():
    """A float tensor was scaled in place, as if in [0, 255]: the caller's images changed and a
    torchvision-style [0, 1] image came back in [-1, -0.99]."""
    from vaegan_lite.images import to_uint8, to_unit_range

    x = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    assert to_unit_range(x).flatten().tolist() == pytest.approx([-1, 1 / 255, 1], abs=1e-6)
    assert torch.equal(to_uint8(to_unit_range(x)), x)
    floats = torch.full((1, 3, 2, 2), 0.5)
    with pytest.raises(ValueError, match=r"takes uint8 images in \[0, 255\], got torch.float32"):
        to_unit_range(floats)
    assert (floats == 0.5).all()


def test_save_grid_writes_png_unless_the_suffix_says_otherwise(tmp_path):
    """A name without a suffix was "unknown file extension: .tmp", a suffix nobody gave."""
    from vaegan_lite.images import save_grid

    x = torch.rand(4, 3, 8, 8) * 2 - 1
    for name, fmt in (("grid", "PNG"), ("grid.png", "PNG"), ("grid.jpg", "JPEG")):
        save_grid(x, tmp_path / name, nrow=2)
        with Image.open(tmp_path / name) as img:
            assert img.format == fmt and img.size == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid", "grid.jpg", "grid.png"]


# -----------------------------------------------------------------------------
# a folder of images


def make_folder(root):
    (root / "sub").mkdir(parents=True)
    (root / ".thumbs").mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(root / "a.jpg", quality=95)
    Image.new("L", (32, 32), 77).save(root / "b.png")  # grayscale
    Image.new("RGBA", (32, 32), (0, 0, 0, 0)).save(root / "c.png")  # transparent: over white
    Image.new("P", (20, 20), 3).save(root / "d.gif")  # palette
    wide = np.zeros((32, 64, 3), np.uint8)
    wide[:, :16], wide[:, 16:48, 1], wide[:, 48:, 2] = 255, 255, 255  # white | green | blue
    Image.fromarray(wide).save(root / "sub" / "e.png")  # odd shape: its central square is green
    Image.new("RGB", (8, 8)).save(root / ".thumbs" / "x.png")  # hidden: ignored
    (root / "run" / "figs").mkdir(parents=True)  # a training run put under the data: ignored
    (root / "run" / "last.pt").write_bytes(b"")
    Image.new("RGB", (8, 8)).save(root / "run" / "samples.png")
    Image.new("RGB", (8, 8)).save(root / "run" / "figs" / "f.png")
    (root / "notes.txt").write_text("not an image, not an image extension")


def test_folder_converts_modes_and_shapes(tmp_path):
    make_folder(tmp_path)
    s = load_split("folder", tmp_path, "all", 32, progress=False)
    assert s.images.shape == (5, 3, 32, 32) and s.attrs.shape == (5, 0) and s.attr_names == []
    a, b, c, d, e = s.images.int()
    assert (a[0] > 150).all() and (a[1:] < 60).all()
    assert (b == 77).all()
    assert (c == 255).all()
    assert (d[0] == d[1]).all() and (d[1] == d[2]).all()  # palette entry 3 is a gray
    assert (e[1] > 250).all() and (e[0] < 5).all() and (e[2] < 5).all()
    gray = load_split("folder", tmp_path, "all", 32, channels=1, progress=False)
    assert gray.images.shape == (5, 1, 32, 32) and (gray.images[1] == 77).all()


def test_folder_reads_16_bit_grays_and_turns_photos_upright(tmp_path):
    # PIL's own conversion clips a 16-bit gray above 255 to white, and a camera stores a photo
    # sideways with an EXIF tag saying how to turn it
    gray16 = np.full((32, 32), 77 * 257, np.uint16)
    Image.fromarray(gray16).save(tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode.startswith("I")
    upright = np.zeros((32, 32, 3), np.uint8)
    upright[:16] = 255  # white above, black below
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to view"
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(
        tmp_path / "b.jpg", exif=exif, quality=95
    )
    # a 32-bit gray holding 8-bit values is not a 16-bit one: it is read as it is
    Image.fromarray(np.full((32, 32), 77, np.int32), mode="I").save(tmp_path / "c.tif")
    a, b, c = load_split("folder", tmp_path, "all", 32, progress=False).images.int()
    assert (a == 77).all() and (c == 77).all()
    assert (b[:, :14] > 230).all() and (b[:, 18:] < 25).all()


def test_folder_attribute_csv(tmp_path, capsys):
    make_folder(tmp_path)
    csv = tmp_path / "attributes.csv"
    csv.write_text("filename,Smiling,Blond_Hair\nsub/e.png,1,-1\nb.png,-1,-1\na.jpg, 1, 1\n")
    s = load_split("folder", tmp_path, "all", 32, progress=False)
    assert s.attr_names == ["Smiling", "Blond_Hair"]
    assert s.attrs.tolist() == [[1, 0], [0, 0], [1, 1]]
    assert (s.images[0, 1] > 250).all() and (s.images[1] == 77).all()  # the file's order
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 images under" in err[0] and "not in attributes.csv" in err[0]
    csv.write_text("filename,Smiling\nc.png,0\ne.png,1\n")  # 0/1, a bare name finds sub/e.png
    s = load_split("folder", tmp_path, "all", 32, progress=False)
    assert s.attrs.tolist() == [[0], [1]] and (s.images[0] == 255).all()


FOLDER_BAD = {
    "filename,Smiling\na.jpg,1,1\n": "attributes.csv: line 2 has 2 values, expected 1",
    "filename,Smiling\na.jpg,yes\n": "attributes.csv: line 2: 'yes' is not an integer",
    "filename,Smiling\na.jpg,1\nb.png,99999999999999999999\n":
        "attributes.csv: line 3: '99999999999999999999' is out of range",
    "filename,Smiling\na.jpg,1\nb.png,3\n": "attributes.csv: line 3: 3 is not an attribute",
    "filename,Smiling\na.jpg,-1\nb.png,0\n": "line 3: 0, but the file codes attributes as -1/1",
    "filename,Smiling\nzzz.jpg,1\n": "attributes.csv: line 2: zzz.jpg is not an image under",
    "filename,Smiling\na.jpg,1\na.jpg,1\n": "attributes.csv: line 3: a.jpg is listed twice",
    "filename\na.jpg\n": "attributes.csv: line 1 should be a header",
}


@pytest.mark.parametrize("text", FOLDER_BAD)
def test_bad_attribute_csv(tmp_path, text):
    make_folder(tmp_path)
    (tmp_path / "attributes.csv").write_text(text)
    with pytest.raises(DataError, match=FOLDER_BAD[text].replace("(", r"\(")):
        load_split("folder", tmp_path, "all", 32, progress=False)
    assert caches(tmp_path) == []


def test_empty_folder_and_missing_split_are_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    argv = ["train", "--data", "folder", "--data-root", str(tmp_path / "empty"), "--steps", "1",
            "--out", str(tmp_path / "run"), *TINY]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty: no images (looked for .jpg" in err[0]
    make_folder(tmp_path / "f")
    with pytest.raises(DataError, match="test: no such folder"):
        load_split("folder", tmp_path / "f", "test", 32)
    (tmp_path / "f" / "test").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "f" / "test" / "t.png")
    assert len(load_split("folder", tmp_path / "f", "test", 32, progress=False).images) == 1
    assert len(load_split("folder", tmp_path / "f", "all", 32, progress=False).images) == 6


def test_two_folders_of_same_sized_images_do_not_share_a_cache(tmp_path, monkeypatch):
    """BMPs of one size have one byte size: names and sizes alone keyed both folders alike, and
    with a shared $VAEGAN_CACHE the second loaded the first's images without a word."""
    monkeypatch.setenv("VAEGAN_CACHE", str(tmp_path / "cache"))
    for name, value in (("black", 0), ("white", 255)):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (16, 16), (value,) * 3).save(tmp_path / name / f"{i}.bmp")
    black = load_split("folder", tmp_path / "black", "all", 16, progress=False).images
    white = load_split("folder", tmp_path / "white", "all", 16, progress=False).images
    assert (black == 0).all() and (white == 255).all()
    # an image replaced in place by one of the same size is read anew
    Image.new("RGB", (16, 16), (9, 9, 9)).save(tmp_path / "black" / "0.bmp")
    os.utime(tmp_path / "black" / "0.bmp", ns=(1, 1))  # whatever the clock's resolution
    again = load_split("folder", tmp_path / "black", "all", 16, progress=False).images
    assert (again[0] == 9).all()


def test_a_cache_that_cannot_be_written_and_a_broken_link_are_one_line(tmp_path, monkeypatch,
                                                                       capsys):  # fmt: skip
    make_folder(tmp_path / "f")
    (tmp_path / "f" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("VAEGAN_CACHE", str(tmp_path / "file" / "cache"))
    with pytest.raises(DataError, match=r"^\$VAEGAN_CACHE .*file/cache: .*file is a file, not a"):
        load_split("folder", tmp_path / "f", "all", 32, progress=False)
    monkeypatch.setenv("VAEGAN_CACHE", str(tmp_path / "cache"))
    capsys.readouterr()
    assert len(load_split("folder", tmp_path / "f", "all", 32, progress=False).images) == 5
    assert "skipped 1 broken link(s), first: " in capsys.readouterr().err


def test_an_unreadable_image_is_named_so_that_it_can_be_found_from_any_folder(
    tmp_path, monkeypatch, capsys
):
    """The cache keeps the warning's line: the path in it is absolute, not relative to the folder
    the cache was built from."""
    make_folder(tmp_path / "f")
    (tmp_path / "f" / "bad.png").write_bytes(b"not a png")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    load_split("folder", "f", "all", 32, progress=False)
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    load_split("folder", "../f", "all", 32, progress=False)  # from the cache
    assert f"unreadable image: {tmp_path / 'f' / 'bad.png'} (" in capsys.readouterr().err


def test_a_folder_that_changed_leaves_one_cache_of_each_size(tmp_path, monkeypatch):
    """A cache built before an image was added is never read again: building the new one
    removes it. Another size's cache, and another folder's in a shared cache, stay."""
    make_folder(tmp_path / "f")
    make_folder(tmp_path / "g")
    monkeypatch.chdir(tmp_path)
    load_split("folder", "f", "all", 32, progress=False)  # a relative root: its place is kept
    load_split("folder", tmp_path / "f", "all", 16, progress=False)
    Image.new("RGB", (32, 32)).save(tmp_path / "f" / "new.png")
    assert len(load_split("folder", tmp_path / "f", "all", 32, progress=False).images) == 6
    names = caches(tmp_path / "f")
    assert len(names) == 2 and sorted(n.split("-")[2] for n in names) == ["16px", "32px"]
    monkeypatch.setenv("VAEGAN_CACHE", str(tmp_path / "shared"))
    for root in ("f", "g"):
        load_split("folder", tmp_path / root, "all", 32, progress=False)
    assert len(list((tmp_path / "shared").iterdir())) == 2


def test_a_linked_folder_is_read_once_and_a_link_back_up_does_not_loop(tmp_path):
    """Images in a linked sub-folder are the data set's too; a folder reached twice (two links to
    it, or a link to an ancestor) is read once."""
    make_folder(tmp_path / "elsewhere")
    (tmp_path / "f").mkdir()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(tmp_path / "f" / "own.png")
    (tmp_path / "f" / "linked").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "f" / "again").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "f" / "up").symlink_to(tmp_path / "f")
    assert len(load_split("folder", tmp_path / "f", "all", 32, progress=False).images) == 1 + 5


# -----------------------------------------------------------------------------
# torchvision's formats, on tiny fake files


def test_cifar10_from_fake_files(tmp_path, monkeypatch):
    from torchvision.datasets import cifar

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    planes = {}
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        x = rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
        planes[name] = x
        entry = {"data": x.reshape(2, 3072), "labels": [i % 10, (i + 3) % 10]}
        (folder / name).write_bytes(pickle.dumps(entry))
    names = "airplane automobile bird cat deer dog frog horse ship truck".split()
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    monkeypatch.setattr(cifar, "check_integrity", lambda *a, **k: True)  # md5s of the real set
    s = load_split("cifar10", tmp_path, "train", 32, progress=False)
    assert torch.equal(s.images, torch.from_numpy(np.concatenate(
        [planes[f"data_batch_{k}"] for k in range(1, 6)])))  # fmt: skip
    assert s.attr_names == names and s.attrs.shape == (10, 10)
    assert s.attrs.argmax(1).tolist() == [0, 3, 1, 4, 2, 5, 3, 6, 4, 7]
    t = load_split("cifar10", tmp_path, "test", 64, channels=1, progress=False)
    assert t.images.shape == (2, 1, 64, 64) and t.attrs.argmax(1).tolist() == [5, 8]


def write_idx(path, array, magic):
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_from_fake_idx_files_is_padded_to_32(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    digits = np.full((3, 28, 28), 200, np.uint8)
    write_idx(raw / "train-images-idx3-ubyte", digits, 0x803)
    write_idx(raw / "train-labels-idx1-ubyte", np.array([7, 0, 9]), 0x801)
    write_idx(raw / "t10k-images-idx3-ubyte", digits[:1], 0x803)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.array([5]), 0x801)
    s = load_split("mnist", tmp_path, "train", 32, progress=False)
    assert s.images.shape == (3, 3, 32, 32) and s.attr_names == [str(i) for i in range(10)]
    assert (s.images[:, :, 2:30, 2:30] == 200).all() and s.images[:, :, :2].max() == 0
    assert s.attrs.argmax(1).tolist() == [7, 0, 9]
    one = load_split("mnist", tmp_path, "train", 64, channels=1, progress=False)
    assert one.images.shape == (3, 1, 64, 64)
    assert load_split("mnist", tmp_path, "test", 32, progress=False).attrs.argmax(1).item() == 5
    (raw / "t10k-labels-idx1-ubyte").unlink()
    missing = "t10k-labels-idx1-ubyte: missing; download=True / --download fetches it"
    with pytest.raises(DataError, match=missing):
        load_split("mnist", tmp_path, "train", 32)
    # an idx header naming a type torchvision does not know (byte 2: 0x0a) was a KeyError
    for path in raw.parent.glob("raw/*"):
        path.unlink()
    for file in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):  # fmt: skip
        (raw / file).write_bytes(b"\x00\x00\x0a\x01\x00\x00\x00\x04abcd")
    with pytest.raises(DataError, match=r"MNIST/raw: torchvision could not read mnist \(KeyError"):
        load_split("mnist", tmp_path, "train", 32)


def test_svhn_from_a_fake_mat_file_or_a_clear_need_for_scipy(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, 2), dtype=np.uint8)
    monkeypatch.setattr(tvd.SVHN, "_check_integrity", lambda self: True)  # md5 of the real file
    try:
        import scipy.io
    except ImportError:
        (tmp_path / "train_32x32.mat").write_bytes(b"MATLAB 5.0 MAT-file")
        with pytest.raises(DataError, match="train_32x32.mat: reading it needs scipy"):
            load_split("svhn", tmp_path, "train", 32, progress=False)
        return
    scipy.io.savemat(tmp_path / "train_32x32.mat", {"X": x, "y": np.array([[10], [4]])})
    s = load_split("svhn", tmp_path, "train", 32, progress=False)
    assert torch.equal(s.images, torch.from_numpy(x).permute(3, 2, 0, 1))  # as torchvision's
    assert s.attrs.argmax(1).tolist() == [0, 4]  # the label 10 is the digit 0


def test_download_only_when_asked_and_its_failure_explains_the_routes(
    tmp_path, monkeypatch, capsys, fake_celeba
):
    import torchvision.datasets as tvd

    calls = []

    def quota(self):
        calls.append(self)
        raise RuntimeError("Too many users have viewed or downloaded this file recently.")

    monkeypatch.setattr(tvd.CelebA, "download", quota)
    with pytest.raises(DataError, match="list_attr_celeba.txt: missing"):
        load_split("celeba", tmp_path, "train", 32)
    assert calls == []  # never without --download
    root = tmp_path / "new"
    argv = ["train", "--data", "celeba", "--data-root", str(root), "--download", "--steps", "1",
            "--out", str(tmp_path / "run"), *TINY]  # fmt: skip
    assert main(argv) == 2 and len(calls) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: celeba: ")  # one line
    assert "Too many users" in err and "download jessicali9530/celeba-dataset -p" in err
    assert "list_attr_celeba.txt and list_eval_partition.txt" in err and "unzip" in err
    assert "CelebA.html" in err and "book/running.md" in err  # the manual route and its page
    assert not root.exists() and not (tmp_path / "run").exists()  # no empty folders left
    fake_celeba(root, N)
    assert main(argv) == 0 and len(calls) == 1  # already there: no download tried

    def offline(self):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tvd.CIFAR10, "download", offline)
    with pytest.raises(D.DownloadError, match="cifar-10-python.tar.gz into"):
        load_split("cifar10", tmp_path / "c", "train", 32, download=True)
    assert not (tmp_path / "c").exists()
    with pytest.raises(DataError, match="nothing to download for --data folder"):
        D.download_data("folder", tmp_path)


def offline(monkeypatch):
    """No network, as torchvision meets it: every urlopen fails (and records its timeout)."""
    import socket
    import urllib.error
    import urllib.request

    timeouts = []

    def urlopen(*args, **kwargs):
        timeouts.append(socket.getdefaulttimeout())
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return timeouts


def tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_failed_download_removes_the_folders_it_made_and_only_those(tmp_path, monkeypatch,
                                                                      capsys):  # fmt: skip
    """torchvision makes MNIST/raw/ before it downloads: offline, that left empty folders."""
    import socket

    timeouts = offline(monkeypatch)
    default = socket.getdefaulttimeout()
    root = tmp_path / "new" / "deeper" / "dl"  # its parents are made by the attempt too
    argv = ["train", "--data", "mnist", "--data-root", str(root), "--download", "--steps", "1",
            "--out", str(tmp_path / "run"), *TINY]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: mnist: torchvision's download into")
    assert "Temporary failure in name resolution" in err[0] and "MNIST/raw/" in err[0]
    assert tree(tmp_path) == []  # not new/, nor the run
    assert timeouts and set(timeouts) == {D.DOWNLOAD_TIMEOUT_S}  # a silent network gives up
    assert socket.getdefaulttimeout() == default  # and the default is back
    # What was there stays: the root, its files, a folder torchvision would have made.
    have = tmp_path / "have"
    (have / "MNIST").mkdir(parents=True)
    (have / "MNIST" / "notes.txt").write_text("mine")
    (have / "keep.txt").write_text("mine")
    with pytest.raises(D.DownloadError, match=r"^mnist: .*in .*have/MNIST/raw/$"):
        D.download_data("mnist", have)
    assert tree(have) == ["MNIST", "MNIST/notes.txt", "keep.txt"]
    # A half-downloaded file goes with the folder made for it; a link is never followed, nor a
    # folder that is not the data set's touched.
    import torchvision.datasets as tvd

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (have / "link").symlink_to(elsewhere, target_is_directory=True)

    def half(self):
        os.makedirs(self.raw_folder)
        (Path(self.raw_folder) / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b half")
        (elsewhere / "x").mkdir()
        (have / "theirs").mkdir()  # another process's, made meanwhile
        raise ConnectionResetError("[Errno 104] Connection reset by peer")

    monkeypatch.setattr(tvd.MNIST, "download", half)
    with pytest.raises(D.DownloadError, match="ConnectionResetError: .*Connection reset by peer"):
        D.download_data("mnist", have)
    assert tree(have) == ["MNIST", "MNIST/notes.txt", "keep.txt", "link", "theirs"]
    assert tree(elsewhere) == ["x"]


def test_a_failed_celeba_download_is_one_line_naming_the_manual_route(tmp_path, monkeypatch):
    """It was nine lines; torchvision's own message may span several (folded into one)."""
    import torchvision.datasets as tvd

    def offline(self):
        raise RuntimeError("Failed to download\n  <urlopen error [Errno -3] name resolution>")

    monkeypatch.setattr(tvd.CelebA, "download", offline)
    root = tmp_path / "dc"
    with pytest.raises(D.DownloadError) as e:
        load_split("celeba", root, "train", 32, download=True, progress=False)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"celeba: torchvision's download into {root}")
    assert "(RuntimeError: Failed to download <urlopen error [Errno -3] name resolution>)" in msg
    assert f"kaggle datasets download jessicali9530/celeba-dataset -p {root / 'celeba'}" in msg
    assert "book/running.md" in msg and not root.exists()


def test_atomic_writes_never_tear_or_collide(tmp_path):
    """Writers of one path at once each write their own temporary file, and the path holds one
    of them whole; a writer that fails leaves the old file and no temporary one; temporary files
    left by killed writes go once they are stale, not while a write may be under way."""
    path, errors = tmp_path / "r.json", []

    def write(i: int) -> None:
        try:
            for _ in range(50):
                atomic_write_text(str(i) * 1000, path)
        except Exception as e:  # noqa: BLE001 - any failure is the test's failure
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and path.read_text() in {str(i) * 1000 for i in range(4)}
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() makes it, not 0o600
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert path.read_text() in {str(i) * 1000 for i in range(4)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    old, new = tmp_path / ".r.json.old.tmp.json", tmp_path / ".r.json.new.tmp.json"
    old.write_text("killed"), new.write_text("under way")
    os.utime(old, (time.time() - STALE_S - 1,) * 2)
    atomic_write_text("x", path)
    assert not old.exists() and new.exists() and path.read_text() == "x"


def test_a_chapters_runs_on_one_synthetic_set_draw_it_once():
    """The synthetic set is drawn once per process for the runs that share it (a chapter trains
    several models on it), and drawn anew for another set."""
    from vaegan_lite.config import PRESETS, config_for
    from vaegan_lite.data import training_tensors

    vae, gan = (config_for(PRESETS["smoke"], m) for m in ("vae", "gan"))
    first, again = training_tensors(vae, progress=False), training_tensors(gan, progress=False)
    assert first[0] is again[0] and first[1] is again[1]
    other = training_tensors(config_for(PRESETS["smoke"], "vae", data_seed=1), progress=False)
    assert not torch.equal(other[0], first[0])


def test_a_failed_cache_build_leaves_no_cache_folder_behind(tmp_path, monkeypatch):
    """Nothing half-written: a folder of unreadable images leaves the data folder as it was."""
    monkeypatch.delenv("VAEGAN_CACHE", raising=False)
    root = tmp_path / "mine"
    root.mkdir()
    for i in range(3):
        (root / f"{i}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="none of its 3 images could be read"):
        load_split("folder", root, "train", 32, progress=False)
    assert sorted(p.name for p in root.iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]


def test_celeba_held_out_faces_go_on_into_the_validation_split_and_are_never_short(
    celeba, monkeypatch
):
    """Chapter 6's gpu plan asks for more held-out faces than CelebA's test split holds: the
    validation split (never trained on either) follows it; asking for more is an error, not a
    silently shorter set."""
    from dataclasses import replace

    from vaegan_lite.book.runs import test_images
    from vaegan_lite.config import PRESETS

    monkeypatch.setenv("VAEGAN_DATA", str(celeba))
    preset = replace(PRESETS["gpu"], data="celeba", image_size=32)
    test = load_split("celeba", None, "test", 32)
    valid = load_split("celeba", None, "valid", 32)
    x, y = test_images(preset, 3, offset=1)  # test's second face, then valid's two
    assert x.shape == (3, 3, 32, 32) and y.shape == (3, len(test.attrs[0]))
    want = torch.cat([test.images[1:], valid.images]).float().div(127.5).sub(1)
    assert torch.allclose(x, want) and torch.equal(y, torch.cat([test.attrs[1:], valid.attrs]))
    with pytest.raises(ValueError, match="celeba: 4 held-out faces from face 1 on, but its test "
                                         "and validation splits hold 4"):  # fmt: skip
        test_images(preset, 4, offset=1)


def test_shift_moves_images_sideways_and_repeats_the_border():
    from vaegan_lite.images import shift

    x = torch.arange(12.0).view(1, 1, 2, 6)
    assert torch.equal(shift(x, 0), x)
    assert shift(x, 2)[0, 0, 0].tolist() == [0, 0, 0, 1, 2, 3]
    assert shift(x, -1)[0, 0, 1].tolist() == [7, 8, 9, 10, 11, 11]
    with pytest.raises(ValueError, match="dx=-6 moves a 6-pixel-wide image out of view"):
        shift(x, -6)


def test_three_channels_become_one_by_the_luma_weights_in_rgb_order():
    """RGB => gray weighs red 0.299, green 0.587, blue 0.114 (ITU-R 601, PIL's "L" too): weights in
    BGR order would turn a red face dark and a blue sky light."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (10, 20, 30)]
    images = torch.tensor(colours, dtype=torch.uint8).view(-1, 3, 1, 1)
    gray = D.to_channels(images, 1)
    assert gray.shape == (5, 1, 1, 1) and gray.dtype == torch.uint8
    assert gray.flatten().tolist() == [76, 150, 29, 255, 18]  # 76.2, 149.7, 29.1, 255, 18.15
    pil = [Image.new("RGB", (1, 1), c).convert("L").getpixel((0, 0)) for c in colours]
    assert gray.flatten().tolist() == pil


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_celeba_partitions_are_0_1_or_2_and_nothing_else(tmp_path, suffix):
    """Partition 3 (one past the test split) was read as a split of its own that no split
    loads: its images vanished without a word."""
    sep, header = (",", ["image_id,partition"]) if suffix == ".csv" else (" ", [])

    def write(parts):
        path = tmp_path / f"list_eval_partition{suffix}"
        rows = header + [f"{i:06d}.jpg{sep}{p}" for i, p in enumerate(parts, 1)]
        path.write_text("\n".join(rows) + "\n")
        return path

    read = D._read_celeba_partition(write([0, 1, 2, 0]))
    assert read == {"000001.jpg": 0, "000002.jpg": 1, "000003.jpg": 2, "000004.jpg": 0}
    line = 3 + (suffix == ".csv")  # the csv's header is line 1
    for bad in (3, -1):
        with pytest.raises(DataError, match=rf"line {line}: partition {bad} is not 0 \(train\)"):
            D._read_celeba_partition(write([0, 1, bad, 2]))


def test_to_uint8_inverts_to_unit_range_for_every_value():
    """``to_uint8`` rounds to nearest: it inverts to_unit_range exactly."""
    from vaegan_lite.images import to_uint8, to_unit_range
    every = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert torch.equal(to_uint8(to_unit_range(every)), every)
    near = to_uint8(torch.tensor([0.999, -0.999]))
    assert torch.equal(near, torch.tensor([255, 0], dtype=torch.uint8))


def test_grid_pads_with_white():
    """A grid's padding is white (1.0), as the run folders' samples.png show it."""
    from vaegan_lite.images import grid
    g = grid(torch.full((2, 3, 4, 4), -1.0), nrow=2, padding=2)
    assert g.shape == (3, 8, 14)
    assert g[:, :2, :].eq(1).all() and g[:, :, :2].eq(1).all()  # border
    assert g[:, 2:6, 2:6].eq(0).all()  # the black images


def test_atomic_path_fsyncs_before_it_renames(tmp_path, monkeypatch):
    """``atomic_path`` flushes the new file to disk before the rename publishes it."""
    import os

    import vaegan_lite.files as F
    events = []
    real_fsync, real_replace = F.fsync, os.replace
    monkeypatch.setattr(F, "fsync", lambda p: (events.append(("fsync", str(p))), real_fsync(p)))
    monkeypatch.setattr(F.os, "replace",
                        lambda a, b: (events.append(("replace", str(a))), real_replace(a, b)))
    F.atomic_write_text("hello", tmp_path / "a.txt")
    assert [e[0] for e in events] == ["fsync", "replace"] and events[0][1] == events[1][1]
    assert (tmp_path / "a.txt").read_text() == "hello"


def test_atomic_paths_renames_the_first_named_last(tmp_path, monkeypatch):
    """``atomic_paths`` renames the first-named file (the record naming the others) last."""
    import os

    import vaegan_lite.files as F
    renamed, real = [], os.replace
    monkeypatch.setattr(F.os, "replace",
                        lambda a, b: (renamed.append(os.path.basename(b)), real(a, b)))
    with F.atomic_paths(tmp_path / "index.json", tmp_path / "a.bin", tmp_path / "b.bin") as paths:
        for p in paths:
            p.write_text("x")
    assert renamed[-1] == "index.json" and sorted(renamed) == ["a.bin", "b.bin", "index.json"]


def test_a_cache_meta_with_a_bool_count_is_refused(tmp_path):
    """A cache's meta.json with a bool for its count is damaged."""
    import json

    from vaegan_lite.data.cache import _read_meta
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"n": True, "attr_names": [], "skipped": []}))
    with pytest.raises(ValueError, match="'n' missing or not a count"):
        _read_meta(path)


def test_a_process_of_another_user_counts_as_running(monkeypatch):
    """os.kill(pid, 0) refusing with EPERM means the process exists (another user's): its cache
    build or smoke folder must not be taken for a dead one's leftovers and removed."""
    from vaegan_lite import files

    def kill(pid, sig, error=PermissionError):
        raise error(1, "Operation not permitted")

    monkeypatch.setattr(files.os, "kill", kill)
    assert files.process_alive(12345)
    monkeypatch.setattr(files.os, "kill", lambda pid, sig: kill(pid, sig, ProcessLookupError))
    assert not files.process_alive(12345)


def test_the_skipped_images_warning_names_three_and_counts_the_rest(capsys):
    """One line: how many were skipped, the first three by name, and how many more."""
    from vaegan_lite.data.cache import warn_skipped

    warn_skipped(["a.jpg (x)", "b.jpg (x)", "c.jpg (x)", "d.jpg (x)", "e.jpg (x)"])
    assert capsys.readouterr().err == ("warning: skipped 5 unreadable images: a.jpg (x); "
                                       "b.jpg (x); c.jpg (x); and 2 more\n")  # fmt: skip
    warn_skipped(["a.jpg (x)"])
    assert capsys.readouterr().err == "warning: skipped 1 unreadable image: a.jpg (x)\n"


def test_celeba_crops_are_blurred_with_the_authors_sigma_before_resizing():
    """The authors' preprocessing: a Gaussian blur of sigma = sqrt(148 / size) / 2 (torchvision's
    gaussian_blur here, away from the borders), then bicubic to size x size."""
    from torchvision.transforms.functional import gaussian_blur

    g = torch.Generator().manual_seed(0)
    crops = torch.randint(0, 256, (2, 148, 148, 3), dtype=torch.uint8, generator=g)
    size = 64
    sigma = (148 / size) ** 0.5 / 2
    r = int(4 * sigma + 0.5)
    blurred = gaussian_blur(crops.permute(0, 3, 1, 2).float(), [2 * r + 1] * 2, [sigma] * 2)
    want = F.interpolate(blurred, size=(size, size), mode="bicubic", align_corners=False)
    want = want.round().clamp(0, 255)
    got = D._celeba_resize(crops.numpy(), size).float()
    assert got.shape == (2, 3, size, size)
    assert (got - want)[..., 4:-4, 4:-4].abs().max() <= 1  # the borders are padded otherwise


def test_a_download_puts_the_socket_timeout_back(tmp_path, monkeypatch):
    """The download's timeout is for torchvision's requests only: afterwards, failed or not, the
    process's default socket timeout is what it was (a later request is not cut at 60 s)."""
    import socket

    import torchvision.datasets as tvd

    seen = []

    def offline(self):
        seen.append(socket.getdefaulttimeout())
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tvd.CIFAR10, "download", offline)
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(12.5)
    try:
        with pytest.raises(D.DownloadError):
            D.download_data("cifar10", tmp_path / "c")
        assert seen == [D.DOWNLOAD_TIMEOUT_S] and socket.getdefaulttimeout() == 12.5
    finally:
        socket.setdefaulttimeout(before)
