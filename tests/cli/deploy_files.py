#!/usr/bin/python3
"""Checks of the deployment files that need no container engine and no systemd.

Run by tests/cli/deploy_files.sh (not a test by itself):

    deploy_files.py <repo> <scratch dir> <infra server.properties> <staging dir>

<staging dir> is where deploy_files.sh replayed the Dockerfile's build stage
(`cmake --install` with DESTDIR). Prints "ok: ..." per check and "FAIL: ..." per
failure; exits 1 when anything failed. Writes the environment compose gives
each of the hub's programs (<scratch>/<program>.env,
one VAR=value per line) for the shell part, which runs the program with
--check-config in it.
"""

import os
import re
import shlex
import subprocess
import sys

import yaml

repo, scratch, infra_props_path, staging = sys.argv[1:5]
failures = 0

# The long-running services and their default ports (lib/include/hub/http.h).
SERVICES = ["projector", "planner", "reminder", "notifier"]


def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg, file=sys.stderr)


def ok(msg):
    print("ok: " + msg)


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (": " + detail if detail else ""))
    return cond


def read(path):
    with open(os.path.join(repo, path), encoding="utf-8") as f:
        return f.read()


def in_tree(service):
    """Whether services/<name>/ exists yet (hub-reminder may not)."""
    return os.path.isfile(os.path.join(repo, "services", service, "CMakeLists.txt"))


def offers_http(service):
    """Whether the built program has <service>.http_listen (None: not in the tree yet)."""
    prog = os.path.join(staging, "usr/local/bin", "hub-" + service)
    if not in_tree(service) or not os.path.exists(prog):
        return None
    out = subprocess.run([prog, "--help-config"], capture_output=True, text=True).stdout
    return (service + ".http_listen") in out


# Services not in the tree yet are expected to serve HTTP like the others
# (docs/operations.md); one that is built but serves no endpoint yet gets a
# health check that does not ask one, and no published port.
HTTP = {s: offers_http(s) is not False for s in SERVICES}
for s in SERVICES:
    if not HTTP[s]:
        print("NOTE: hub-%s serves no /metrics, /healthz, /readyz yet: compose checks that it "
              "runs; once it offers %s.http_listen this test asks compose.yaml to publish its "
              "port and check /healthz" % (s, s))

http_h = read("lib/include/hub/http.h")
DEFAULT_PORT = {
    s: int(re.search(r"#define HUB_HTTP_PORT_%s\s+(\d+)" % s.upper(), http_h).group(1))
    for s in SERVICES
}

# ---------------------------------------------------------------------------
# A small reader of libconfig files (enough for the hub's: groups, arrays,
# lists, strings, numbers, booleans, comments), flattened to dotted paths.
# ---------------------------------------------------------------------------
TOKEN = re.compile(
    r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/'
    r'|(?P<str>"(?:[^"\\]|\\.)*")'
    r'|(?P<num>[-+]?(?:0[xX][0-9a-fA-F]+|\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)L{0,2})'
    r'|(?P<name>[A-Za-z*][-A-Za-z0-9_*]*)'
    r'|(?P<punct>[=:;,{}\[\]()])'
    r'|(?P<include>@include)',
    re.S,
)


def lc_tokens(text, path):
    pos, out = 0, []
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise ValueError("%s: cannot read at offset %d: %r" % (path, pos, text[pos:pos + 20]))
        pos = m.end()
        kind = m.lastgroup
        if kind == "include":
            raise ValueError("%s: @include is not expected in this file" % path)
        if kind:
            out.append((kind, m.group(kind)))
    return out


def lc_parse(text, path):
    toks = lc_tokens(text, path)
    i = 0

    def peek():
        return toks[i] if i < len(toks) else (None, None)

    def take(kind=None, value=None):
        nonlocal i
        t = peek()
        if (kind and t[0] != kind) or (value and t[1] != value):
            raise ValueError("%s: expected %s, got %r" % (path, value or kind, t[1]))
        i += 1
        return t

    def scalar(t):
        kind, v = t
        if kind == "str":
            s = bytes(v[1:-1], "utf-8").decode("unicode_escape")
            while peek()[0] == "str":  # adjacent strings concatenate
                s += bytes(take()[1][1:-1], "utf-8").decode("unicode_escape")
            return s
        if kind == "num":
            v = v.rstrip("L")
            return int(v, 0) if re.fullmatch(r"[-+]?(0[xX][0-9a-fA-F]+|\d+)", v) else float(v)
        if kind == "name" and v.lower() in ("true", "false"):
            return v.lower() == "true"
        raise ValueError("%s: unexpected %r" % (path, v))

    def value():
        t = take()
        if t[1] == "{":
            g = settings("}")
            take("punct", "}")
            return g
        if t[1] in ("[", "("):
            close = "]" if t[1] == "[" else ")"
            items = []
            while peek()[1] != close:
                items.append(value())
                if peek()[1] == ",":
                    take()
            take("punct", close)
            return tuple(items)
        return scalar(t)

    def settings(end):
        g = {}
        while peek()[1] != end and peek()[0] is not None:
            name = take("name")[1]
            if peek()[1] not in ("=", ":"):
                raise ValueError("%s: '=' expected after %s" % (path, name))
            take()
            if name in g:
                raise ValueError("%s: duplicate setting %s" % (path, name))
            g[name] = value()
            if peek()[1] in (";", ","):
                take()
        return g

    root = settings(None)
    if i != len(toks):
        raise ValueError("%s: trailing text" % path)
    return root


def flatten(group, prefix=""):
    out = {}
    for k, v in group.items():
        p = prefix + k
        if isinstance(v, dict):
            out.update(flatten(v, p + "."))
        else:
            out[p] = v
    return out


# ---------------------------------------------------------------------------
# config/hub.conf, which compose mounts unchanged: the environment decides
# where the services listen, so the file must leave those settings alone.
# ---------------------------------------------------------------------------
base = flatten(lc_parse(read("config/hub.conf"), "config/hub.conf"))
for s in SERVICES:
    set_in_file = [k for k in ("%s.http_listen" % s, "%s.http_allow_remote" % s) if k in base]
    check(not set_in_file, "config/hub.conf leaves %s's listen settings to the environment" % s,
          "it sets %s, which would override compose's HUB_HTTP_LISTEN / HUB_HTTP_ALLOW_REMOTE"
          % ", ".join(set_in_file))

# ---------------------------------------------------------------------------
# docker/compose.yaml
# ---------------------------------------------------------------------------
compose_dir = os.path.join(repo, "docker")
with open(os.path.join(compose_dir, "compose.yaml"), encoding="utf-8") as f:
    compose = yaml.safe_load(f)
services = compose.get("services") or {}
ok("docker/compose.yaml parses as YAML (%d services)" % len(services))
check(read("docker/compose.yaml").lower().count("untested here") >= 1,
      "compose.yaml says it is untested here")


def as_list(cmd):
    if cmd is None:
        return []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def env_of(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def depends_of(svc):
    d = svc.get("depends_on") or {}
    if isinstance(d, list):
        return {name: {"condition": "service_started"} for name in d}
    return d


def write_env(program, env):
    """<scratch>/<program>.env: the environment compose gives the program (for --check-config)."""
    with open(os.path.join(scratch, program + ".env"), "w", encoding="utf-8") as f:
        for k, v in sorted(env.items()):
            if not v.startswith("${"):  # compose's own ${...} (the password) stays unset
                f.write("%s=%s\n" % (k, v))


one_shot = {n for n, s in services.items() if str(s.get("restart", "no")) == "no"}
for name, svc in services.items():
    check("image" in svc or "build" in svc, "service %s has an image or a build" % name)
    for target, spec in depends_of(svc).items():
        cond = (spec or {}).get("condition", "service_started")
        if not check(target in services, "%s depends on %s, a service of this file" % (name, target)):
            continue
        if cond == "service_healthy":
            check("healthcheck" in services[target] and
                  not services[target]["healthcheck"].get("disable", False),
                  "%s waits for %s to be healthy, and it has a health check" % (name, target))
        elif cond == "service_completed_successfully":
            check(target in one_shot, "%s waits for %s to complete, a one-shot job" % (name, target))
        else:
            fail("%s depends on %s with condition %s: wait for health or completion" %
                 (name, target, cond))
    if name not in one_shot:
        check("healthcheck" in svc, "long-running service %s has a health check" % name)
    build = svc.get("build")
    if build:
        ctx = os.path.normpath(os.path.join(compose_dir, build.get("context", ".")))
        check(os.path.isdir(ctx) and
              os.path.isfile(os.path.join(ctx, build.get("dockerfile", "Dockerfile"))),
              "%s: build context and Dockerfile exist" % name)
    for vol in svc.get("volumes") or []:
        src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
        if src.startswith((".", "/")):
            check(os.path.exists(os.path.normpath(os.path.join(compose_dir, src))),
                  "%s mounts %s, which exists in the repository" % (name, src))
        else:
            check(src in (compose.get("volumes") or {}),
                  "%s: named volume %s is declared" % (name, src))

# Published host ports: none twice on one address (0.0.0.0 and "" clash with all).
published = []
for name, svc in services.items():
    for p in svc.get("ports") or []:
        parts = str(p).split(":")
        ip = parts[0] if len(parts) == 3 else ""
        host = parts[-2] if len(parts) >= 2 else parts[-1]
        published.append((name, ip, int(host.split("/")[0])))
clashes = [(a, b) for i, a in enumerate(published) for b in published[i + 1:]
           if a[2] == b[2] and (a[1] == b[1] or a[1] in ("", "0.0.0.0") or b[1] in ("", "0.0.0.0"))]
check(not clashes, "no host port is published twice (%d published)" % len(published), str(clashes))
check(all(ip == "127.0.0.1" for _, ip, _ in published), "every port is published on loopback only",
      str([p for p in published if p[1] != "127.0.0.1"]))

# The hub's programs: the image, the config mount, --config, ports and health checks.
hub_env = None
for s in SERVICES:
    name = "hub-" + s
    svc = services.get(name)
    if not check(svc is not None, "compose runs %s" % name):
        continue
    cmd = as_list(svc.get("entrypoint")) + as_list(svc.get("command"))
    check(cmd[:3] == [name, "--config", "/etc/llr-hub/hub.conf"],
          "%s runs with --config /etc/llr-hub/hub.conf" % name, str(cmd))
    check("../config/hub.conf:/etc/llr-hub/hub.conf:ro" in (svc.get("volumes") or []),
          "%s mounts config/hub.conf as /etc/llr-hub/hub.conf" % name)
    port = DEFAULT_PORT[s]
    ports = [str(p) for p in svc.get("ports") or []]
    test = " ".join(as_list(svc.get("healthcheck", {}).get("test")))
    env = env_of(svc)
    check(env.get("HUB_HTTP_LISTEN") == "0.0.0.0:%d" % port and env.get("HUB_HTTP_ALLOW_REMOTE") == "true",
          "%s: HUB_HTTP_LISTEN=0.0.0.0:%d, HUB_HTTP_ALLOW_REMOTE=true" % (name, port))
    if HTTP[s]:
        check("127.0.0.1:%d:%d" % (port, port) in ports, "%s publishes its port %d" % (name, port))
        check("http://127.0.0.1:%d/healthz" % port in test, "%s's health check asks /healthz on %d" %
              (name, port), test)
        check(env.get("HUB_HEALTH_PORT") == str(port), "%s: HUB_HEALTH_PORT=%d" % (name, port))
    else:
        check(not ports and "/healthz" not in test and "HUB_HEALTH_PORT" not in env,
              "%s: no port, no HTTP health check (it serves no endpoint yet)" % name)
    hub_env = hub_env or env
    write_env("hub-" + s, env)

# Where the environment points the programs: compose services, on their ports.
targets = {
    "HUB_KAFKA_BOOTSTRAP": r"(?P<host>[\w.-]+):(?P<port>\d+)",
    "HUB_PG_CONNINFO": r"host=(?P<host>[\w.-]+) port=(?P<port>\d+) dbname=hub( .*)?",
    "HUB_REGISTRY_URL": r"http://(?P<host>[\w.-]+):(?P<port>\d+)/apis/ccompat/v7",
    "HUB_SMTP_URL": r"smtp://(?P<host>[\w.-]+):(?P<port>\d+)",
}
for var, pattern in targets.items():
    m = re.fullmatch(pattern, (hub_env or {}).get(var, ""))
    if check(m is not None, "hub services get %s" % var, (hub_env or {}).get(var, "<unset>")):
        check(m.group("host") in services, "%s names the compose service %s" % (var, m.group("host")))
if "hubctl" in services:
    write_env("hubctl", env_of(services["hubctl"]))

# Kafka: the settings scripts/infra.sh writes, as the image's KAFKA_* variables.
infra = {}
with open(infra_props_path, encoding="utf-8") as f:
    for line in f:
        line = line.strip()
        if line and not line.startswith("#"):
            k, v = line.split("=", 1)
            infra[k] = v


def kafka_env_name(prop):
    return "KAFKA_" + prop.replace("-", "___").replace("_", "__").replace(".", "_").upper()


kenv = env_of(services.get("kafka", {}))
not_props = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS", "KAFKA_LOG4J_OPTS"}
address_keys = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}
compose_props = {k for k in kenv if k.startswith("KAFKA_") and k not in not_props}
infra_names = {kafka_env_name(p) for p in infra}
check(compose_props == infra_names, "compose's Kafka settings are the ones infra.sh writes",
      "only in compose: %s; only in infra.sh: %s" %
      (sorted(compose_props - infra_names), sorted(infra_names - compose_props)))
for prop, value in sorted(infra.items()):
    if prop in address_keys:
        continue
    got = kenv.get(kafka_env_name(prop))
    check(got == value, "kafka %s=%s as in infra.sh" % (prop, value), "compose has %r" % got)


def listener_names(v):
    return sorted(re.findall(r"([A-Z_]+)://", v))


for prop in ("listeners", "advertised.listeners"):
    check(listener_names(kenv.get(kafka_env_name(prop), "")) == listener_names(infra.get(prop, "")),
          "kafka %s has the listeners of infra.sh (%s)" % (prop, ", ".join(listener_names(infra[prop]))))
check(re.fullmatch(r"1@kafka:\d+", kenv.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "")) and
      infra.get("controller.quorum.voters", "").startswith("1@"),
      "kafka: static controller quorum, node 1, as infra.sh")
check(bool(kenv.get("CLUSTER_ID")) and len(kenv["CLUSTER_ID"]) == 22, "kafka has a 22-character CLUSTER_ID")

# Images at the versions the scripts use.
pom = read("scripts/infra/kafka-pom.xml")
kafka_version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1)
infra_sh = read("scripts/infra.sh")
apicurio_version = re.search(r"_HUB_APICURIO_VERSION_DEFAULT=(\S+)", infra_sh).group(1)
check(services.get("kafka", {}).get("image") == "apache/kafka:" + kafka_version,
      "kafka image is apache/kafka:%s, the broker version of the tests" % kafka_version)
check(services.get("kafka-topics", {}).get("image") == "apache/kafka:" + kafka_version,
      "the topic job uses the broker's image")
check(services.get("registry", {}).get("image") == "apicurio/apicurio-registry:" + apicurio_version,
      "registry image is Apicurio %s, the version of the tests" % apicurio_version)
check(services.get("postgres", {}).get("image") == "postgres:15", "postgres image is PostgreSQL 15")

# Topics: those of the tests and of config/hub.conf, three partitions each.
topics_default = re.search(r'HUB_TOPICS_DEFAULT="([^"]+)"', infra_sh).group(1).split()
job = " ".join(as_list(services.get("kafka-topics", {}).get("command")))
job_topics = re.search(r"for topic in (.*?); do", job.replace("\\\n", " "), re.S)
job_topics = job_topics.group(1).split() if job_topics else []
job_topics = [t for t in job_topics if t != "\\"]
check(sorted(job_topics) == sorted(topics_default), "the topic job creates the tests' topics",
      str(job_topics))
check(sorted(job_topics) == sorted(v for k, v in base.items() if k.startswith("topics.")),
      "... which are the topics of config/hub.conf")
check("--partitions 3" in job and "--replication-factor 1" in job,
      "the topic job makes 3 partitions, replication factor 1")

# Registry: the settings of hub_registry_start.
renv = env_of(services.get("registry", {}))
for var, want in {"APICURIO_STORAGE_KIND": "sql", "APICURIO_STORAGE_SQL_KIND": "h2",
                  "APICURIO_RULES_GLOBAL_COMPATIBILITY": "BACKWARD"}.items():
    check(renv.get(var) == want, "registry %s=%s" % (var, want))
check("-Dapicurio.storage.sql.kind=h2" in infra_sh and "BACKWARD" in infra_sh,
      "infra.sh still runs the registry on H2 with BACKWARD compatibility")

# ---------------------------------------------------------------------------
# docker/Dockerfile
# ---------------------------------------------------------------------------
dockerfile = read("docker/Dockerfile")
instructions = []
buf = ""
for line in dockerfile.split("\n"):
    if not buf and (not line.strip() or line.lstrip().startswith("#")):
        continue
    if buf and line.lstrip().startswith("#"):
        continue
    if line.rstrip().endswith("\\"):
        buf += line.rstrip()[:-1] + " "
        continue
    buf += line
    word, _, rest = buf.strip().partition(" ")
    instructions.append((word.upper(), rest.strip()))
    buf = ""

stages, stage = [], None
apt = {}
copies = []
for word, rest in instructions:
    if word == "FROM":
        m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
        stage = m.group(2)
        check(stage is not None and re.fullmatch(r"[a-z][a-z0-9-]*", stage),
              "FROM %s is a named stage (%s)" % (m.group(1), stage))
        check(m.group(1).startswith("debian:bookworm"), "stage %s is Debian bookworm" % stage)
        check(stage not in stages, "stage name %s is used once" % stage)
        stages.append(stage)
        apt[stage] = []
    elif word == "RUN" and "apt-get install" in rest:
        pkgs = rest.split("apt-get install", 1)[1].split("&&")[0].split()
        apt[stage] += [p for p in pkgs if not p.startswith("-")]
    elif word == "COPY":
        args = rest.split()
        src_from = [a.split("=", 1)[1] for a in args if a.startswith("--from=")]
        paths = [a for a in args if not a.startswith("--")]
        if src_from:
            check(src_from[0] in stages[:-1], "COPY --from=%s names an earlier stage" % src_from[0])
            if src_from[0] == "build":
                copies.append(paths[0])
        else:
            for src in paths[:-1]:
                check(os.path.exists(os.path.join(repo, src)), "COPY source %s exists" % src)
check(stages == ["build", "runtime"], "two stages, build then runtime", str(stages))

ignore = [l.strip() for l in read("docker/Dockerfile.dockerignore").split("\n")
          if l.strip() and not l.startswith("#")]
for word, rest in instructions:
    if word == "COPY" and "--from=" not in rest:
        for src in rest.split()[:-1]:
            check("!" + src in ignore or "!" + src.rstrip("/") + "/" in ignore,
                  "Dockerfile.dockerignore lets %s into the build context" % src)

# Build stage: a -dev package for each library CMake looks for, and the tools.
cmake_root = read("CMakeLists.txt")
modules = re.findall(r"pkg_check_modules\(\w+ REQUIRED IMPORTED_TARGET (\S+)\)", cmake_root)


def package_of(path):
    for p in (path, re.sub(r"^/usr(/lib)", r"\1", path)):
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0]
    return None


for module in modules:
    pc = subprocess.run(["pkg-config", "--path", module], capture_output=True, text=True).stdout.strip()
    pkg = package_of(os.path.realpath(pc)) if pc else None
    check(pkg is not None and pkg in apt.get("build", []),
          "build stage installs %s (pkg-config %s)" % (pkg, module))
for tool in ("cmake", "gcc", "make", "pkg-config", "libc6-dev"):
    check(tool in apt.get("build", []), "build stage installs %s" % tool)

# Runtime stage: the package of every shared library the programs link, and no -dev.
bins = [os.path.join(staging, "usr/local/bin", b) for b in sorted(os.listdir(os.path.join(staging, "usr/local/bin")))]
libs = [os.path.join(staging, "usr/local/lib", l) for l in os.listdir(os.path.join(staging, "usr/local/lib"))
        if l.endswith(".so")]
needed = set()
for f in bins + libs:
    out = subprocess.run(["objdump", "-p", f], capture_output=True, text=True, check=True).stdout
    needed |= set(re.findall(r"NEEDED\s+(\S+)", out))
ldcache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
in_base_image = {"libc6", "libgcc-s1", "libstdc++6"}  # debian:bookworm-slim has these
for so in sorted(needed):
    if so.startswith("libhub.so"):
        check(any(os.path.basename(l).startswith("libhub.so") for l in libs), "libhub is installed")
        continue
    m = re.search(r"^\s*%s \(.*?\) => (\S+)$" % re.escape(so), ldcache, re.M)
    pkg = package_of(os.path.realpath(m.group(1))) if m else None
    check(pkg is not None and (pkg in apt.get("runtime", []) or pkg in in_base_image),
          "runtime stage has %s for %s" % (pkg, so))
check(not [p for p in apt.get("runtime", []) if p.endswith("-dev")], "no -dev package in the runtime stage")
check("curl" in apt.get("runtime", []), "runtime stage has curl for its HEALTHCHECK")

final = [(w, r) for w, r in instructions[[i for i, (w, _) in enumerate(instructions) if w == "FROM"][-1]:]]
users = [r for w, r in final if w == "USER"]
check(users and users[-1] not in ("root", "0"), "the runtime stage runs as a non-root user", str(users))
check(any(w == "HEALTHCHECK" for w, _ in final), "the runtime stage has a HEALTHCHECK")
data_dir = re.search(r"-DHUB_DATA_DIR=(\S+)", dockerfile).group(1)
check("HUB_DATA_DIR=" + data_dir in dockerfile.replace("ENV HUB_DATA_DIR", "HUB_DATA_DIR"),
      "the image's HUB_DATA_DIR is the -DHUB_DATA_DIR of the build (%s)" % data_dir)
for sub in ("schemas/catalogue.json", "sql/migrations", "config/hub.conf"):
    check(os.path.exists(os.path.join(staging, data_dir.lstrip("/"), sub)),
          "cmake --install puts %s under %s" % (sub, data_dir))
for src in copies:
    check(os.path.isdir(os.path.join(staging, os.path.relpath(src, "/staging"))),
          "COPY --from=build %s finds the installed tree" % src)
for s in SERVICES + ["hubctl"]:
    prog = s if s == "hubctl" else "hub-" + s
    if s == "hubctl" or in_tree(s):
        check(os.path.exists(os.path.join(staging, "usr/local/bin", prog)), "the image has %s" % prog)
    else:
        print("NOTE: services/%s is not in the tree yet: the image has no %s, so its compose "
              "service and unit are checked as files only" % (s, prog))

# ---------------------------------------------------------------------------
# config/systemd: the keys the units must carry (systemd-analyze verify, in the
# shell part, checks the syntax and every key's validity).
# ---------------------------------------------------------------------------
required = {
    "Restart": "on-failure", "KillSignal": "SIGTERM", "User": "llr-hub",
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes", "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces": "yes",
    "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "CapabilityBoundingSet": "",
    "RestartPreventExitStatus": "2",
}
sigs = ""
for s in SERVICES:
    unit = "config/systemd/llr-hub-%s.service" % s
    keys = {}
    for line in read(unit).split("\n"):
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), []).append(v.strip())
    wrong = [k for k, v in required.items() if v not in keys.get(k, [])]
    check(not wrong, "%s has the required settings" % unit, "missing or different: " + ", ".join(wrong))
    exec_start = keys.get("ExecStart", [""])[0]
    check(exec_start == "/usr/local/bin/hub-%s --config /etc/llr-hub/hub.conf" % s,
          "%s: ExecStart runs hub-%s --config /etc/llr-hub/hub.conf" % (unit, s), exec_start)
    check("TimeoutStopSec" in keys and "RestartSec" in keys, "%s: TimeoutStopSec and RestartSec" % unit)
    check(any(v.startswith("@system-service") for v in keys.get("SystemCallFilter", [])),
          "%s: SystemCallFilter=@system-service" % unit)
    creds = [v.split(":", 1)[0] for v in keys.get("LoadCredential", [])]
    check({"kafka_password", "pg_password"} <= set(creds),
          "%s loads the common secrets as credentials" % unit, str(creds))
    # ExecReload only where the program reloads on SIGHUP.
    src_dir = os.path.join(repo, "services", s)
    reloads = in_tree(s) and any("hub_reload_requested" in open(os.path.join(src_dir, f)).read()
                                 for f in os.listdir(src_dir) if f.endswith(".c"))
    check(("ExecReload" in keys) == reloads,
          "%s: ExecReload %s (the program %s SIGHUP)" %
          (unit, "present" if "ExecReload" in keys else "absent", "reloads on" if reloads else "does not reload on"))

if failures:
    print("%d deployment-file check(s) failed" % failures, file=sys.stderr)
sys.exit(1 if failures else 0)
