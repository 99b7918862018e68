# Copyright: teamllm.stack contributors
# Apache License 2.0
"""tests/gpu/exporter_report.py: the plan against reality from two scrapes of the exporter and
nvidia-smi's compute apps (what the GPU check records), on sample files in the exporter's
format."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SPEC = importlib.util.spec_from_file_location("exporter_report", ROOT / "tests" / "gpu" / "exporter_report.py")
report = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(report)
GPU = 'hostname="gpu-check",index="0",devicename="NVIDIA H200",uuid="GPU-1234"'


def test_the_report_sets_the_process_memory_next_to_the_estimate(tmp_path):
    (tmp_path / "metrics-idle.txt").write_text(
        f'# HELP gpu_memory_used_MiB GPU memory used (MiB).\ngpu_memory_used_MiB{{{GPU}}} 500.0\n')
    (tmp_path / "metrics-loaded.txt").write_text("\n".join([
        '# HELP nvitop_info NVITOP Prometheus Exporter.',
        'nvitop_info{cuda_driver_version="13.0",device_count="1",driver_version="580.65.06",hostname="gpu-check"} 1.0',
        f"gpu_memory_used_MiB{{{GPU}}} 42500.0",
        f'process_gpu_memory_MiB{{{GPU},pid="4242",username="root"}} 41000.0',
        f'teamllm_instance_gpu_memory_estimate_bytes{{{GPU},unit="u",engine="llama_cpp",instance_id="i",model="m"}} 4.4e+10',
        f"teamllm_gpu_other_memory_bytes{{{GPU}}} 4.29916160e+10", ""]))
    (tmp_path / "apps.csv").write_text("4242, /tmp/llama-bin/llama-server, 41000\n")
    estimate = tmp_path / "estimate.json"
    estimate.write_text(json.dumps({"model": "llama-3.1-8b", "quantization": "q8_0", "context": 8192,
                                    "parallel": 32, "instance": {"bytes_per_gpu": [44000000000],
                                                                 "breakdown": {"weights": 1}}}))
    result = report.report(str(tmp_path), str(estimate), str(tmp_path / "apps.csv"), pid="4242",
                           smi="NVIDIA H200, GPU-1234, 580.65.06\n")
    assert result["gpu"] == {"name": "NVIDIA H200", "uuid": "GPU-1234", "driver": "580.65.06",
                             "cuda_driver": "13.0"}
    measured = result["measured"]
    assert measured["nvml_process_bytes"] == 41000 << 20
    assert measured["nvidia_smi_compute_app_bytes"] == 41000 << 20
    assert measured["gpu_used_loaded_minus_idle_bytes"] == 42000 << 20
    assert measured["teamllm_instance_gpu_memory_estimate_bytes"] == 4.4e10
    assert result["measured_over_estimate"] == round((41000 << 20) / 44000000000, 4)
    assert result["teamllm_metric_names"] == ["teamllm_gpu_other_memory_bytes",
                                              "teamllm_instance_gpu_memory_estimate_bytes"]
    assert json.loads((tmp_path / "plan-vs-reality.json").read_text())["estimate_bytes"] == 44000000000


def test_a_process_in_another_pid_namespace_is_the_one_new_gpu_process(tmp_path):
    (tmp_path / "metrics-idle.txt").write_text(f"gpu_memory_used_MiB{{{GPU}}} 500.0\n")
    (tmp_path / "metrics-loaded.txt").write_text(
        f"gpu_memory_used_MiB{{{GPU}}} 1500.0\n"
        f'process_gpu_memory_MiB{{{GPU},pid="98765",username="N/A"}} 900.0\n')
    (tmp_path / "apps.csv").write_text("")
    estimate = tmp_path / "estimate.json"
    estimate.write_text(json.dumps({"instance": {"bytes_per_gpu": [1000 << 20]}}))
    result = report.report(str(tmp_path), str(estimate), str(tmp_path / "apps.csv"), pid="321", smi="")
    assert result["measured"]["nvml_process_bytes"] == 900 << 20
    assert result["measured"]["process_matched_by"] == "the only new GPU process (NVML pid 98765)"
    assert result["measured_over_estimate"] == 0.9
    assert result["gpu"]["name"] == ""
