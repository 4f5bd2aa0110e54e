"""The decoder profile is a dataset fact: ``DatasetInfo.decode_profile``, written by ``prepare`` into
the HDF5 attribute ``decode_profile`` and read back (with one fallback for older files) by training,
validation, export and predict."""

from __future__ import annotations

import h5py
import pytest

from lanekd.data.formats.info import DATASETS, decode_profile_name
from lanekd.data.h5 import data_attrs_from_h5, describe_h5
from lanekd.decode import PROFILES
from tests.engine_data import tiny_samples


@pytest.fixture(scope="module")
def llamas_h5(tmp_path_factory):
    from lanekd.data import prepare_dataset

    path = tmp_path_factory.mktemp("prof") / "llamas.h5"
    prepare_dataset("llamas", path, split="valid", size=(64, 192), samples=tiny_samples(2, size=(717, 1276)),
                    quiet=True)
    return path


def test_every_dataset_names_a_known_profile():
    for name, info in DATASETS.items():
        assert info.decode_profile in PROFILES, name
    assert DATASETS["tusimple"].decode_profile == "tusimple" and DATASETS["llamas"].decode_profile == "llamas"


def test_prepare_writes_the_profile_and_training_reads_it(llamas_h5):
    with h5py.File(llamas_h5, "r") as f:
        assert f.attrs["decode_profile"] == "llamas"
    assert describe_h5(llamas_h5)["decode_profile"] == "llamas"
    attrs = data_attrs_from_h5(llamas_h5)  # what checkpoints carry as data_attrs
    assert attrs["profile"] == "llamas" and "decode_profile" not in attrs


def test_a_file_without_the_attribute_falls_back_to_its_dataset(llamas_h5, tmp_path):
    old = tmp_path / "old.h5"
    old.write_bytes(llamas_h5.read_bytes())
    with h5py.File(old, "a") as f:
        del f.attrs["decode_profile"]
    assert data_attrs_from_h5(old)["profile"] == "llamas"


def test_the_one_fallback():
    assert decode_profile_name({"decode_profile": "culane-crop", "dataset": "culane"}) == "culane-crop"
    assert decode_profile_name({"profile": "tusimple"}) == "tusimple"  # an older checkpoint's data_attrs
    assert decode_profile_name({"dataset": "tusimple"}) == "tusimple"
    assert decode_profile_name({"dataset": "bdd100k"}) == "culane"
    assert decode_profile_name({"dataset": "not-a-dataset"}) == "culane"
    assert decode_profile_name({}) == "culane"
