"""deploy/local/run_services.py renders deploy/nginx/taktline.conf for local ports, not a copy."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from shared.testing.plugin import skip_unless_ci
from tests.deploy.test_routes import nginx_table
from tests.system.conftest import launcher

PORTS = {"process": 9101, "maintenance": 9102, "collector": 9103}


def test_rendered_config_keeps_the_table_and_points_upstreams_at_local_ports(tmp_path: Path) -> None:
    rendered = launcher.render_nginx_conf(PORTS, 9100, tmp_path)
    upstreams = dict(re.findall(r"upstream\s+(\w+)\s*\{\s*server\s+([^;\s]+);", rendered))
    assert upstreams == {name: f"127.0.0.1:{port}" for name, port in PORTS.items()}
    assert re.findall(r"\blisten\s+([^;]+);", rendered) == ["127.0.0.1:9100"]
    prefixes, _ = nginx_table()
    assert dict(re.findall(r"location\s+(/\S*)\s*\{\s*proxy_pass\s+http://(\w+);", rendered)) == prefixes
    assert str(tmp_path / "temp" / "proxy") in rendered


def test_a_changed_upstream_block_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(launcher.LaunchError, match="upstream maintenance"):
        launcher.render_nginx_conf(PORTS, 9100, tmp_path, template="upstream process { server p:1; }\nlisten 1;")


def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    nginx = launcher.find_nginx()
    if nginx is None:
        skip_unless_ci("nginx is not installed (apt-get install nginx-light)")
    for kind in launcher.TEMP_PATHS:
        (tmp_path / "temp" / kind).mkdir(parents=True)
    conf = tmp_path / "nginx.conf"
    conf.write_text(launcher.render_nginx_conf(PORTS, 9100, tmp_path))
    result = subprocess.run([nginx, "-e", "stderr", "-t", "-p", str(tmp_path), "-c", str(conf),
                             "-g", f"pid {tmp_path / 'nginx.pid'}; error_log stderr;"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
