"""A Python CLI (openstack, aws or swift), imported once and forked per command.

Each `openstack` command spends ~2 s of CPU before it sends a request:
~1.5 s importing openstackclient and every plugin's client, ~0.8 s while
cliff maps modules to their distributions; `aws` spends ~1 s importing.
Tests run hundreds of commands on a 2-core machine, so this process pays
that once: it imports what a command imports, then forks a child per
command that runs the CLI's own entry point (what /usr/bin/openstack or
/usr/bin/aws calls) with the command's arguments, environment and
directory, stdin from /dev/null, as a fresh process would have them.
Nothing a command does reaches the next one: each runs in its own child.

Protocol, one command per connection on the unix socket argv[1] (argv[2]
names the CLI): the client sends a 4-byte big-endian length and a JSON
object {"args": [...], "env": ["K=V", ...], "dir": "...", "split": bool};
the child answers a 4-byte big-endian exit status, the 4-byte length of
its stdout, its stdout, then its stderr until it closes (with "split"
false, stdout and stderr are one file, as one pipe would be, and the
stderr part is empty). The process exits when its stdin (a pipe from the
test binary) closes.
"""
import importlib
import json
import os
import select
import signal
import socket
import struct
import sys
import tempfile

PROGRAM = sys.argv[2]
# The CLIs name themselves after argv[0], as run.
sys.argv[0] = PROGRAM

if PROGRAM == "openstack":
    import openstackclient.shell as shell

    def entry(args):
        return shell.main(args)

    WARM_ARGS = ["--os-auth-type", "none", "--os-endpoint", "http://127.0.0.1:9", "server", "list"]
    WARM_ENV = {}
    # openstacksdk's config loader computes its search path (clouds.yaml
    # under HOME, XDG_CONFIG_HOME) when imported.
    FROM_ENV = ["openstack.config.loader"]
    PACKAGES = {"openstack", "openstackclient", "osc_lib", "keystoneauth1", "cliff", "keystoneclient",
                "novaclient", "glanceclient", "cinderclient", "heatclient", "neutronclient", "swiftclient"}
elif PROGRAM == "aws":
    import awscli.clidriver

    def entry(args):
        # /usr/bin/aws's own fix-up, made when it starts.
        if os.environ.get("LC_CTYPE", "") == "UTF-8":
            os.environ["LC_CTYPE"] = "en_US.UTF-8"
        return awscli.clidriver.main()

    WARM_ARGS = ["--endpoint-url", "http://127.0.0.1:9", "--region", "r", "ec2", "describe-regions"]
    WARM_ENV = {"AWS_ACCESS_KEY_ID": "warm", "AWS_SECRET_ACCESS_KEY": "warm", "AWS_MAX_ATTEMPTS": "1",
                "AWS_PAGER": "", "AWS_EC2_METADATA_DISABLED": "true"}
    # awscli's package sets AWS_DATA_PATH (its models) from the
    # environment when imported.
    FROM_ENV = ["awscli"]
    PACKAGES = {"awscli", "botocore"}
elif PROGRAM == "swift":
    import swiftclient.shell

    def entry(args):
        return swiftclient.shell.main([PROGRAM] + args)

    WARM_ARGS = ["--os-auth-token", "warm", "--os-storage-url", "http://127.0.0.1:9/v1/AUTH_warm", "list"]
    WARM_ENV = {}
    FROM_ENV = []
    PACKAGES = {"swiftclient", "keystoneauth1", "keystoneclient"}
else:
    sys.exit("zygote: no CLI named %r" % PROGRAM)


def warm():
    """Imports what a command imports (for openstack, the plugins'
    clients), found by running one in a throwaway child: running it here
    would leave the CLI's logging handlers installed twice in every
    command's child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        before = set(sys.modules)
        os.environ.update(WARM_ENV)
        sys.argv = [PROGRAM] + WARM_ARGS
        try:
            entry(WARM_ARGS)
        except BaseException:
            pass
        os.write(w, "\n".join(sorted(set(sys.modules) - before)).encode())
        os._exit(0)
    os.close(w)
    names = b""
    while True:
        chunk = os.read(r, 1 << 16)
        if not chunk:
            break
        names += chunk
    os.close(r)
    os.waitpid(pid, 0)
    for name in names.decode().split():
        try:
            importlib.import_module(name)
        except BaseException:
            pass
    if PROGRAM == "openstack":
        # cliff's module-to-distribution map (an importlib.metadata scan)
        # is built once per process and only read afterwards.
        import cliff.command
        cliff.command._get_distributions_by_modules()


def home_bound():
    """Names the CLI's modules holding a string with this process's HOME
    (paths computed when imported: awscli's history, caches and the
    like): a command with another HOME has them rebased onto its own, as
    a fresh process would compute them."""
    home = os.environ.get("HOME", "")
    names = []
    if not home:
        return names
    for name, mod in list(sys.modules.items()):
        if name.split(".")[0] not in PACKAGES:
            continue  # Python's own (site, ...) and this script
        try:
            values = list(vars(mod).values())
        except TypeError:
            continue
        if any(isinstance(v, str) and home in v for v in values):
            names.append(name)
    return names


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("short request")
        data += chunk
    return data


def run(conn):
    """One command, in a forked child: never returns."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    req = json.loads(read_exact(conn, struct.unpack(">I", read_exact(conn, 4))[0]))
    os.environ.clear()
    for kv in req["env"]:
        key, _, value = kv.partition("=")
        os.environ[key] = value
    if req.get("dir"):
        os.chdir(req["dir"])
    # What the CLI computes from the environment when imported is
    # computed again from this command's, as a fresh process would.
    for name in FROM_ENV:
        if name in sys.modules:
            importlib.reload(sys.modules[name])
    # Paths under HOME a module computed when imported (awscli's history
    # database, its caches) are rebased onto this command's HOME. Not by
    # reloading those modules: a reload redefines their classes under
    # objects already made of the old ones.
    home = os.environ.get("HOME", "")
    if ZYGOTE_HOME and home != ZYGOTE_HOME:
        for name in HOME_BOUND:
            mod = sys.modules.get(name)
            for key, value in list(vars(mod).items()) if mod else ():
                if isinstance(value, str) and ZYGOTE_HOME in value:
                    setattr(mod, key, value.replace(ZYGOTE_HOME, home))
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile() if req.get("split") else out
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    sys.argv = [PROGRAM] + req["args"]
    try:
        code = entry(req["args"])
    except SystemExit as e:
        code = e.code
    except BaseException:
        # What Python does with an uncaught exception: the traceback, 1.
        import traceback
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        # sys.exit("message"): Python prints it and exits 1.
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    size = out.seek(0, os.SEEK_END)
    conn.sendall(struct.pack(">iI", code & 0xFF, size))
    for f in (out, err) if err is not out else (out,):
        f.seek(0)
        while True:
            chunk = f.read(1 << 16)
            if not chunk:
                break
            conn.sendall(chunk)
    conn.close()


ZYGOTE_HOME = os.environ.get("HOME", "")
HOME_BOUND = []


def main():
    global HOME_BOUND
    path = sys.argv[1]
    warm()
    HOME_BOUND = home_bound()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(64)
    # Children are reaped by the kernel: nobody waits for them here.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        while True:
            ready, _, _ = select.select([srv, sys.stdin], [], [])
            if sys.stdin in ready and not os.read(0, 1 << 10):
                return
            if srv in ready:
                conn, _ = srv.accept()
                if os.fork() == 0:
                    srv.close()
                    try:
                        run(conn)
                    finally:
                        os._exit(0)
                conn.close()
    finally:
        # The directory the test binary made for this zygote (its script,
        # socket and HOME) goes with it: the test binary exits first.
        import shutil
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)


main()
