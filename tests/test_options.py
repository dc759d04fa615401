"""keras_gon.options: the model options, listed once and read by the registry, the CLI and
the decoder."""

from __future__ import annotations

import inspect

import keras_gon
from keras_gon import options
from keras_gon.cli import build_parser
from keras_gon.layers import ConvDecoder
from keras_gon.registry import MODEL_KINDS


def _arguments(cls) -> set[str]:
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= set(inspect.signature(klass.__init__).parameters)
    return names


def test_every_option_is_an_argument_of_the_kinds_that_take_it():
    for kind in MODEL_KINDS.values():
        cls = getattr(keras_gon, kind.class_name)
        constructor = _arguments(cls) | set(options.DECODER_OPTIONS) | {"name", "dtype"}
        missing = [name for name in kind.options if name not in constructor]
        assert not missing, (kind.name, missing)


def test_the_decoder_options_are_the_decoders_arguments():
    assert set(options.DECODER_OPTIONS) <= set(inspect.signature(ConvDecoder).parameters)
    assert keras_gon.layers.conv_decoder.DECODER_OPTIONS is options.DECODER_OPTIONS
    assert keras_gon.losses.LIKELIHOODS is options.LIKELIHOODS
    assert keras_gon.layers.NORMALIZATIONS is options.NORMALIZATIONS


def test_the_command_line_flags_come_from_the_list():
    from keras_gon.cli.train import MODEL_FLAGS

    assert [name for _, name, _, _ in MODEL_FLAGS] == [o.name for o in options.OPTIONS if o.flags]
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {flag for action in train._actions for flag in action.option_strings}
    for option in options.command_line_options():
        assert set(option.flags) <= flags, option.name
        assert option.help, option.name
