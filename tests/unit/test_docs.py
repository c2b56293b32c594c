"""Every command the README and docs/ show still means something: its config composes (groups,
keys, values), its registry command exists, its script is there."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_commands() -> list[tuple[str, list[str]]]:
    """(page, argv) of every `python ...` line in the pages' bash blocks."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                while words and "=" in words[0] and not words[0].startswith("-"):
                    words.pop(0)  # VAR=value prefixes
                if words[:1] == ["export"] or not words:
                    continue
                if words[0].endswith("python") or words[0] == "bash":
                    found.append((page.name, words))
    return found


COMMANDS = documented_commands()


def test_the_pages_show_the_main_commands():
    shown = {" ".join(argv[:3]) for _, argv in COMMANDS}
    assert {"python -m obesity.train", "python -m obesity.serve", "python -m obesity.registry",
            "python -m obesity.monitor"} <= shown
    assert len(COMMANDS) > 30


@pytest.mark.parametrize("page,argv", COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_a_documented_command_composes_and_exists(page, argv):
    from obesity.config.checks import check
    from obesity.config.compose import compose
    from obesity.registry.commands import COMMANDS as REGISTRY_COMMANDS

    if argv[0] == "bash" or argv[1] != "-m":  # a script: it exists
        assert (ROOT / argv[1]).is_file(), argv
        return
    module, args = argv[2], argv[3:]
    if module == "obesity.registry":
        while args and args[0] in ("-o", "--override"):
            compose([args[1]])
            args = args[2:]
        assert args and args[0] in REGISTRY_COMMANDS, argv
        return
    if module == "obesity.feedback":  # FILE or export, its options, then monitor.yaml overrides
        assert args and (args[0] == "export" or args[0].endswith(".csv")), argv
        check(compose([a for a in args if "=" in a and not a.startswith("-")], "monitor"))
        return
    if module == "obesity.predict":  # INPUT OUTPUT, then predict.yaml overrides
        assert len(args) >= 2 and all(a.endswith((".csv", ".parquet")) for a in args[:2]), argv
        check(compose(args[2:], "predict"))
        return
    if module in ("obesity.train", "obesity.serve", "obesity.monitor"):
        # the first value of a multirun list (train); --cfg/--help take no override
        overrides = [a.split(",")[0] if module == "obesity.train" and "=" in a and "(" not in a
                     else a for a in args if a not in ("-m", "--help", "--cfg", "job", "hydra")]
        check(compose(overrides, module.removeprefix("obesity.")))
        return
    assert module.startswith(("obesity.", "pytest", "mlflow")), argv
    if module.startswith("obesity."):
        __import__(module.removesuffix(".__main__") if module != "obesity.testing.local_servers" else module)
