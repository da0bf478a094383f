"""benchmarks/gpu.py without a GPU: one line, exit 0, nothing written; and its report renders
every section from measured values (or says which failed), so a GPU run is not lost to a typo."""
import importlib.util

import pytest
import torch

from conftest import ROOT


def load():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", ROOT / "benchmarks" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present: the script would measure")
def test_without_cuda_it_says_so_in_one_line_and_exits_0(tmp_path, capsys):
    assert load().main(["--out", str(tmp_path / "gpu.md")]) == 0
    out = capsys.readouterr().out
    assert out == ("benchmarks/gpu.py: no CUDA device here (torch.cuda.is_available() is False); "
                   "nothing measured\n")
    assert not (tmp_path / "gpu.md").exists()


def test_every_section_renders_from_values():
    gpu = load()
    checks = ([("dyrcnn_x4", 1e-6, "2.0e-07"), ("noisy", 0.0, "eager: the steady step draws random numbers")], 0.0)
    modes = {"seconds": {"eager fp32": 0.02, "CUDA graphs": 0.004, "DynVision 0.1.0 eager": 0.03},
             "errors": {"eager fp32": 0.0, "CUDA graphs": 1e-7, "DynVision 0.1.0 eager": 2e-6},
             "compile_s": 31.0, "reference": None}
    rate = {"flops": 7.2e12, "eager": 3e13, "graphs": 3.3e13, "alone": 4e13, "big": 5e13}
    text = "\n".join(gpu._checks_md(checks) + gpu._modes_md(modes) + gpu._rate_md(rate)
                     + gpu._ddp_md(({"plain": 0.05, "ddp": 0.052}, "ok")))
    assert "| CUDA graphs | 4.00 | 5.00x | 7.50x | 1.0e-07 |" in text
    assert "best mode (CUDA graphs) 7.50x the reference's eager GPU forward: MET (target >= 5x)" in text
    assert "| DyRCNNx4 forward, CUDA graphs | 33.0 | 66% |" in text and "MET (best 66%)" in text
    assert "| DDP (nccl) | 52.0 |" in text
    no_ref = gpu._modes_md({**modes, "seconds": {"eager fp32": 0.02}, "reference": "not importable",
                            "compile_s": None, "notes": ["torch.compile steps left out: torch.compile failed: X"]})
    assert "Reference row skipped: not importable." in no_ref and "Target: not measured (no reference)." in no_ref
    assert "torch.compile steps left out: torch.compile failed: X.\n" in no_ref
    assert "torch.compile: not measured." in no_ref


def test_a_packed_reference_site_is_extracted_and_imported(tmp_path, monkeypatch):
    import sys
    import tarfile

    gpu = load()
    try:
        import dynvision.models  # noqa: F401
        pytest.skip("DynVision is importable here: the packed site is not consulted")
    except ImportError:
        pass
    site = tmp_path / "site"
    (site / "dynvision" / "models").mkdir(parents=True)
    (site / "dynvision" / "__init__.py").write_text("")
    (site / "dynvision" / "models" / "__init__.py").write_text("DyRCNNx4 = 'packed'\n")
    with tarfile.open(tmp_path / "site.tar.gz", "w:gz") as tar:
        tar.add(site / "dynvision", arcname="dynvision")
    saved = list(sys.path)
    monkeypatch.setattr(gpu, "REFERENCE_SITE", str(tmp_path / "absent"))
    try:
        models, reason = gpu.import_reference(str(tmp_path / "site.tar.gz"))
        assert reason is None and models.DyRCNNx4 == "packed"
    finally:
        sys.path[:] = saved
        for name in [n for n in sys.modules if n == "dynvision" or n.startswith("dynvision.")]:
            del sys.modules[name]
    missing, why = gpu.import_reference(None)
    assert missing is None and why.startswith("DynVision 0.1.0 is not importable")
