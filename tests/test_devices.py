"""Every helper a chapter hands a trained model to computes on the model's device.

On Colab the models live on a GPU while a chapter's test images come from the CPU. CI has no GPU,
so the models go to PyTorch's meta device instead (shapes, no data): a helper that forgets to move
its inputs to the model fails at its first layer with a device mismatch. Copying a result back to
the CPU gives zeros of its shape (OutOfMeta), so each helper runs to its end: every model call in
it is checked, not only the first.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from vaegan_lite import attributes, metrics
from vaegan_lite.book import experiments, web
from vaegan_lite.classifier import AttributeClassifier, ClassifierConfig, accuracy
from vaegan_lite.config import ModelConfig
from vaegan_lite.models import AVAE, VAEGAN
from vaegan_lite.train import fixed_samples

X = torch.rand(4, 3, 32, 32) * 2 - 1  # a chapter's held-out faces, on the CPU
aten = torch.ops.aten


class OutOfMeta(TorchDispatchMode):
    """A meta tensor copied to another device (or read as a number) becomes zeros there, as if
    the model's device had computed them: the helper goes on with its CPU part."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        src = args[0] if args else None
        if func is aten._to_copy.default and src.is_meta:
            device = kwargs.get("device")
            if device is not None and torch.device(device).type != "meta":
                return torch.zeros(src.shape, dtype=kwargs.get("dtype") or src.dtype,
                                   device=device)  # fmt: skip
        if func is aten.copy_.default and args[1].is_meta and not src.is_meta:
            return src.zero_()
        if func is aten._local_scalar_dense.default and src.is_meta:
            return False if src.dtype == torch.bool else 0
        return func(*args, **kwargs)


def runs_on_the_models_device(helper, returns_to_cpu: bool = True) -> None:
    """helper() runs to its end with the model on meta and (unless it is one of the model's own
    methods, which answer on its device) hands back nothing left there."""
    try:
        with OutOfMeta():
            result = helper()
    except RuntimeError as e:
        pytest.fail(f"an input stayed on the CPU while the model is elsewhere: {e}")
    tensors = [t for t in pytree.tree_leaves(result) if isinstance(t, torch.Tensor)]
    assert all(t.is_meta != returns_to_cpu for t in tensors), [t.device for t in tensors]


def on_meta(module: torch.nn.Module) -> torch.nn.Module:
    return module.eval().to("meta")


@pytest.fixture(params=["vaegan", "avae"])
def model(request):
    cls = VAEGAN if request.param == "vaegan" else AVAE
    return on_meta(cls(ModelConfig(model=request.param, image_size=32, width=0.125, latent_dim=8)))


@pytest.fixture
def judge():
    return on_meta(AttributeClassifier(ClassifierConfig(image_size=32)))


def test_reconstruct_and_sample(model):
    runs_on_the_models_device(lambda: model.reconstruct(X))
    runs_on_the_models_device(lambda: model.sample(4, generator=torch.Generator().manual_seed(0)))
    runs_on_the_models_device(lambda: fixed_samples(model, 4, 0))


def test_encode_decode_and_generate(model):
    """The model's own methods, which the chapters' exercises call with CPU tensors."""
    z = torch.zeros(4, model.latent_dim)
    runs_on_the_models_device(lambda: model.encode(X), returns_to_cpu=False)
    runs_on_the_models_device(lambda: model.decode(z), returns_to_cpu=False)
    if isinstance(model, AVAE):
        runs_on_the_models_device(lambda: model.generate(z), returns_to_cpu=False)


def test_the_numbers_of_chapters_6_and_7(model, judge):
    runs_on_the_models_device(lambda: metrics.reconstruct(model, X))
    runs_on_the_models_device(lambda: metrics.sample(model, 4))
    runs_on_the_models_device(lambda: metrics.face_fd(X, X, judge))
    runs_on_the_models_device(lambda: metrics.evaluate(model, X, judge))
    y = torch.zeros(len(X), judge.config.n_attrs)  # the judge reads the reconstructions too
    runs_on_the_models_device(lambda: metrics.evaluate(model, X, judge, y_test=y))


def test_chapter_6s_discriminator_measures(model):
    runs_on_the_models_device(lambda: experiments.dis_features(model, X))
    runs_on_the_models_device(lambda: experiments.feature_error(model, X))
    runs_on_the_models_device(lambda: experiments.fooled(model, 4))
    regressor = on_meta(experiments.AttributeRegressor(32, 5, 0.125))
    runs_on_the_models_device(lambda: regressor.probabilities(X))


def test_latent_arithmetic_and_the_judge(model, judge):
    runs_on_the_models_device(lambda: attributes.encode(model, X))
    runs_on_the_models_device(lambda: attributes.decode(model, torch.zeros(4, model.latent_dim)))
    runs_on_the_models_device(lambda: judge.predict(X))
    runs_on_the_models_device(lambda: accuracy(judge, X, torch.zeros(4, len(judge.attr_names))))


def test_export_decoder_of_a_model_on_another_device(model, tmp_path):
    """It traced Dec where the model lives with a code z on the CPU: a model trained on a GPU
    failed to export."""
    pytest.importorskip("onnxruntime")
    runs_on_the_models_device(lambda: web.export_decoder(model, tmp_path / "dec.onnx"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (a GPU)")
def test_export_decoder_of_a_model_on_cuda(tmp_path):
    """The meta-device test above stops at the copy; on a GPU (gpu_check's cuda tests) Dec is
    really traced and exported from a CUDA model, which stays where it was."""
    pytest.importorskip("onnx")
    m = VAEGAN(ModelConfig(image_size=32, width=0.125, latent_dim=8)).cuda().train()
    check = importlib.util.find_spec("onnxruntime") is not None  # the GPU machine may lack it
    path = web.export_decoder(m, tmp_path / "dec.onnx", check=check)
    assert path.stat().st_size > 0 and m.dec.training and next(m.parameters()).is_cuda


def test_the_check_itself_catches_a_helper_that_forgets(model):
    def forgetful():
        mu, _ = model.enc(X)  # the network itself, X left on the CPU
        return model.dec(mu)

    with pytest.raises(pytest.fail.Exception, match="stayed on the CPU"):
        runs_on_the_models_device(forgetful)


def test_sample_and_reconstruct_run_in_batches_with_the_same_result(monkeypatch):
    """The gpu preset's 10,000 test faces go through the networks EVAL_BATCH at a time (one
    batch of them would not fit a T4), with the result of one batch."""
    from vaegan_lite.config import PRESETS, config_for
    from vaegan_lite.models import VAEGAN, vaegan

    model = VAEGAN(config_for(PRESETS["smoke"], "vaegan").model)
    x = torch.rand(20, 3, 32, 32) * 2 - 1
    whole = model.reconstruct(x), model.sample(20, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(vaegan, "EVAL_BATCH", 7)
    calls = []
    model.dec.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    parts = model.reconstruct(x), model.sample(20, generator=torch.Generator().manual_seed(0))
    assert calls == [7, 7, 6] * 2
    # the same images, up to the last bits a convolution may round differently in another batch
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(whole, parts, strict=True))


def test_avae_samples_and_reconstructs_in_batches_with_the_same_noise(monkeypatch):
    """AVAE's G takes (z, xi): xi is drawn for all the images at once, so a generator fixes the
    same noise however many batches the images go in."""
    from vaegan_lite.config import PRESETS, config_for
    from vaegan_lite.models import AVAE, vaegan

    model = AVAE(config_for(PRESETS["smoke"], "avae", xi_dim=4).model)
    x = torch.rand(20, 3, 32, 32) * 2 - 1

    def both():
        return (model.reconstruct(x, generator=torch.Generator().manual_seed(0)),
                model.sample(20, generator=torch.Generator().manual_seed(0)))  # fmt: skip

    whole = both()
    monkeypatch.setattr(vaegan, "EVAL_BATCH", 7)
    calls = []
    model.gen.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    parts = both()
    assert calls == [7, 7, 6] * 2
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(whole, parts, strict=True))
    other = model.sample(20, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(whole[1], other)  # xi (and z) do come from the generator


def test_encode_and_decode_take_other_float_dtypes_and_refuse_what_is_no_tensor():
    from vaegan_lite.config import PRESETS, config_for

    model = VAEGAN(config_for(PRESETS["smoke"], "vaegan").model).eval()
    avae = AVAE(config_for(PRESETS["smoke"], "avae").model)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mu = model.encode(x)[0]
    assert torch.allclose(model.encode(x.double())[0], mu, atol=1e-5)  # cast to the weights'
    assert model.decode(mu.double()).dtype == torch.float32
    assert avae.generate(avae.encode(x)[0].double()).dtype == torch.float32  # G as Dec
    for bad, says in ((lambda: model.encode(x.numpy()), "images as a torch.Tensor"),
                      (lambda: model.reconstruct(list(x)), "images as a torch.Tensor"),
                      (lambda: avae.reconstruct(list(x)), "images as a torch.Tensor"),
                      (lambda: model.decode(mu.long()), "float codes z"),
                      (lambda: avae.generate(mu.long()), "float codes z")):  # fmt: skip
        with pytest.raises(ValueError, match=says):
            bad()


def test_codes_stay_on_their_device_in_latent_arithmetic():
    """interpolate and apply make their steps and scales where the codes are (the model's
    device, for codes from model.encode), not on the CPU."""
    z0, z1 = torch.zeros(8, device="meta"), torch.ones(8, device="meta")
    assert attributes.interpolate(z0, z1, steps=4).is_meta
    assert attributes.apply(z0, z1, torch.linspace(-1, 1, 3)).shape == (3, 8)
    assert attributes.apply(z0, z1, torch.linspace(-1, 1, 3)).is_meta
