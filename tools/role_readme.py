#!/usr/bin/env python3
"""Write each role's README.md from its meta/argument_specs.yml and meta/main.yml.

    python tools/role_readme.py            # rewrite every roles/*/README.md
    python tools/role_readme.py --check    # exit 1 naming the READMEs that are stale

The specs are the one source: a README is never edited by hand, and
tests/unit/tools/test_role_readme.py fails when one differs from what this writes.

Why not a kept tool (both tried from PyPI, 2026-12-02): aar-doc 2.4.0 writes defaults that
contain ``|`` unescaped into its Markdown tables (a template default breaks the table), names
the role by its directory instead of its FQCN and prints dependencies as Python dicts; its
template cannot be replaced. ansible-docsmith 2.4.0 refuses the _common role (it reads only
defaults/main.yml, not a defaults/main/ directory, and wants every entry point's defaults in
defaults/<entry point>.yml) and runs formatter commands it discovers in the tree.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
NAMESPACE, NAME = "teamllm", "stack"
# The docs page of each role (docs/ ships in the collection); others: docs/<role>.md.
DOCS = {
    "_common": "downloads.md",
    "cuda": "gpu-node-base.md",
    "docker": "gpu-node-base.md",
    "nvidia_container_toolkit": "gpu-node-base.md",
    "nvidia_driver": "gpu-node-base.md",
}
# Where each role runs in site.yml (teamllm.stack.site), for the example.
HOSTS = {
    "backup": "backup",
    "cuda": "gpu_nodes",
    "docker": "gpu_nodes",
    "nvidia_container_toolkit": "gpu_nodes",
    "nvidia_driver": "gpu_nodes",
    "gateway": "gateway",
    "open_webui": "webui",
}
HEADER = ("<!-- Written by tools/role_readme.py from meta/argument_specs.yml and meta/main.yml: "
          "edit those and run it again. -->")

# Ansible's documentation markup (C(), I(), ...) as Markdown.
_MARKUP = [
    (re.compile(r"L\(([^)]+?),\s*([^)]+)\)"), r"[\1](\2)"),
    (re.compile(r"U\(([^)]+)\)"), r"<\1>"),
    (re.compile(r"R\(([^)]+?),\s*[^)]+\)"), r"\1"),
    (re.compile(r"[CVOEM]\(([^)]*)\)"), r"`\1`"),
    (re.compile(r"I\(([^)]*)\)"), r"*\1*"),
    (re.compile(r"B\(([^)]*)\)"), r"**\1**"),
    (re.compile(r"HORIZONTALLINE"), "---"),
]


def markdown(text) -> str:
    """One paragraph of Ansible markup (a string, or a list of strings) as Markdown."""
    text = " ".join(text) if isinstance(text, list) else str(text or "")
    text = " ".join(text.split())
    for pattern, repl in _MARKUP:
        text = pattern.sub(repl, text)
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _value(value) -> str:
    """A default as inline code: strings as they are, the rest as JSON."""
    shown = value if isinstance(value, str) else json.dumps(value, sort_keys=False)
    if shown == "":
        return '`""`'
    tick = "``" if "`" in shown else "`"
    return f"{tick}{shown}{tick}"


def _type(opt: dict) -> str:
    kind = opt.get("type", "str")
    if kind == "list" and opt.get("elements"):
        kind = f"list of {opt['elements']}"
    return kind


def _rows(options: dict, prefix: str = ""):
    for name, opt in options.items():
        desc = [markdown(opt.get("description"))]
        if opt.get("choices"):
            desc.append("Choices: " + ", ".join(_value(c) for c in opt["choices"]) + ".")
        if opt.get("no_log"):
            desc.append("Secret (never logged).")
        if opt.get("required"):
            default = "required"
        elif "default" in opt:
            default = _value(opt["default"])
        else:
            default = "see description"
        yield f"| `{prefix}{name}` | {_cell(_type(opt))} | {_cell(default)} | {_cell(' '.join(desc))} |"
        if opt.get("options"):
            yield from _rows(opt["options"], prefix=f"{prefix}{name}.")


def render(role_dir: Path) -> str:
    """The README of one role, as text."""
    role = role_dir.name
    fqcn = f"{NAMESPACE}.{NAME}.{role}"
    meta = yaml.safe_load((role_dir / "meta" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    info = meta.get("galaxy_info") or {}
    docs = DOCS.get(role, role.replace("_", "-") + ".md")
    out = [HEADER, f"# {fqcn}", "", markdown(info.get("description")), ""]
    if role.startswith("_"):
        out += ["An internal role: the other roles of the collection include its task files; a "
                "playbook does not call it.", ""]
    out += [f"Documentation: [docs/{docs}](../../docs/{docs}).", ""]
    platforms = "; ".join(f"{p['name']} {', '.join(str(v) for v in p.get('versions', []))}"
                          for p in info.get("platforms") or [])
    if platforms:
        out += [f"Platforms: {platforms}.", ""]
    deps = [d["role"] if isinstance(d, dict) else str(d) for d in meta.get("dependencies") or []]
    if deps:
        out += ["Depends on: " + ", ".join(f"`{d}`" for d in deps) + ".", ""]
    if not role.startswith("_"):
        out += ["## Example", "", "```yaml",
                f"- name: {markdown(specs['main'].get('short_description'))}",
                f"  hosts: {HOSTS.get(role, 'llm_nodes')}",
                "  become: true", "  roles:", f"    - role: {fqcn}", "```", "",
                "`teamllm.stack.site` runs it where it belongs; see the collection's README.", ""]
    for entry, spec in specs.items():
        out += [f"## Entry point `{entry}`", "", f"**{markdown(spec.get('short_description'))}**", ""]
        description = spec.get("description")
        for paragraph in description if isinstance(description, list) else [description]:
            if paragraph:
                out += [markdown(paragraph), ""]
        if entry != "main":
            out += ["```yaml", f"- name: {markdown(spec.get('short_description'))}",
                    "  ansible.builtin.include_role:", f"    name: {fqcn}", f"    tasks_from: {entry}",
                    "```", ""]
        options = spec.get("options") or {}
        if options:
            out += ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
            out += list(_rows(options))
            out.append("")
        else:
            out += ["No variables.", ""]
    out += ["## License", "", str(info.get("license", "Apache-2.0")) + ", as the collection (LICENSE).", ""]
    return "\n".join(out)


def roles(repo: Path = REPO):
    return sorted(p for p in (repo / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale READMEs")
    args = parser.parse_args(argv)
    stale = []
    for role_dir in roles():
        text, readme = render(role_dir), role_dir / "README.md"
        if readme.exists() and readme.read_text() == text:
            continue
        stale.append(readme.relative_to(REPO))
        if not args.check:
            readme.write_text(text)
    verb = "stale" if args.check else "written"
    for path in stale:
        print(f"{verb}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
