import json

import numpy as np
import pytest
import torch

from squeezenas.cost.counting import count_costs
from squeezenas.models import CheckpointError, get_model, get_model_entry, list_models, load_weights
from squeezenas.models.zoo import _published

SQUEEZENAS = [n for n in list_models() if n.startswith("squeezenas_")]
RELEASED = {"squeezenas_lat_small": "lat_small.pth", "squeezenas_mac_small": "mac_small.pth",
            "squeezenas_mac_large": "mac_large.pth"}


def test_zoo_lists_six_networks_and_baseline():
    assert len(SQUEEZENAS) == 6
    assert "mobilenetv3_large_lraspp" in list_models()
    with pytest.raises(KeyError, match="did you mean 'squeezenas_lat_small'"):
        get_model("squeezenas_lat_smal")


def test_packaged_genotypes_equal_spec(shared_dir):
    spec = json.loads((shared_dir / "spec" / "published_nets.json").read_text())
    assert _published() == spec


@pytest.mark.parametrize("name", SQUEEZENAS)
def test_macs_match_published(name):
    entry = get_model_entry(name)
    report = count_costs(get_model(name), (1024, 2048))
    assert abs(report.gmacs / entry.published_gmacs - 1) < 0.005, (report.gmacs, entry.published_gmacs)


@pytest.mark.parametrize("name,file", RELEASED.items())
def test_released_weights_load_strictly(name, file, released_dir):
    model = get_model(name)
    load_weights(model, released_dir / file)
    raw = torch.load(released_dir / file, weights_only=True)
    ours = model.state_dict()
    assert len(raw) == len(ours)
    # every released tensor lands, unchanged, in the place its name says
    assert torch.equal(raw["encoder.conv1.0.weight"], ours["encoder.stem.0.weight"])
    assert torch.equal(raw["decoder._1x1_BR.bias"], ours["decoder.low_classifier.bias"])
    assert sorted(v.sum().item() for v in raw.values()) == sorted(v.sum().item() for v in ours.values())


def test_released_weights_into_wrong_network_fail(released_dir):
    with pytest.raises(CheckpointError, match="encoder.blocks"):
        get_model("squeezenas_mac_small", weights=released_dir / "lat_small.pth")
    with pytest.raises(CheckpointError, match=r"decoder\.\w+_classifier\.weight.*shape"):
        get_model("squeezenas_lat_small", weights=released_dir / "lat_small.pth", num_classes=11)


def test_bad_checkpoints(tmp_path):
    model = get_model("squeezenas_lat_small")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt.pth"):
        load_weights(model, corrupt)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_weights(model, tmp_path / "missing.pth")
    sd = model.state_dict()
    sd.pop("decoder.gate.bias")
    torch.save(sd, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="'decoder.gate.bias' is missing"):
        load_weights(model, tmp_path / "partial.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="weights-only"):
        load_weights(model, tmp_path / "evil.pt")


def test_own_checkpoint_and_safetensors_round_trip(tmp_path):
    from safetensors.torch import save_file

    a = get_model("squeezenas_mac_small", num_classes=5)
    torch.save({"model": a.state_dict(), "epoch": 3}, tmp_path / "ck.pt")
    save_file({k: v.contiguous() for k, v in a.state_dict().items()}, str(tmp_path / "w.safetensors"))
    for f in ("ck.pt", "w.safetensors"):
        b = get_model("squeezenas_mac_small", num_classes=5, weights=tmp_path / f)
        assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


CAMVID_TO_CITYSCAPES = {0: 10, 1: 2, 3: 0, 4: 1, 5: 8, 8: 13, 9: 11}  # sky, building, road, pavement, tree, car, person


@pytest.mark.parametrize("name,file", RELEASED.items())
def test_released_networks_segment_a_real_street(name, file, released_dir, camvid_root):
    """The released Cityscapes networks, on CamVid val images, agree with the CamVid labels mapped to Cityscapes."""
    from PIL import Image

    from squeezenas.engine.predict import predict_labels

    model = get_model(name, weights=released_dir / file)
    lines = (camvid_root / "val.txt").read_text().split()[:4]
    for img_rel, lbl_rel in zip(lines[::2], lines[1::2]):
        image = Image.open(camvid_root / img_rel).convert("RGB")
        gt = np.array(Image.open(camvid_root / lbl_rel))
        pred = np.array(Image.fromarray(predict_labels(model, image, (512, 1024))).resize(gt.shape[::-1], Image.NEAREST))
        keep = np.isin(gt, list(CAMVID_TO_CITYSCAPES))
        mapped = np.vectorize(CAMVID_TO_CITYSCAPES.get)(gt[keep])
        assert (pred[keep] == mapped).mean() > 0.85


def test_mobilenetv3_lraspp_baselines():
    """The Large baseline is torchvision's lraspp_mobilenet_v3_large; the Small one is the same construction on
    MobileNetV3-Small (a third of the MACs)."""
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large


    large = get_model("mobilenetv3_large_lraspp", num_classes=11)
    ref = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=11)
    assert {k: v.shape for k, v in large.net.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    small = get_model("mobilenetv3_small_lraspp", num_classes=11)
    assert small(torch.randn(1, 3, 64, 96)).shape == (1, 11, 64, 96)
    assert 0.25 < count_costs(small, (360, 480)).gmacs / count_costs(large, (360, 480)).gmacs < 0.4
