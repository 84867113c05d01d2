"""Per-app scratch space: the database, the download folder and a fake project checkout."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

from bastion.demo.db import Database

# Files users may download from /files/. Deterministic content.
DOWNLOADS: dict[str, str] = {
    "welcome.txt": "Welcome to DemoCorp! Your files appear here.\n",
    "reports/q1-2024.csv": "month,revenue\njan,1200\nfeb,1350\nmar,1410\n",
    "terms.txt": "Terms of service: be nice.\n",
}

# A file next to (not inside) the download folder: path traversal must be able to reach it.
OUTSIDE_SECRET = "internal-notes.txt"
OUTSIDE_SECRET_TEXT = "INTERNAL: quarterly numbers, do not publish.\n"

# What a careless deployment leaves in the directory it serves. Secrets are obviously fake.
PROJECT_FILES: dict[str, str] = {
    ".env": (
        "FLASK_ENV=production\n"
        "DATABASE_URL=postgresql://democorp:demo-db-password@db.internal:5432/democorp\n"
        "SECRET_KEY=demo-not-a-real-secret-key-0000\n"
        "PAYMENT_API_KEY=demo-payment-key-0000\n"
    ),
    ".git/config": (
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
        '[remote "origin"]\n\turl = git@git.democorp.example:shop/backend.git\n'
        "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    ),
    ".git/HEAD": "ref: refs/heads/main\n",
    "app.py.bak": (
        "import os\n\nfrom flask import Flask\n\n"
        'app = Flask(__name__)\napp.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "dev")\n\n\n'
        "def create_app():\n    return app\n"
    ),
    "settings.py~": (
        "import os\n\nDEBUG = False\n"
        'DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite:///shop.db")\n'
    ),
    "backup/shop-2024-01-31.sql": "-- DemoCorp dump\nCREATE TABLE users (id integer, email text);\n",
    "backup/README.txt": "Nightly database dumps, kept for 30 days.\n",
    "static/app.css": "body { font-family: sans-serif; margin: 2rem; }\n",
    "static/robots.txt": "User-agent: *\nDisallow: /admin\n",
}


class Workspace:
    """A temporary directory owned by one app instance; removed when the app is garbage-collected."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bastion-demo-"))
        self.files_dir = self.root / "files"
        self.project_dir = self.root / "project"
        _write_tree(self.files_dir, DOWNLOADS)
        _write_tree(self.project_dir, PROJECT_FILES)
        (self.root / OUTSIDE_SECRET).write_text(OUTSIDE_SECRET_TEXT, encoding="utf-8")
        self.db = Database(self.root)

    def attach(self, owner: object) -> None:
        """Delete the directory once `owner` (the app) is gone, or at interpreter exit."""
        weakref.finalize(owner, shutil.rmtree, str(self.root), True)


def _write_tree(base: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
