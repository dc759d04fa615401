"""Data loading for keras-gon.

- `load_dataset(source, ...)` -> `(train_ds, test_ds, DataInfo)`: batched
  `tf.data` pipelines of float32 NHWC images in [0, 1], square and resized,
  from `"mnist5k"` (offline), a `.npz` file, a directory of IDX files, a folder of
  image files, numpy arrays or a TFDS name.
- `make_dataset(x, ...)`: the same pipeline from in-memory arrays.
- `load_image_folder(directory, ...)`: the pipelines of a folder of PNG, JPEG, BMP or
  GIF files (flat, or a subfolder per class), streamed from disk;
  `scan_image_folder` says what a folder holds.
- `check_images`, `check_labels`: validation (and scaling) of arrays.
- `preprocess_images`, `check_image_values`: the one preprocessing of images and the
  one check of their values, in the graph (models and exported signatures use them).
- `read_idx`, `load_idx_directory`: the IDX format of MNIST-like datasets.
- `load_npz`, `load_mnist5k`, `load_tfds`: raw (unscaled) sources.

Every bad input raises `keras_gon.errors.InputError` with a one-line message.
"""

from keras_gon.data.arrays import check_images, check_labels
from keras_gon.data.folders import ImageFolder, scan_image_folder
from keras_gon.data.idx import load_idx_directory, read_idx
from keras_gon.data.pairs import mask_half, masked_pairs, with_example_indices
from keras_gon.data.pipelines import (
    MNIST5K,
    DataInfo,
    load_dataset,
    load_image_folder,
    make_dataset,
)
from keras_gon.data.preprocessing import check_image_values, preprocess_images
from keras_gon.data.sources import TfdsData, load_mnist5k, load_npz, load_tfds

__all__ = [
    "MNIST5K",
    "DataInfo",
    "ImageFolder",
    "TfdsData",
    "check_image_values",
    "check_images",
    "check_labels",
    "load_dataset",
    "load_idx_directory",
    "load_image_folder",
    "load_mnist5k",
    "load_npz",
    "load_tfds",
    "make_dataset",
    "mask_half",
    "masked_pairs",
    "preprocess_images",
    "read_idx",
    "scan_image_folder",
    "with_example_indices",
]
