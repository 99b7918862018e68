# Copyright: teamllm.stack contributors
# Apache License 2.0
"""What every engine mapping shares: the one error class, finding a placed instance's
``llm_models`` item, and the manifest entry of its weights. Pure Python; private to the
collection."""

from __future__ import annotations

LOOPBACK = "127.0.0.1"


class EngineError(ValueError):
    """The placement or the inventory cannot become engine instances; ``problems`` lists why,
    each message naming the host, the model or instance, the variable and the fix."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def model_items(models):
    """``llm_models`` as {served name (alias, else name): item}; a plain string is a name."""
    items = {}
    for item in models or []:
        if isinstance(item, str):
            item = {"name": item}
        if isinstance(item, dict) and item.get("name"):
            items[str(item.get("alias") or item["name"])] = item
    return items


def download_for(item, quantization):
    """The llm_downloads entry holding ``item``'s weights in ``quantization``, or None.

    ``download`` is one entry name (any quantization) or a dict {quantization: entry}."""
    download = item.get("download")
    if isinstance(download, dict):
        return download.get(quantization)
    return download or None


def weights_download(inst, items, downloads, host, engine, what="<llm_downloads entry>"):
    """(entry, problem) for the weights of placed instance ``inst``: the manifest entry named
    by its model's ``download`` for the chosen quantization, or a message naming the host, the
    model and the fix (``what`` describes the entry the engine needs)."""
    quant = inst.get("quantization")
    download = download_for(items.get(inst["name"], {}), quant)
    if not download:
        return None, (
            f"{host}: model {inst['name']} is placed as {engine} {quant}, but its llm_models item "
            f"has no download for {quant}: add download: {what} (or download: {{{quant}: <entry>}})"
        )
    if download not in (downloads or {}):
        return None, f"{host}: model {inst['name']}: download {download!r} is not an entry of llm_downloads"
    return download, None


def slots_instance(inst, download, settings):
    """The keys a llama.cpp-family instance (llama.cpp, LocalAI's llama.cpp backend) takes from
    its placed instance: name (the placement's id), model (the weights' manifest entry), alias
    (the served name), port, and context as the total of its parallel slots (context x
    parallel)."""
    parallel = int(settings.get("parallel", inst.get("parallel", 1)))
    return {
        "name": inst["id"],
        "model": download,
        "alias": inst["name"],
        "port": int(inst["port"]),
        "context": int(settings.get("ctx_size", int(inst.get("context", 4096)) * parallel)),
        "parallel": parallel,
    }
