"""The README's "生产部署" secret-file commands, run as written in a copy of deploy/compose, make files the
service loads as the compose file names them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import make_url

from rulesvc.audit.checkpoints import load_private_key
from rulesvc.settings import Settings
from tests.unit.deploy.test_compose import compose

ROOT = Path(__file__).resolve().parents[2]


def secrets_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    region = readme[readme.index("<!-- deploy:secrets -->") : readme.index("<!-- deploy:end -->")]
    (block,) = re.findall(r"```sh\n(.*?)```", region, flags=re.S)
    return block


def test_the_secret_files_procedure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl missing")
        pytest.skip("openssl missing")
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["sh", "-euc", secrets_block()], cwd=tmp_path, env=env, check=True, timeout=120)
    secrets_dir = tmp_path / "deploy" / "compose" / "secrets"
    document = compose()
    files = {
        name: secrets_dir / spec["file"].removeprefix("./secrets/")
        for name, spec in document["secrets"].items()
    }
    assert all(path.is_file() for path in files.values()), sorted(p.name for p in secrets_dir.iterdir())
    for name in list(os.environ):
        if name.startswith("RULESVC_"):
            monkeypatch.delenv(name)
    for variable, value in document["services"]["api"]["environment"].items():
        if str(value).startswith("/run/secrets/"):
            value = str(files[Path(value).name])
        monkeypatch.setenv(variable, str(value))
    settings = Settings()
    assert make_url(settings.database_url).password == files["db_password"].read_text().strip()
    assert settings.redis_url and files["redis_password"].read_text().strip() in settings.redis_url
    assert settings.keyring() is not None
    assert settings.checkpoint_key_file is not None
    load_private_key(settings.checkpoint_key_file.read_bytes())
