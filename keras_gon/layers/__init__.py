"""Reusable layers of keras-gon."""

from keras_gon.layers.batch_normalization import (
    INFERENCE_STATISTICS,
    BatchNormalization,
    inference_statistics,
)
from keras_gon.layers.conv_decoder import NORMALIZATIONS, ConvDecoder
from keras_gon.layers.conv_encoder import ConvEncoder
from keras_gon.layers.dense import pytorch_dense
from keras_gon.layers.group_normalization import GroupNormalization
from keras_gon.layers.linear_encoder import LinearEncoder
from keras_gon.layers.reparameterization import Reparameterization
from keras_gon.layers.sine_dense import SineDense

__all__ = [
    "BatchNormalization",
    "ConvDecoder",
    "ConvEncoder",
    "GroupNormalization",
    "INFERENCE_STATISTICS",
    "LinearEncoder",
    "NORMALIZATIONS",
    "Reparameterization",
    "SineDense",
    "inference_statistics",
    "pytorch_dense",
]
