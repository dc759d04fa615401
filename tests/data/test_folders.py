"""Folders of image files as data (keras_gon/data/folders.py and `load_image_folder`),
on real CIFAR-10, CelebA and COIL-20 files from ../shared/data."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_gon.data import load_dataset, pipelines
from keras_gon.data.folders import scan_image_folder
from keras_gon.data.pipelines import load_image_folder
from keras_gon.errors import InputError


def _decoded(path) -> np.ndarray:
    return tf.io.decode_image(tf.io.read_file(str(path)), expand_animations=False).numpy()


def _all_batches(ds):
    return [tuple(np.asarray(t) for t in b) if isinstance(b, tuple) else np.asarray(b) for b in ds]


def test_class_subfolders_under_train_and_test(cifar10_folder):
    folder = scan_image_folder(cifar10_folder)
    assert folder.class_names == ("airplane", "automobile", "bird")
    assert (len(folder.train_files), len(folder.test_files)) == (300, 90)
    assert folder.channels == 3
    assert "train/ and test/" in folder.split
    for files, labels in (
        (folder.train_files, folder.train_labels),
        (folder.test_files, folder.test_labels),
    ):
        names = [folder.class_names[y] for y in labels]
        assert names == [f.split("/")[-2] for f in files]  # each label is its folder's
    assert "300 training and 90 held-out images of 3 classes" in folder.summary()


def test_load_image_folder_gives_the_files_pixels_and_labels(cifar10_folder):
    train, test, info = load_image_folder(
        cifar10_folder, image_size=32, batch_size=32, seed=0, with_labels=True, verbose=False
    )
    assert info.image_shape == (32, 32, 3)
    assert (info.num_train, info.num_test, info.class_names) == (
        300,
        90,
        ("airplane", "automobile", "bird"),
    )
    batches = _all_batches(train)
    assert len(batches) == 300 // 32  # full batches only
    images, labels = batches[0]
    assert images.shape == (32, 32, 32, 3) and images.dtype == np.float32
    assert labels.dtype == np.int32 and set(np.unique(labels)) <= {0, 1, 2}
    test_images, test_labels = _all_batches(test)[0]  # not shuffled: the files in order
    expected = _decoded(cifar10_folder / "test" / "airplane" / "0000.jpg") / np.float32(255)
    np.testing.assert_allclose(test_images[0], expected, atol=1e-6)
    assert test_labels[0] == 0 and test_labels[-1] == 1  # 30 airplanes, then automobiles


def test_load_dataset_takes_an_image_folder(cifar10_folder):
    train, test, info = load_dataset(str(cifar10_folder), image_size=16, batch_size=50)
    assert info.image_shape == (16, 16, 3) and info.num_train == 300
    assert next(iter(train)).shape == (50, 16, 16, 3)


def test_flat_folder_holds_out_a_fixed_fraction(celeba_folder):
    first = scan_image_folder(celeba_folder, validation_split=0.1, split_seed=0)
    again = scan_image_folder(celeba_folder, validation_split=0.1, split_seed=0)
    other = scan_image_folder(celeba_folder, validation_split=0.1, split_seed=1)
    assert (len(first.train_files), len(first.test_files)) == (288, 32)
    assert first.test_files == again.test_files and first.test_files != other.test_files
    assert not set(first.train_files) & set(first.test_files)
    assert first.class_names == () and first.train_labels is None
    assert "seed 0" in first.split and "0.1" in first.split
    with pytest.raises(InputError, match="flat folder: labels need"):
        load_image_folder(celeba_folder, with_labels=True, verbose=False)


def test_non_square_images_are_centre_cropped_and_resized(celeba_folder):
    _, test, info = load_image_folder(celeba_folder, image_size=64, batch_size=32, verbose=False)
    assert info.image_shape == (64, 64, 3)
    image = _all_batches(test)[0][0]
    folder = scan_image_folder(celeba_folder)
    face = _decoded(folder.test_files[0]).astype("float32") / 255  # 109 x 89
    top = (109 - 89) // 2
    expected = tf.image.resize(face[top : top + 89], (64, 64), antialias=True).numpy()
    np.testing.assert_allclose(image, np.clip(expected, 0, 1), atol=1e-5)


def test_grey_folder_at_128_skips_its_non_image_file(coil20_folder):
    train, test, info = load_image_folder(
        coil20_folder, image_size=128, batch_size=64, verbose=False
    )
    assert info.image_shape == (128, 128, 1)
    assert info.num_train + info.num_test == 288
    assert info.skipped == ("Icon\r",)
    assert "skipped 1 file not an image ('Icon\\r')" in info.summary
    assert next(iter(train)).shape == (64, 128, 128, 1)


def test_corrupt_and_non_image_files_are_skipped_and_named(tmp_path, cifar10_folder):
    folder = tmp_path / "mixed"
    folder.mkdir()
    originals = sorted((cifar10_folder / "train" / "bird").glob("*.jpg"))[:40]
    for path in originals:
        shutil.copy(path, folder / path.name)
    (folder / "truncated.jpg").write_bytes(originals[0].read_bytes()[:300])
    (folder / "random.png").write_bytes(np.random.default_rng(0).bytes(500))
    (folder / "notes.txt").write_text("not an image")
    found = scan_image_folder(folder)
    assert sorted(found.corrupt) == ["random.png", "truncated.jpg"]
    assert found.not_images == ("notes.txt",)
    assert len(found.train_files) + len(found.test_files) == 40
    train, test, info = load_image_folder(folder, batch_size=8, verbose=False)
    assert sorted(info.skipped) == ["notes.txt", "random.png", "truncated.jpg"]
    assert sum(len(b) for b in _all_batches(test)) == info.num_test  # nothing fails later
    assert "2 files unreadable" in info.summary


def test_every_format_and_channel_conversion(tmp_path, cifar10_folder):
    rgb = _decoded(cifar10_folder / "train" / "bird" / "0000.jpg")
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    folder = tmp_path / "formats"
    folder.mkdir()
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(rgb).save(folder / "b.bmp")
    Image.fromarray(rgb).save(folder / "c.GIF")
    Image.fromarray(rgb).save(folder / "d.jpeg")
    Image.fromarray(grey).save(folder / "e.png")
    Image.fromarray(rgb).convert("RGBA").save(folder / "f.png")
    found = scan_image_folder(folder, validation_split=0.2)
    assert found.corrupt == () and len(found.train_files) + len(found.test_files) == 6
    assert found.channels == 3  # colour, since some images have it
    for channels in (1, 3):
        train, _, info = load_image_folder(
            folder,
            channels=channels,
            batch_size=4,
            shuffle_train=False,
            validation_split=0.2,
            verbose=False,
        )
        assert info.image_shape == (32, 32, channels)
        assert next(iter(train)).shape == (4, 32, 32, channels)
        converted = "its colour images read as grey (1 channel, as asked)"
        assert (converted in info.summary) == (channels == 1)  # said, not silent
    grey_only = tmp_path / "grey"
    grey_only.mkdir()
    for index in range(4):
        Image.fromarray(grey).save(grey_only / f"{index}.png")
    assert scan_image_folder(grey_only).channels == 1
    _, test, info = load_image_folder(grey_only, channels=3, batch_size=2, verbose=False)
    assert info.summary.endswith("its grey images read as colour (3 channels, as asked)")
    image = _all_batches(test)[0][0]
    np.testing.assert_allclose(image[..., 0], grey / np.float32(255), atol=1e-6)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])  # grey repeated


def _holds_cache(ds) -> bool:
    graph = tf.raw_ops.DatasetToGraphV2(input_dataset=ds._variant_tensor).numpy()
    return b"CacheDataset" in graph


def test_large_folders_stream_from_disk(cifar10_folder, monkeypatch):
    cached = load_image_folder(cifar10_folder, batch_size=30, shuffle_train=False, verbose=False)
    monkeypatch.setattr(pipelines, "FOLDER_CACHE_BYTES", 1000)  # too small to hold them
    streamed = load_image_folder(cifar10_folder, batch_size=30, shuffle_train=False, verbose=False)
    assert _holds_cache(cached[0]) and not _holds_cache(streamed[0])
    for a, b in zip(_all_batches(cached[1]), _all_batches(streamed[1])):
        np.testing.assert_array_equal(a, b)
    shuffled = load_image_folder(cifar10_folder, batch_size=30, seed=3, verbose=False, cache=False)
    epoch_1, epoch_2 = _all_batches(shuffled[0]), _all_batches(shuffled[0])
    assert len(epoch_1) == 10 and not np.array_equal(epoch_1[0], epoch_2[0])  # reshuffled


@pytest.mark.parametrize(
    "layout, message",
    [
        ("empty", r"no images \(png, jpg, jpeg, bmp, gif\) in .*readme.txt"),
        ("mixed", "both images and class subfolders"),
        ("unknown_test_class", "class folders the training folder has not: cat"),
        ("missing", "no such file or directory"),
        ("test_only", "has a test/ folder but no train/ beside it"),
        ("train_beside_classes", r"has a train/ folder beside other folders of images \(cats\)"),
        ("one_class", r"has 1 class folder \(bird\): labels need at least 2"),
    ],
)
def test_bad_folders_are_refused_by_name(tmp_path, cifar10_folder, layout, message):
    root = tmp_path / layout
    source = sorted((cifar10_folder / "train" / "bird").glob("*.jpg"))[:4]
    if layout != "missing":
        root.mkdir()
    if layout == "empty":
        (root / "readme.txt").write_text("nothing here")
    if layout == "mixed":
        (root / "birds").mkdir()
        for path in source:
            shutil.copy(path, root / "birds" / path.name)
        shutil.copy(source[0], root / "loose.jpg")
    if layout == "unknown_test_class":
        for split, name in (("train", "bird"), ("test", "cat")):
            (root / split / name).mkdir(parents=True)
            for path in source:
                shutil.copy(path, root / split / name / path.name)
    for split, name in {"test_only": [("test", "bird")], "one_class": [("bird", "")]}.get(
        layout, [("train", "bird"), ("cats", "")] if layout == "train_beside_classes" else []
    ):
        (root / split / name).mkdir(parents=True)
        for path in source:
            shutil.copy(path, root / split / name / path.name)
    with pytest.raises(InputError, match=message):
        load_image_folder(root, batch_size=2, verbose=False, with_labels=layout == "one_class")


def test_a_train_folder_alone_is_split_not_read_as_a_class(tmp_path, cifar10_folder):
    """`pets/train/{airplane,bird}` without `test/`: the classes are airplane and bird, and
    a fraction of each is held out (not one class called "train"); an empty `val/` beside
    class folders is ignored, images loose beside `train/` are refused."""
    for name in ("bird", "airplane"):
        shutil.copytree(cifar10_folder / "train" / name, tmp_path / "pets" / "train" / name)
    folder = scan_image_folder(tmp_path / "pets", labels=True)
    assert folder.class_names == ("airplane", "bird")
    assert (len(folder.train_files), len(folder.test_files)) == (180, 20)
    assert "a fraction 0.1 of each class of train/ held out" in folder.split
    assert "of 2 classes" in folder.summary()
    (tmp_path / "pets" / "train" / "val").mkdir()  # empty, beside the class folders
    assert scan_image_folder(tmp_path / "pets" / "train").class_names == ("airplane", "bird")
    shutil.copy(folder.train_files[0], tmp_path / "pets" / "loose.jpg")
    with pytest.raises(InputError, match=r"holds images beside its train/ folder \(loose.jpg\)"):
        scan_image_folder(tmp_path / "pets")


def test_too_few_images_for_a_batch(cifar10_folder):
    with pytest.raises(InputError, match="300 training images, fewer than one batch"):
        load_image_folder(cifar10_folder, batch_size=301, verbose=False)
