"""test_cluster_conf.py -- the directives of issue 21 refuse what makes
no sense, with a clear message from `nginx -t`: guichet_redis and
guichet_redis_cluster together, a seed that is not IP:port, more than 16
replicas to wait for, WAIT without a timeout; a cluster configuration
that makes sense passes.
"""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stack import BUILD, NGINX, ROOT, free_port  # noqa: E402


def nginx_t(tmp_path, edit):
    with open(os.path.join(ROOT, "lua-free-config", "dev.conf")) as f:
        conf = edit(f.read())
    tpl = tmp_path / "t.conf"
    tpl.write_text(conf)
    secret = tmp_path / "secret.key"
    secret.write_text("ab" * 32 + "\n")
    os.chmod(secret, 0o600)
    out = tmp_path / "nginx.conf"
    subprocess.run([os.path.join(ROOT, "scripts", "render-conf.sh"),
                    str(tpl), str(out),
                    os.path.join(BUILD, "ngx_http_guichet_module.so"),
                    str(tmp_path), str(free_port()), "127.0.0.1:6390",
                    str(secret)], check=True)
    r = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(out),
                        "-e", str(tmp_path / "error.log")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    return r.returncode, r.stdout


def with_lines(*lines):
    def edit(conf):
        return conf.replace("    guichet_redis_pool 2;\n",
                            "    guichet_redis_pool 2;\n"
                            + "".join("    %s\n" % ln for ln in lines), 1)
    return edit


def cluster_instead(*lines):
    def edit(conf):
        conf = conf.replace("    guichet_redis @REDIS@;\n", "", 1)
        return with_lines(*lines)(conf)
    return edit


def test_a_cluster_configuration_passes(tmp_path):
    rc, out = nginx_t(tmp_path, cluster_instead(
        "guichet_redis_cluster 127.0.0.1:7001 127.0.0.1:7002;",
        "guichet_redis_wait_replicas 1;",
        "guichet_redis_wait_timeout 250ms;"))
    assert rc == 0, out


@pytest.mark.parametrize("edit,message", [
    (with_lines("guichet_redis_cluster 127.0.0.1:7001;"),
     '"guichet_redis" and "guichet_redis_cluster" exclude each other'),
    (cluster_instead("guichet_redis_cluster 127.0.0.1;"),
     '"127.0.0.1" is not host:port'),
    (cluster_instead("guichet_redis_cluster unix:/tmp/redis.sock;"),
     'is not host:port'),
    (cluster_instead("guichet_redis_cluster 127.0.0.1:0;"),
     'is not host:port'),
    (with_lines("guichet_redis_wait_replicas 17;"),
     '"guichet_redis_wait_replicas" must be between 0 and 16'),
    (with_lines("guichet_redis_wait_replicas 1;",
                "guichet_redis_wait_timeout 0;"),
     '"guichet_redis_wait_timeout" must be more than 0'),
])
def test_nonsense_is_refused_clearly(tmp_path, edit, message):
    rc, out = nginx_t(tmp_path, edit)
    assert rc != 0, out
    assert message in out, out
