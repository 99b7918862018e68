# Copyright: teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
# SPDX-License-Identifier: Apache-2.0
# The work is done by the action plugin of the same name; this file holds its documentation.

DOCUMENTATION = r"""
module: model_placement
short_description: Place the team's models on the GPUs of every host and plan their deployment, once, on the controller
description:
  - Reads the C(teamllm_gpus) facts (from M(teamllm.stack.gpu_facts)) of every host of the play
    through C(hostvars), estimates each model's memory with the collection's estimator and
    assigns engine instances to GPUs, before any host is touched.
  - Then plans the deployment from the engine registry - each instance's port, each host's
    instances per engine role (RV(engines)), each gateway's routes and the backend keys they
    need (RV(gateways)) - and fails, naming the host, the model and the fix, when the plan
    cannot be deployed (no weights for the chosen engine and quantization, an Ollama model its
    node cannot obtain, clashing vLLM instances, a gateway that cannot reach an engine bound to
    loopback, replicas requiring different backend keys).
  - API keys of the backends are compared but never returned; RV(gateways) names the variable
    holding each.
  - The assignment is solved exactly as an integer program with HiGHS (C(highspy)) when it is
    installed on the controller, else, or when the problem is too large, by a greedy
    best-fit (binpack) or worst-fit (spread); RV(solver) says which.
  - It places as many replicas as possible, each at the best quantization and engine it
    allows, then packs them (binpack) or spreads them (spread).
  - Tensor-parallel sizes (vLLM) divide the attention heads and the vocabulary; GPUs are
    grouped for one instance only when the smallest has at least 0.9 of the largest's memory;
    instances sharing a GPU fit together in its memory less O(reserve_gib); replicas of one
    model use distinct GPUs.
  - Hosts without a GPU take llama.cpp instances into RAM when C(llm_cpu_inference=true)
    (RAM from C(llm_cpu_ram_gib), else C(ansible_memtotal_mb)).
  - When a model does not fit the task fails (unless O(allow_partial)); the message names each
    model, how many GiB it is short on its closest candidate, and the smallest change that
    fits (a lower quantization, a shorter context, fewer parallel sequences, fewer replicas),
    each checked by estimating again.
  - "Use it with C(run_once: true); it reads every host and changes none."
version_added: 0.1.0
author: teamllm.stack developers (!UNKNOWN)
options:
  models:
    description:
      - The wanted models (usually C(llm_models)). Each item is a dict.
      - C(name) (required) the catalog name (or GGUF path) given to the estimator.
      - C(download) (llama_cpp, vllm, localai) the C(llm_downloads) entry of the weights, one
        name or a dict of quantization to name; C(ollama) (ollama) the registry reference or
        C({pull, import, system, template, parameters}). The placement ignores both; the
        deployment plan reads them.
      - C(alias) the name the gateway serves it under (default C(name)); unique.
      - C(engine) one of C(llama_cpp), C(ollama), C(vllm), C(localai) or C(any) (default;
        tries vllm, then llama_cpp, then ollama).
      - C(quantizations) acceptable quantizations, best first (or one C(quantization)).
      - C(context) tokens per sequence (default 4096), C(parallel) sequences at once
        (default 1), C(replicas) (default 1), C(host) to pin it to one host,
        C(kv_cache_type) and C(flash_attention) passed to the estimator.
    type: list
    elements: raw
    required: true
  policy:
    description:
      - V(binpack) uses as few hosts, then GPUs, as it can; V(spread) keeps replicas of one
        model on distinct hosts and makes the fullest GPU as empty as it can.
    type: str
    choices: [binpack, spread]
    default: binpack
  reserve_gib:
    description: GiB left free on every GPU (driver, CUDA context, other processes).
    type: float
    default: 1.0
  ram_reserve_gib:
    description: GiB of RAM left to the system on a CPU-only host.
    type: float
    default: 4.0
  downloads:
    description: The download manifest (C(llm_downloads)) the models' C(download) entries name.
    type: dict
    default: {}
  port_base:
    description:
      - First port of the engine instances on each host; each instance gets the next, except
        that every Ollama instance of a host is served by its one server on one port.
    type: int
    default: 8100
  gateways:
    description: The gateway hosts (usually C(groups['gateway'])); RV(gateways) has one entry each.
    type: list
    elements: str
    default: []
  solver:
    description:
      - V(auto) uses HiGHS when installed and falls back to the greedy; V(highs) fails when
        highspy is missing; V(greedy) skips the exact solver.
    type: str
    choices: [auto, highs, greedy]
    default: auto
  time_limit:
    description:
      - Seconds for the exact solver. On a time-out it returns the best plan found (never
        worse than the greedy's) and RV(optimal) is false.
    type: float
    default: 10.0
  allow_partial:
    description: Return the plan with RV(unplaced) instead of failing when a model does not fit.
    type: bool
    default: false
  hosts:
    description: Hosts to place on; default every host of the play (C(ansible_play_hosts_all)).
    type: list
    elements: str
requirements:
  - highspy on the controller for the exact solver (optional)
extends_documentation_fragment:
  - teamllm.stack.attributes
  - teamllm.stack.attributes.action_group
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  action:
    description: Has an action plugin of the same name that does the work on the controller.
    support: full
notes:
  - Ports are numbered in the order of the instances' names on each host, so adding a model
    may move the ports of others on that host; the gateway reads them from RV(gateways).
  - The other hosts' inventory variables read - C(llm_engine_bind_address),
    C(<engine>_bind_address), C(vllm_api_key), C(localai_api_key), C(llm_artifact_source),
    C(ollama_model_source), C(ollama_models), C(llm_cpu_inference), C(llm_cpu_ram_gib),
    C(ansible_host) - come from the inventory (C(hostvars)), not from role defaults.
seealso:
  - module: teamllm.stack.gpu_facts
"""

EXAMPLES = r"""
- name: Read the GPUs of every node
  teamllm.stack.gpu_facts:

- name: Place the models and plan their deployment once, on the controller
  teamllm.stack.model_placement:
    models: "{{ llm_models }}"
    downloads: "{{ llm_downloads }}"
    gateways: "{{ groups['gateway'] }}"
    policy: spread
    reserve_gib: 1
  run_once: true
  register: plan

- name: Each node runs its own instances
  ansible.builtin.debug:
    msg: "{{ plan.engines[inventory_hostname] | default({}) }}"
"""

RETURN = r"""
placement:
  description:
    - Per host of the play (every host is present, possibly with no instance).
  returned: always (partial when the task fails because a model does not fit)
  type: dict
  contains:
    address:
      description: C(ansible_host) or the inventory name.
      type: str
    instances:
      description:
        - The engine instances to run on the host, sorted by name and replica.
        - Each has C(id) (unique, e.g. C(llama-3-1-8b-0)), C(name) (the served alias),
          C(model), C(replica), C(engine), C(quantization), C(context), C(parallel),
          C(device) (C(gpu) or C(cpu)), C(gpus) (indices), C(gpu_uuids),
          C(cuda_visible_devices), C(tensor_parallel_size) (GPUs used, 0 on RAM),
          C(gpu_memory_utilization) (vLLM, else null), C(bytes_per_gpu), C(ram_bytes),
          C(port), and C(settings), the engine's own.
        - "C(settings) for vllm: C(tensor_parallel_size), C(gpu_memory_utilization),
          C(max_model_len), C(max_num_seqs)."
        - "for llama_cpp and localai: C(n_gpu_layers), C(ctx_size) (context x parallel),
          C(parallel), C(split_mode), C(tensor_split), C(flash_attn), C(cache_type_k),
          C(cache_type_v)."
        - "for ollama: C(num_parallel), C(context_length), C(flash_attention),
          C(kv_cache_type), C(sched_spread)."
      type: list
      elements: dict
    devices:
      description:
        - Each GPU (or the RAM of a CPU host) with C(index), C(uuid), C(name), C(kind),
          C(memory_total), C(reserved), C(planned), C(free) (bytes) and C(instances) (ids).
      type: list
      elements: dict
  sample:
    node1:
      address: 10.0.0.11
      instances:
        - id: llama-3-1-8b-0
          name: llama-3.1-8b
          model: llama-3.1-8b
          replica: 0
          engine: llama_cpp
          quantization: Q4_K_M
          context: 8192
          parallel: 2
          device: gpu
          gpus: [0]
          port: 8100
engines:
  description:
    - Per host with instances, per engine, the engine role's instances (what
      C(playbooks/placement.yml) publishes as C(teamllm_engines) and the roles read as
      C(<engine>_instances)).
  returned: success
  type: dict
  sample:
    node1:
      llama_cpp:
        - {name: llama-3-1-8b-0, model: llama_8b_q4, alias: llama-3.1-8b, port: 8100,
           context: 16384, parallel: 2, gpu_layers: 999, flash_attention: auto,
           extra_env: {CUDA_VISIBLE_DEVICES: "0"}}
gateways:
  description:
    - Per gateway host, its C(routes) (served name to the C(address:port) of each replica,
      sorted, as that gateway reaches them - loopback for instances on its own host) and its
      C(backend_keys) (served name to C({host, variable}), the inventory variable holding the
      API key its backends require; the key itself is never returned).
  returned: success
  type: dict
  sample:
    gw1:
      routes:
        llama-3.1-8b: ["10.0.0.11:8100", "10.0.0.12:8100"]
      backend_keys:
        chat: {host: node1, variable: vllm_api_key}
unplaced:
  description:
    - Models with replicas that did not fit, each with C(name), C(model), C(missing),
      C(short_bytes) (on the closest candidate), C(closest) and C(suggestions).
  returned: always
  type: list
  elements: dict
solver:
  description:
    - What produced the plan - V(highs) (the exact MILP), V(greedy), V(lp-guided) or
      V(smallest-first) (packings guided by the LP relaxation, for large problems), with
      C(+repack) when binpack repacked it host by host.
  returned: when the models were read
  type: str
solver_status:
  description: HiGHS's status per stage (relaxation, replicas and quality, packing), or what the heuristic proved.
  returned: when the models were read
  type: str
optimal:
  description: Whether the plan is proven optimal (replicas and quality, and the packing).
  returned: when the models were read
  type: bool
fallback_reason:
  description: Why the plan is not the exact solver's (including when the heuristic's plan was proven optimal), or null.
  returned: when the models were read
  type: str
bound:
  description: The most replicas any plan can place (the LP relaxation's proven bound).
  returned: when the models were read
  type: int
gap:
  description: Share of the bound's replicas the plan does not place (0 when it places the bound).
  returned: when the models were read
  type: float
quality_gap:
  description: When every replica the bound allows is placed, how far the plan's quantization and engine choices are from their bound.
  returned: when the models were read
  type: float
packing_gap:
  description: Binpack beyond the exact solver - how many more GPUs and hosts the plan uses than its lower bound.
  returned: when the models were read
  type: float
policy:
  description: The policy used.
  returned: when the models were read
  type: str
seconds:
  description: Time the placement took (also C(greedy_seconds), C(solver_seconds), C(explain_seconds)).
  returned: when the models were read
  type: float
candidates:
  description: Candidate placements given to the exact solver (null when it was not used).
  returned: when the models were read
  type: int
"""
