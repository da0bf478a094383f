"""The noise protocol's kinds of noise (`--noise`) and modes (`--noise-mode`): each keeps what
it should (amplitude spectrum, mean, share of pixels) at its signal-to-noise ratio."""
import json

import numpy as np
import pytest
import torch

from dynvision_dsl.cli import main
from dynvision_dsl.science import experiment as E
from dynvision_dsl.science.experiment.stimulus import generator, noisy

IMG = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(1))


def draw(kind, snr=1.0, frames=4, static=False, seed=0):
    return noisy(kind, IMG, snr, frames, generator(seed, 0), static)


@pytest.mark.parametrize("kind", E.NOISES)
def test_static_noise_is_the_same_at_every_step_and_dynamic_is_not(kind):
    static, dynamic = draw(kind, static=True), draw(kind)
    assert static.shape == dynamic.shape == (4,) + tuple(IMG.shape)
    assert all(torch.equal(static[0], f) for f in static)
    assert not torch.equal(dynamic[0], dynamic[1])
    assert torch.equal(draw(kind), dynamic)  # seeded by (seed, image) only
    assert not torch.equal(draw(kind, seed=1), dynamic)


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "gaussiancorr"])
def test_additive_noise_has_sigma_std_image_over_snr(kind):
    frames = draw(kind, snr=2.0, frames=64)
    noise = frames - IMG
    assert noise.std().item() == pytest.approx(IMG.std(correction=0).item() / 2, rel=0.05)
    assert abs(noise.mean().item()) < 0.01


def test_uniform_noise_is_bounded_and_gaussiancorr_is_smooth():
    sigma = IMG.std(correction=0).item()
    assert (draw("uniform") - IMG).abs().max() <= sigma * 3 ** 0.5 + 1e-6
    white, smooth = draw("gaussian", frames=32) - IMG, draw("gaussiancorr", frames=32) - IMG

    def neighbour_corr(z):
        a, b = z[..., :, :-1].flatten(), z[..., :, 1:].flatten()
        return float(np.corrcoef(a, b)[0, 1])
    assert abs(neighbour_corr(white)) < 0.1 and neighbour_corr(smooth) > 0.7


def test_poisson_noise_counts_photons_around_the_image():
    frames = draw("poisson", snr=2.0, frames=400)
    mean, std = IMG.mean().item(), IMG.std(correction=0).item()
    lam = mean * 4 / std ** 2
    counts = frames * lam
    assert torch.allclose(counts, counts.round(), atol=1e-3) and frames.min() >= 0
    assert torch.allclose(frames.mean(0), IMG, atol=0.1)
    assert draw("poisson", snr=8.0, frames=200).sub(IMG).std() < frames.sub(IMG).std()  # more signal, less noise


def test_salt_and_pepper_sets_a_share_of_pixels_to_black_or_white():
    frames = draw("saltpepper", snr=1.0, frames=200)
    hit = (frames != IMG).any(1)  # all channels of a pixel alike
    assert hit.float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert set(torch.unique(frames.permute(1, 0, 2, 3)[:, hit]).tolist()) <= {0.0, 1.0}
    assert draw("saltpepper", snr=4.0, frames=200).ne(IMG).any(1).float().mean().item() == pytest.approx(0.2, abs=0.03)


def test_phase_scrambling_keeps_the_amplitude_spectrum():
    amp = torch.fft.fft2(IMG.double()).abs()
    for snr in (0.5, 1.0, 4.0):  # fully scrambled at SNR <= 1, a quarter of the way at 4
        frames = draw("phasescrambled", snr=snr)
        assert torch.allclose(torch.fft.fft2(frames.double()).abs(), amp.expand_as(frames), atol=1e-4)
        assert not torch.allclose(frames, IMG.expand_as(frames), atol=0.05)
    partly = draw("phasescrambled", snr=4.0)
    assert (partly - IMG).abs().mean() < (draw("phasescrambled", snr=1.0) - IMG).abs().mean()


def test_gaussian_dynamic_noise_keeps_its_draws():
    """The default noise is the one the results in docs/results were made with: N(0, 1) per
    step from the generator of (seed, image), scaled by std(image) / SNR."""
    z = torch.randn((4,) + tuple(IMG.shape), generator=generator(0, 0))
    assert torch.equal(draw("gaussian", snr=2.0), IMG + IMG.std(correction=0).item() / 2 * z)


def test_the_noise_protocol_reads_kind_and_mode(tmp_path):
    from test_protocols import LEAKY, conv1

    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1])
    runs = {(k, m): E.run_protocol("noise", {"a": conv1(LEAKY)}, x, labels=labels, levels=[0.5], noise=k,
                                   noise_mode=m) for k in ("gaussian", "saltpepper") for m in ("static", "dynamic")}
    courses = {km: r.timecourse("a", "A", 0.5) for km, r in runs.items()}
    assert not np.allclose(courses[("gaussian", "static")], courses[("gaussian", "dynamic")])
    assert not np.allclose(courses[("saltpepper", "dynamic")], courses[("gaussian", "dynamic")])
    with pytest.raises(E.ExperimentError, match="unknown noise 'pink'"):
        E.run_protocol("noise", {"a": conv1(LEAKY)}, x, labels=labels, noise="pink")
    with pytest.raises(E.ExperimentError, match="unknown noise mode"):
        E.run_protocol("noise", {"a": conv1(LEAKY)}, x, labels=labels, noise_mode="sometimes")


def test_noise_flags_on_the_cli(tmp_path, capsys):
    from test_protocols import REC, _folder

    spec = tmp_path / "rec.dyn"
    spec.write_text(REC)
    folder = _folder(tmp_path)
    out = tmp_path / "o"
    assert main(["experiment", "noise", str(spec), "--images", folder, "--levels", "1", "--noise", "phasescrambled",
                 "--noise-mode", "static", "--out", str(out)]) == 0
    meta = json.loads((out / "noise.json").read_text())
    assert (meta["noise"], meta["noise_mode"]) == ("phasescrambled", "static")
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "noise", str(spec), "--noise", "pink", "--out", str(tmp_path / "p")])
    assert exc.value.code == 2 and "invalid choice: 'pink'" in capsys.readouterr().err
